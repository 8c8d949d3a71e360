/** Shared helpers for the kernel tests (not a test file itself). */
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { loadNativeAddon, type NativeAddon } from '../../src/backend/native.ts';
import type { FloatArray } from '../../src/backend/types.ts';

/** The native addon; throws (so the test fails, never skips) when it is not built. */
export function requireNative(): NativeAddon {
  const addon = loadNativeAddon();
  if (!addon) throw new Error('native addon not built: run node-gyp build (build/Release/primer_native.node is missing)');
  return addon;
}

export function randn(rng: Rng, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/**
 * A Float32Array view of n elements that starts one float into its buffer (unaligned for SIMD) and is
 * followed by guard elements, so `intact()` detects a kernel writing past the end.
 */
export function guarded(values: ArrayLike<number>): { a: Float32Array; intact: () => boolean } {
  const n = values.length;
  const buffer = new Float32Array(n + 5);
  buffer.fill(12345.5);
  const a = buffer.subarray(1, n + 1);
  a.set(values);
  return { a, intact: () => buffer[0] === 12345.5 && buffer.subarray(n + 1).every((v) => v === 12345.5) };
}

/** ‖a − b‖ / max(‖b‖, floor) — the floor keeps outputs that are ~0 by cancellation from dividing by ~0. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  assert.equal(a.length, b.length, 'arrays differ in length');
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  const denominator = Math.max(Math.sqrt(norm), floor);
  return denominator > 0 ? Math.sqrt(diff) / denominator : Math.sqrt(diff);
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string, floor = 0): void {
  const err = relativeError(actual, expected, floor);
  assert.ok(err <= tolerance, `${what}: relative error ${err.toExponential(3)} > ${tolerance}`);
}

/**
 * Central finite differences of a scalar objective with respect to every element of `x`
 * (perturbed in place and restored): ∂f/∂x_i ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h.
 */
export function numericGradient(x: FloatArray, objective: () => number, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + h;
    const plus = objective();
    x[i] = saved - h;
    const minus = objective();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Gradient accumulated by a backward kernel on top of a random prefill: (after − before). */
export function accumulated(after: ArrayLike<number>, before: ArrayLike<number>): Float64Array {
  return Float64Array.from(after, (v, i) => v - before[i]);
}

export const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);
export const f64 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a);
export { Rng };
