/**
 * The per-op profiler (PRIMER_PROFILE): every kernel call of a wrapped backend is counted and timed,
 * with the work it did (FLOPs for GEMM, bytes for memory-bound kernels), and the wrapped backend
 * computes exactly what the inner one does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Profiler } from '../../src/backend/profile.ts';
import { referenceBackend } from '../../src/backend/index.ts';

test('a profiled backend computes the same results and counts calls, FLOPs and bytes', () => {
  const profiler = new Profiler();
  const be = profiler.wrap(referenceBackend);
  const a = Float32Array.from({ length: 2 * 4 }, (_, i) => i - 3);
  const b = Float32Array.from({ length: 4 * 3 }, (_, i) => 0.5 * i);
  const c = new Float32Array(6), expected = new Float32Array(6);
  be.gemm(a, b, c, null, 2, 3, 4, false, false, false, 1, 0, 0, 0, false);
  be.gemm(a, b, c, null, 2, 3, 4, false, false, false, 1, 0, 0, 0, false);
  referenceBackend.gemm(a, b, expected, null, 2, 3, 4, false, false, false, 1, 0, 0, 0, false);
  assert.deepEqual(c, expected);
  const out = new Float32Array(8);
  be.add(a, a, out, 8);
  assert.deepEqual(out, a.map((x) => 2 * x));
  assert.equal(be.sumSquares(a, 8), a.reduce((s, x) => s + x * x, 0));
  const gemm = profiler.stats.get('gemm')!;
  assert.equal(gemm.calls, 2);
  assert.equal(gemm.flops, 2 * (2 * 2 * 3 * 4));
  assert.equal(profiler.stats.get('add')!.bytes, 3 * 8 * 4);
  assert.equal(profiler.stats.get('sumSquares')!.calls, 1);
  const report = profiler.report();
  assert.match(report, /^primer profile: [\d.]+ s wall, [\d.]+ s in kernels/);
  assert.match(report, /\ngemm +2 +[\d.]+ +[\d.]+% +[\d.]+ GFLOP\/s/);
  assert.match(report, /\nadd +1 .* GB\/s/);
  assert.match(report, /\noutside kernels /);
});

test('the detailed profiler (PRIMER_PROFILE=shapes) has one row per GEMM shape and transposition', () => {
  const profiler = new Profiler(true);
  const be = profiler.wrap(referenceBackend);
  const a = new Float32Array(24), b = new Float32Array(24), c = new Float32Array(36);
  be.gemm(a, b, c, null, 6, 6, 4, false, true, false, 1, 0, 0, 0, false);
  be.gemm(a, b, c, null, 3, 2, 4, true, false, false, 2, 12, 8, 6, false);
  assert.deepEqual([...profiler.stats.keys()].sort(), ['gemm 2×3x4·4x2 TN', 'gemm 6x4·4x6 NT']);
  assert.equal(profiler.stats.get('gemm 2×3x4·4x2 TN')!.flops, 2 * 3 * 2 * 4 * 2);
});
