/** Numeric helpers shared by tests: seeded random data and relative-error measures. */
import { Rng } from '../../src/util/random.ts';
import { Tensor, type DType } from '../../src/tensor/tensor.ts';

export function randomTensor(shape: number[], rng: Rng, dtype: DType = 'float64', scaleBy = 1): Tensor {
  const t = Tensor.zeros(shape, dtype);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * scaleBy;
  return t;
}

/** max |a − b| / max(max |b|, tiny): error relative to the scale of the expected values. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relError: lengths differ (${a.length} vs ${b.length})`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

/**
 * Central finite differences of the scalar function f with respect to every element of each input
 * tensor (inputs are perturbed in place and restored).
 */
export function numericGrads(inputs: Tensor[], f: () => number, h = 1e-6): Float64Array[] {
  return inputs.map((t) => {
    const g = new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) {
      const x = t.data[i]!;
      t.data[i] = x + h;
      const up = f();
      t.data[i] = x - h;
      const down = f();
      t.data[i] = x;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  });
}
