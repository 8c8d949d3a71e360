/**
 * Drawing the next token from a row of logits z:
 *   temperature τ:  p_i ∝ exp(z_i / τ)            (τ = 0 → greedy argmax)
 *   top-k:          keep the k largest p_i
 *   top-p (nucleus): keep the smallest prefix of p sorted descending whose mass ≥ p
 * then renormalise and draw with a seeded Rng, so the same seed gives the same text.
 */
import type { Rng } from '../util/random.ts';

export interface SamplingOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Nucleus sampling mass in (0, 1] (1 or undefined = off). */
  topP?: number;
  seed?: number;
}

/** Draws one token id from a row of logits. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  const v = logits.length;
  const temperature = o.temperature ?? 1;
  let best = 0;
  for (let i = 1; i < v; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  // Softmax with the max subtracted for stability.
  const max = logits[best]!;
  let order = Array.from({ length: v }, (_, i) => i);
  const p = new Float64Array(v);
  for (let i = 0; i < v; i++) p[i] = Math.exp((logits[i]! - max) / temperature);
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  if ((topK > 0 && topK < v) || topP < 1) {
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    if (topK > 0 && topK < v) order = order.slice(0, topK);
    if (topP < 1) {
      let total = 0;
      for (const i of order) total += p[i]!;
      let mass = 0;
      let keep = 0;
      while (keep < order.length && mass < topP * total) mass += p[order[keep++]!]!;
      order = order.slice(0, Math.max(1, keep));
    }
  }
  let total = 0;
  for (const i of order) total += p[i]!;
  let r = rng.next() * total;
  for (const i of order) {
    r -= p[i]!;
    if (r < 0) return i;
  }
  return order[order.length - 1]!;
}
