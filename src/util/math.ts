/** Small numeric helpers on plain arrays (outside autograd), shared by inference and evaluation code. */

/** p_k = exp(z_k − max z) / Σ_j exp(z_j − max z): probabilities from one row of logits, in float64. */
export function softmaxRow(z: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i]! > max) max = z[i]!;
  const p = new Float64Array(z.length);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i]! - max);
  for (let i = 0; i < z.length; i++) p[i] = p[i]! / sum;
  return p;
}

/** Index of the largest value (the first one on ties); -1 for an empty row. */
export function argmax(z: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < z.length; i++) if (best < 0 || z[i]! > z[best]!) best = i;
  return best;
}
