/**
 * Native kernels (Float32Array) against the reference backend, at sizes that hit every vector-tail
 * case (1, 7, 33, 129, 1000+, non-multiples of the SIMD width) and the OpenMP-parallel paths.
 * Every native output array is a misaligned subarray with guard elements behind it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ref from '../../src/backend/reference/kernels.ts';
import { BACKEND_METHODS } from '../../src/backend/reference/index.ts';
import { Unary } from '../../src/backend/types.ts';
import { Rng, assertClose, f32, guarded, randn, requireNative } from './kernels-helpers.ts';

const TOLERANCE = 1e-5;
const FLAT_SIZES = [1, 7, 15, 16, 17, 33, 129, 1000, 1031, 70_001];
const ROW_SHAPES: Array<[number, number]> = [[1, 1], [1, 7], [7, 33], [33, 129], [3, 1031], [129, 17], [64, 768], [5, 4099]];

function randomF32(rng: Rng, n: number, scale = 1): Float32Array {
  return f32(randn(rng, n, scale));
}

test('native addon exports every kernel of this family', () => {
  const native = requireNative();
  assert.ok(BACKEND_METHODS.length >= 23 && BACKEND_METHODS.includes('layerNormBackward'), BACKEND_METHODS.join(', '));
  for (const name of BACKEND_METHODS) {
    assert.equal(typeof (native as unknown as Record<string, unknown>)[name], 'function', name);
  }
});

test('flat kernels: add, mul, axpy, scale, sumSquares (incl. aliasing)', () => {
  const native = requireNative();
  const rng = new Rng(10);
  for (const n of FLAT_SIZES) {
    const a = randomF32(rng, n), b = randomF32(rng, n);
    for (const op of ['add', 'mul'] as const) {
      const want = new Float32Array(n);
      ref[op](a, b, want, n);
      const out = guarded(new Float32Array(n));
      native[op](a, b, out.a, n);
      assertClose(out.a, want, TOLERANCE, `${op} n=${n}`);
      assert.ok(out.intact(), `${op} n=${n} wrote out of bounds`);
      const alias = guarded(a);
      native[op](alias.a, b, alias.a, n);
      assertClose(alias.a, want, TOLERANCE, `${op} aliased n=${n}`);
    }
    const y = guarded(b), yRef = f32(b);
    native.axpy(-0.75, a, y.a, n);
    ref.axpy(-0.75, a, yRef, n);
    assertClose(y.a, yRef, TOLERANCE, `axpy n=${n}`);
    assert.ok(y.intact());
    const s = guarded(a), sRef = new Float32Array(n);
    native.scale(s.a, 1.5, s.a, n);
    ref.scale(a, 1.5, sRef, n);
    assertClose(s.a, sRef, TOLERANCE, `scale n=${n}`);
    const ss = native.sumSquares(a, n), ssRef = ref.sumSquares(a, n);
    assert.ok(Math.abs(ss - ssRef) <= 1e-12 * ssRef, `sumSquares n=${n}: ${ss} vs ${ssRef}`);
  }
  assert.equal(native.sumSquares(f32([3, 4, 12]), 2), 25);
});

test('sumRows accumulates column sums', () => {
  const native = requireNative();
  const rng = new Rng(11);
  for (const [rows, cols] of [...ROW_SHAPES, [2000, 3] as [number, number]]) {
    const x = randomF32(rng, rows * cols), init = randomF32(rng, cols);
    const out = guarded(init), want = f32(init);
    native.sumRows(x, out.a, rows, cols);
    ref.sumRows(x, want, rows, cols);
    assertClose(out.a, want, 1e-6, `sumRows ${rows}x${cols}`);
    assert.ok(out.intact());
  }
});

test('unary and unaryBackward match the reference for every op', () => {
  const native = requireNative();
  const rng = new Rng(12);
  for (const op of [Unary.GeluTanh, Unary.GeluErf, Unary.Tanh, Unary.Relu]) {
    for (const n of FLAT_SIZES) {
      const x = randomF32(rng, n, 3), dout = randomF32(rng, n), init = randomF32(rng, n);
      const out = guarded(new Float32Array(n)), want = new Float32Array(n);
      native.unary(op, x, out.a, n);
      ref.unary(op, x, want, n);
      assertClose(out.a, want, TOLERANCE, `unary op ${op} n=${n}`);
      assert.ok(out.intact(), `unary op ${op} n=${n} wrote out of bounds`);
      const dx = guarded(init), dxRef = f32(init);
      native.unaryBackward(op, x, dout, dx.a, n);
      ref.unaryBackward(op, x, dout, dxRef, n);
      assertClose(dx.a, dxRef, TOLERANCE, `unaryBackward op ${op} n=${n}`);
      assert.ok(dx.intact());
      // accumulate = false overwrites: old contents (NaN here) are never read.
      const fresh = guarded(new Float32Array(n).fill(NaN)), freshRef = new Float32Array(n).fill(NaN);
      native.unaryBackward(op, x, dout, fresh.a, n, false);
      ref.unaryBackward(op, x, dout, freshRef, n, false);
      assertClose(fresh.a, freshRef, TOLERANCE, `unaryBackward (overwrite) op ${op} n=${n}`);
      assert.ok(fresh.a.every(Number.isFinite) && fresh.intact(), `unaryBackward (overwrite) op ${op} n=${n}`);
    }
  }
  // Extreme inputs stay finite and saturate correctly.
  const x = f32([-100, -20, -9, 9, 20, 100, 0]), out = new Float32Array(7), d = new Float32Array(7);
  native.unary(Unary.GeluTanh, x, out, 7);
  assert.deepEqual(Array.from(out).map((v) => Math.round(v * 1e4) / 1e4), [-0, -0, -0, 9, 20, 100, 0]);
  native.unaryBackward(Unary.GeluTanh, x, new Float32Array(7).fill(1), d, 7);
  assert.ok(d.every(Number.isFinite), `gelu grads ${d}`);
  native.unary(Unary.Tanh, x, out, 7);
  assert.deepEqual(Array.from(out), [-1, -1, -1, 1, 1, 1, 0]);
});

test('layerNorm and layerNormBackward match the reference', () => {
  const native = requireNative();
  const rng = new Rng(13);
  for (const [rows, cols] of ROW_SHAPES) {
    const n = rows * cols;
    const x = f32(randn(rng, n, 2).map((v) => v + 3)), weight = randomF32(rng, cols), bias = randomF32(rng, cols);
    const out = guarded(new Float32Array(n)), mean = guarded(new Float32Array(rows)), rstd = guarded(new Float32Array(rows));
    const outRef = new Float32Array(n), meanRef = new Float32Array(rows), rstdRef = new Float32Array(rows);
    native.layerNorm(x, weight, bias, out.a, mean.a, rstd.a, rows, cols, 1e-5);
    ref.layerNorm(x, weight, bias, outRef, meanRef, rstdRef, rows, cols, 1e-5);
    const shape = `${rows}x${cols}`;
    assertClose(out.a, outRef, TOLERANCE, `layerNorm out ${shape}`);
    assertClose(mean.a, meanRef, TOLERANCE, `layerNorm mean ${shape}`);
    assertClose(rstd.a, rstdRef, TOLERANCE, `layerNorm rstd ${shape}`);
    assert.ok(out.intact() && mean.intact() && rstd.intact(), `layerNorm ${shape} wrote out of bounds`);

    const dout = randomF32(rng, n), dxInit = randomF32(rng, n), dwInit = randomF32(rng, cols), dbInit = randomF32(rng, cols);
    const dx = guarded(dxInit), dw = guarded(dwInit), db = guarded(dbInit);
    const dxRef = f32(dxInit), dwRef = f32(dwInit), dbRef = f32(dbInit);
    native.layerNormBackward(dout, x, weight, meanRef, rstdRef, dx.a, dw.a, db.a, rows, cols);
    ref.layerNormBackward(dout, x, weight, meanRef, rstdRef, dxRef, dwRef, dbRef, rows, cols);
    assertClose(dx.a, dxRef, TOLERANCE, `layerNormBackward dx ${shape}`);
    assertClose(dw.a, dwRef, TOLERANCE, `layerNormBackward dweight ${shape}`);
    assertClose(db.a, dbRef, TOLERANCE, `layerNormBackward dbias ${shape}`);
    assert.ok(dx.intact() && dw.intact() && db.intact(), `layerNormBackward ${shape} wrote out of bounds`);

    // accumulateDx = false: dx's old contents (NaN here) are never read; the bits are those of
    // accumulating into zeros, on both backends.
    const fresh = guarded(new Float32Array(n).fill(NaN)), zeros = new Float32Array(n), freshRef = new Float32Array(n).fill(NaN);
    native.layerNormBackward(dout, x, weight, meanRef, rstdRef, fresh.a, new Float32Array(cols), new Float32Array(cols), rows, cols, false);
    native.layerNormBackward(dout, x, weight, meanRef, rstdRef, zeros, new Float32Array(cols), new Float32Array(cols), rows, cols);
    ref.layerNormBackward(dout, x, weight, meanRef, rstdRef, freshRef, new Float32Array(cols), new Float32Array(cols), rows, cols, false);
    assert.deepEqual(fresh.a, zeros, `layerNormBackward overwrite ${shape}`);
    assertClose(freshRef, zeros, TOLERANCE, `reference layerNormBackward overwrite ${shape}`);
    assert.ok(fresh.intact(), `layerNormBackward overwrite ${shape} wrote out of bounds`);
  }
});

test('softmax and softmaxBackward match the reference', () => {
  const native = requireNative();
  const rng = new Rng(14);
  for (const [rows, cols] of ROW_SHAPES) {
    const n = rows * cols;
    const x = randomF32(rng, n, 4), dy = randomF32(rng, n), init = randomF32(rng, n);
    const y = guarded(new Float32Array(n)), yRef = new Float32Array(n);
    native.softmax(x, y.a, rows, cols);
    ref.softmax(x, yRef, rows, cols);
    assertClose(y.a, yRef, TOLERANCE, `softmax ${rows}x${cols}`);
    assert.ok(y.intact());
    const dx = guarded(init), dxRef = f32(init);
    native.softmaxBackward(yRef, dy, dx.a, rows, cols);
    ref.softmaxBackward(yRef, dy, dxRef, rows, cols);
    assertClose(dx.a, dxRef, TOLERANCE, `softmaxBackward ${rows}x${cols}`);
    assert.ok(dx.intact());
  }
  // −∞ entries (masks) get probability exactly 0.
  const y = new Float32Array(3);
  native.softmax(f32([0, -Infinity, 0]), y, 1, 3);
  assert.deepEqual(Array.from(y), [0.5, 0, 0.5]);
});

test('crossEntropy and crossEntropyBackward match the reference (ignore index, smoothing)', () => {
  const native = requireNative();
  const rng = new Rng(15);
  const shapes: Array<[number, number]> = [[1, 1], [7, 33], [33, 129], [4, 1031], [2, 50257], [64, 1000], [3, 7]];
  for (const [rows, v] of shapes) {
    const logits = randomF32(rng, rows * v, 3);
    const labels = Int32Array.from({ length: rows }, (_, r) => (r % 3 === 1 ? -100 : rng.int(v)));
    for (const smoothing of [0, 0.1]) {
      const loss = guarded(new Float32Array(rows)), lse = guarded(new Float32Array(rows));
      const lossRef = new Float32Array(rows), lseRef = new Float32Array(rows);
      const count = native.crossEntropy(logits, labels, loss.a, lse.a, rows, v, -100, smoothing);
      assert.equal(count, ref.crossEntropy(logits, labels, lossRef, lseRef, rows, v, -100, smoothing));
      const shape = `${rows}x${v} ε=${smoothing}`;
      // (with V = 1 the loss is 0 up to rounding: compare on the scale of a unit loss per row)
      assertClose(loss.a, lossRef, TOLERANCE, `crossEntropy loss ${shape}`, Math.sqrt(rows));
      assertClose(lse.a, lseRef, TOLERANCE, `crossEntropy lse ${shape}`);
      assert.ok(loss.intact() && lse.intact());
      const init = randomF32(rng, rows * v);
      const dlogits = guarded(init), dlogitsRef = f32(init);
      native.crossEntropyBackward(logits, labels, lseRef, dlogits.a, rows, v, -100, smoothing, 1 / Math.max(count, 1));
      ref.crossEntropyBackward(logits, labels, lseRef, dlogitsRef, rows, v, -100, smoothing, 1 / Math.max(count, 1));
      assertClose(dlogits.a, dlogitsRef, TOLERANCE, `crossEntropyBackward ${shape}`);
      assert.ok(dlogits.intact());
    }
  }
  // All rows ignored: count 0, zeros, and the gradient buffer is untouched.
  const logits = randomF32(rng, 12), labels = Int32Array.from([-100, -100, -100]);
  const loss = new Float32Array(3).fill(7), lse = new Float32Array(3).fill(7);
  assert.equal(native.crossEntropy(logits, labels, loss, lse, 3, 4, -100, 0.1), 0);
  assert.deepEqual(Array.from(loss), [0, 0, 0]);
  const dl = new Float32Array(12).fill(2);
  native.crossEntropyBackward(logits, labels, lse, dl, 3, 4, -100, 0.1, 1);
  assert.ok(dl.every((g) => g === 2));
  // A custom ignoreIndex inside [0, V) is honoured.
  assert.equal(native.crossEntropy(logits, Int32Array.from([0, 1, 0]), loss, lse, 3, 4, 0, 0), 1);
});

test('embedding and embeddingBackward match the reference (repeated ids)', () => {
  const native = requireNative();
  const rng = new Rng(16);
  for (const [tableRows, dim, n] of [[50, 1, 7], [50, 7, 100], [30, 33, 40], [9, 129, 33], [20, 1031, 12], [1000, 768, 512]]) {
    const table = randomF32(rng, tableRows * dim);
    const ids = Int32Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 3 : rng.int(tableRows)));
    const out = guarded(new Float32Array(n * dim)), outRef = new Float32Array(n * dim);
    native.embedding(table, ids, out.a, n, dim);
    ref.embedding(table, ids, outRef, n, dim);
    assert.deepEqual(out.a, outRef, `embedding ${tableRows}x${dim} n=${n}`);
    assert.ok(out.intact());
    const dout = randomF32(rng, n * dim), init = randomF32(rng, tableRows * dim);
    const dtable = guarded(init), dtableRef = f32(init);
    native.embeddingBackward(dout, ids, dtable.a, n, dim);
    ref.embeddingBackward(dout, ids, dtableRef, n, dim);
    assertClose(dtable.a, dtableRef, TOLERANCE, `embeddingBackward ${tableRows}x${dim} n=${n}`);
    assert.ok(dtable.intact());
  }
});

test('dropout masks are bit-identical to the reference; keep rate ≈ 1 − p', () => {
  const native = requireNative();
  const rng = new Rng(17);
  for (const n of FLAT_SIZES) {
    for (const [p, seed, offset] of [[0.1, 0, 0], [0.5, 1234, 5], [0.3, 0xdeadbeef, 2 ** 32 - 3], [0.9, -7, 1000], [0, 9, 0], [1, 9, 0]]) {
      const x = randomF32(rng, n), init = randomF32(rng, n);
      const out = guarded(new Float32Array(n)), outRef = new Float32Array(n);
      native.dropout(x, out.a, n, p, seed, offset);
      ref.dropout(x, outRef, n, p, seed, offset);
      const what = `dropout n=${n} p=${p} seed=${seed} offset=${offset}`;
      for (let i = 0; i < n; i++) assert.equal(out.a[i] === 0, outRef[i] === 0, `${what}: mask differs at ${i}`);
      assertClose(out.a, outRef, 1e-6, what);
      assert.ok(out.intact());
      const dx = guarded(init), dxRef = f32(init);
      native.dropoutBackward(x, dx.a, n, p, seed, offset);
      ref.dropoutBackward(x, dxRef, n, p, seed, offset);
      assertClose(dx.a, dxRef, 1e-6, `${what} backward`);
      for (let i = 0; i < n; i++) assert.equal(dx.a[i] === init[i], dxRef[i] === init[i], `${what}: backward mask differs at ${i}`);
    }
  }
  const n = 1_000_000, ones = new Float32Array(n).fill(1), out = new Float32Array(n);
  for (const p of [0.1, 0.5]) {
    native.dropout(ones, out, n, p, 77, 0);
    const kept = out.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) / n;
    assert.ok(Math.abs(kept - (1 - p)) < 0.003, `p=${p}: kept ${kept}`);
    assert.ok(out.every((v) => v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6));
  }
});

test('permute matches the reference (rank 1..6, accumulate)', () => {
  const native = requireNative();
  const rng = new Rng(18);
  const cases: Array<[number[], number[]]> = [
    [[7], [0]], [[3, 5], [1, 0]], [[33, 129], [1, 0]], [[2, 3, 4, 5], [0, 2, 1, 3]], [[2, 3, 4, 5], [3, 1, 0, 2]],
    [[1, 7, 1, 33], [2, 3, 0, 1]], [[2, 2, 2, 2, 2, 3], [5, 4, 3, 2, 1, 0]], [[8, 64, 12, 16], [0, 2, 1, 3]],
    [[4, 100, 3, 7], [2, 0, 3, 1]], [[5, 0, 3], [2, 1, 0]], [[], []],
    // transposes go by tiles (planes of them, tile edges not multiples of the tile)
    [[3, 40, 50], [0, 2, 1]], [[2, 3, 40, 9], [1, 0, 3, 2]], [[4, 300, 130], [0, 2, 1]],
  ];
  for (const [shape, perm] of cases) {
    const total = shape.reduce((a, d) => a * d, 1);
    const x = randomF32(rng, total);
    for (const accumulate of [false, true]) {
      const init = randomF32(rng, total);
      const out = guarded(init), outRef = f32(init);
      native.permute(x, out.a, shape, perm, accumulate);
      ref.permute(x, outRef, shape, perm, accumulate);
      assert.deepEqual(out.a, outRef, `permute [${shape}] by [${perm}] accumulate=${accumulate}`);
      assert.ok(out.intact());
    }
  }
});

test('adamw matches the reference', () => {
  const native = requireNative();
  const rng = new Rng(19);
  for (const n of FLAT_SIZES) {
    for (const [step, wd] of [[1, 0], [10, 0.1]]) {
      const p0 = randomF32(rng, n), g = randomF32(rng, n), m0 = randomF32(rng, n, 0.1), v0 = f32(randn(rng, n, 0.1).map(Math.abs));
      const p = guarded(p0), m = guarded(m0), v = guarded(v0);
      const pRef = f32(p0), mRef = f32(m0), vRef = f32(v0);
      native.adamw(p.a, g, m.a, v.a, n, 1e-3, 0.9, 0.95, 1e-8, wd, step);
      ref.adamw(pRef, g, mRef, vRef, n, 1e-3, 0.9, 0.95, 1e-8, wd, step);
      assertClose(p.a, pRef, TOLERANCE, `adamw param n=${n} step=${step}`);
      assertClose(m.a, mRef, TOLERANCE, `adamw m n=${n}`);
      assertClose(v.a, vRef, TOLERANCE, `adamw v n=${n}`);
      assert.ok(p.intact() && m.intact() && v.intact());
    }
  }
});
