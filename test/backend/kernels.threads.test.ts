/**
 * The native kernels give bit-identical results for any OpenMP thread count (sizes here are above
 * the parallel thresholds), including the row reductions of layerNormBackward and sumRows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Unary } from '../../src/backend/types.ts';
import { Rng, f32, randn, requireNative } from './kernels-helpers.ts';

test('native results do not depend on the thread count', () => {
  const native = requireNative();
  const rng = new Rng(20);
  const [rows, cols, v] = [96, 1031, 5003];
  const x = f32(randn(rng, rows * cols)), dout = f32(randn(rng, rows * cols)), w = f32(randn(rng, cols)), b = f32(randn(rng, cols));
  const logits = f32(randn(rng, 24 * v, 3)), labels = Int32Array.from({ length: 24 }, (_, i) => (i === 5 ? -100 : rng.int(v)));
  const ids = Int32Array.from({ length: rows }, (_, i) => (i * 7) % 13);

  const run = (threads: number): Float32Array[] => {
    native.setThreads(threads);
    const outs: Float32Array[] = [];
    const out = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    native.layerNorm(x, w, b, out, mean, rstd, rows, cols, 1e-5);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
    native.layerNormBackward(dout, x, w, mean, rstd, dx, dw, db, rows, cols);
    const sums = new Float32Array(cols);
    native.sumRows(x, sums, rows, cols);
    const g = new Float32Array(rows * cols), dg = new Float32Array(rows * cols);
    native.unary(Unary.GeluErf, x, g, rows * cols);
    native.unaryBackward(Unary.GeluTanh, x, dout, dg, rows * cols);
    const sm = new Float32Array(rows * cols), dsm = new Float32Array(rows * cols);
    native.softmax(x, sm, rows, cols);
    native.softmaxBackward(sm, dout, dsm, rows, cols);
    const loss = new Float32Array(24), lse = new Float32Array(24), dlogits = new Float32Array(24 * v);
    native.crossEntropy(logits, labels, loss, lse, 24, v, -100, 0.1);
    native.crossEntropyBackward(logits, labels, lse, dlogits, 24, v, -100, 0.1, 1 / 23);
    const dtable = new Float32Array(13 * cols);
    native.embeddingBackward(dout, ids, dtable, rows, cols);
    const drop = new Float32Array(rows * cols);
    native.dropout(x, drop, rows * cols, 0.2, 99, 12345);
    const p = f32(x), m = new Float32Array(rows * cols), vv = new Float32Array(rows * cols);
    native.adamw(p, dout, m, vv, rows * cols, 1e-3, 0.9, 0.999, 1e-8, 0.1, 3);
    const perm = new Float32Array(rows * cols);
    native.permute(x, perm, [8, 12, cols], [1, 2, 0], false);
    const squares = Float32Array.of(native.sumSquares(x, rows * cols));
    outs.push(out, mean, rstd, dx, dw, db, sums, g, dg, sm, dsm, loss, lse, dlogits, dtable, drop, p, m, vv, perm, squares);
    return outs;
  };

  const initial = native.getThreads();
  try {
    const one = run(1);
    for (const threads of [2, 3]) {
      const many = run(threads);
      one.forEach((a, i) => assert.ok(Buffer.from(a.buffer).equals(Buffer.from(many[i].buffer)), `output #${i} differs with ${threads} threads`));
    }
  } finally {
    native.setThreads(initial);
  }
});
