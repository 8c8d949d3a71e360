/**
 * Reference kernels: special functions against known values, every backward against central finite
 * differences in float64, and the semantics the contract spells out (accumulation, ignore index,
 * label smoothing, PyTorch AdamW, dropout masks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as k from '../../src/backend/reference/kernels.ts';
import { erf, erfc, geluErf, geluTanh } from '../../src/backend/reference/special.ts';
import { Unary } from '../../src/backend/types.ts';
import { uniformAt } from '../../src/util/random.ts';
import { Rng, accumulated, assertClose, dot, f64, numericGradient, randn } from './kernels-helpers.ts';

const FD_TOLERANCE = 1e-6;

test('erf and erfc match tabulated values to ~1e-15', () => {
  // Values from Abramowitz & Stegun / high-precision tables.
  const table: Array<[number, number]> = [
    [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149],
    [1.5, 0.9661051464753108], [2, 0.9953222650189527], [2.5, 0.9995930479825550], [3, 0.9999779095030014],
  ];
  for (const [x, want] of table) {
    assert.ok(Math.abs(erf(x) - want) <= 2e-15 * want, `erf(${x}) = ${erf(x)}, want ${want}`);
    assert.ok(Math.abs(erf(-x) + want) <= 2e-15 * want, `erf(${-x})`);
  }
  assert.equal(erf(0), 0);
  assert.ok(Math.abs(erfc(3) - 2.209049699858544e-5) <= 1e-14 * 2.2e-5, `erfc(3) = ${erfc(3)}`);
  assert.ok(Math.abs(erfc(5) - 1.537459794428035e-12) <= 1e-14 * 1.5e-12, `erfc(5) = ${erfc(5)}`);
  assert.ok(Math.abs(erfc(-1) - 1.8427007929497149) <= 1e-15 * 1.85, `erfc(-1) = ${erfc(-1)}`);
  // No jump where the series hands over to the continued fraction: erf(2 ± δ) = erf(2) ± δ·erf'(2).
  const [erf2, slope, delta] = [0.9953222650189527, (2 / Math.sqrt(Math.PI)) * Math.exp(-4), 1e-8];
  assert.ok(Math.abs(erf(2 - delta) - (erf2 - delta * slope)) < 2e-15);
  assert.ok(Math.abs(erf(2 + delta) - (erf2 + delta * slope)) < 2e-15);
});

test('GELU values match their closed forms', () => {
  for (const x of [-3, -1, -0.3, 0, 0.5, 2]) {
    const tanhForm = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    assert.ok(Math.abs(geluTanh(x) - tanhForm) < 1e-15, `geluTanh(${x})`);
    assert.ok(Math.abs(geluErf(x) - 0.5 * x * (1 + erf(x / Math.SQRT2))) < 1e-15, `geluErf(${x})`);
  }
  assert.ok(Math.abs(geluErf(1) - 0.8413447460685429) < 1e-15); // Φ(1)
});

test('unaryBackward matches finite differences for every op (float64)', () => {
  const rng = new Rng(1);
  const n = 40;
  for (const op of [Unary.GeluTanh, Unary.GeluErf, Unary.Tanh, Unary.Relu]) {
    const x = randn(rng, n, 2);
    for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 1e-3) x[i] = 0.5; // keep ReLU away from its kink
    const w = randn(rng, n);
    const out = new Float64Array(n);
    const objective = () => { k.unary(op, x, out, n); return dot(w, out); };
    const before = randn(rng, n);
    const dx = f64(before);
    k.unaryBackward(op, x, w, dx, n);
    assertClose(accumulated(dx, before), numericGradient(x, objective), FD_TOLERANCE, `unary op ${op}`);
  }
});

test('layerNormBackward matches finite differences for x, weight and bias', () => {
  const rng = new Rng(2);
  const [rows, cols, eps] = [4, 7, 1e-5];
  const x = randn(rng, rows * cols, 2), weight = randn(rng, cols), bias = randn(rng, cols), w = randn(rng, rows * cols);
  const out = new Float64Array(rows * cols), mean = new Float64Array(rows), rstd = new Float64Array(rows);
  const objective = () => { k.layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps); return dot(w, out); };
  objective();
  const dxBefore = randn(rng, rows * cols), dwBefore = randn(rng, cols), dbBefore = randn(rng, cols);
  const dx = f64(dxBefore), dweight = f64(dwBefore), dbias = f64(dbBefore);
  k.layerNormBackward(w, x, weight, mean, rstd, dx, dweight, dbias, rows, cols);
  assertClose(accumulated(dx, dxBefore), numericGradient(x, objective), FD_TOLERANCE, 'dx');
  assertClose(accumulated(dweight, dwBefore), numericGradient(weight, objective), FD_TOLERANCE, 'dweight');
  assertClose(accumulated(dbias, dbBefore), numericGradient(bias, objective), FD_TOLERANCE, 'dbias');
  // The saved statistics are the row mean and 1/√(var+eps).
  const row0 = Array.from(x.subarray(0, cols));
  const mu = row0.reduce((a, b) => a + b) / cols;
  const variance = row0.reduce((a, b) => a + (b - mu) ** 2, 0) / cols;
  assert.ok(Math.abs(mean[0] - mu) < 1e-14 && Math.abs(rstd[0] - 1 / Math.sqrt(variance + eps)) < 1e-12);
});

test('softmaxBackward matches finite differences; softmax rows sum to 1', () => {
  const rng = new Rng(3);
  const [rows, cols] = [3, 9];
  const x = randn(rng, rows * cols, 3), w = randn(rng, rows * cols), y = new Float64Array(rows * cols);
  const objective = () => { k.softmax(x, y, rows, cols); return dot(w, y); };
  objective();
  for (let r = 0; r < rows; r++) assert.ok(Math.abs(y.subarray(r * cols, (r + 1) * cols).reduce((a, b) => a + b) - 1) < 1e-14);
  const before = randn(rng, rows * cols);
  const dx = f64(before);
  k.softmaxBackward(y, w, dx, rows, cols);
  assertClose(accumulated(dx, before), numericGradient(x, objective), FD_TOLERANCE, 'softmax dx');
});

test('crossEntropyBackward matches finite differences (smoothing, ignored rows, scale)', () => {
  const rng = new Rng(4);
  const [rows, v, scale] = [5, 11, 0.37];
  const logits = randn(rng, rows * v, 2);
  const labels = Int32Array.from([3, -100, 0, 10, 7]);
  for (const smoothing of [0, 0.1]) {
    const loss = new Float64Array(rows), lse = new Float64Array(rows);
    const objective = () => { k.crossEntropy(logits, labels, loss, lse, rows, v, -100, smoothing); return scale * loss.reduce((a, b) => a + b); };
    assert.equal(k.crossEntropy(logits, labels, loss, lse, rows, v, -100, smoothing), 4);
    const before = randn(rng, rows * v);
    const dlogits = f64(before);
    k.crossEntropyBackward(logits, labels, lse, dlogits, rows, v, -100, smoothing, scale);
    const grad = accumulated(dlogits, before);
    assertClose(grad, numericGradient(logits, objective), FD_TOLERANCE, `cross-entropy ε=${smoothing}`);
    assert.ok(grad.subarray(v, 2 * v).every((g) => g === 0), 'ignored row gets no gradient');
  }
});

test('crossEntropy: ignore index, label smoothing and all-ignored rows', () => {
  const v = 4;
  const logits = f64([1, 2, 3, 4, 0, 0, 0, 0, -1, 5, 2, 0]);
  const labels = Int32Array.from([3, -100, 1]);
  const loss = new Float64Array(3).fill(9), lse = new Float64Array(3).fill(9);
  assert.equal(k.crossEntropy(logits, labels, loss, lse, 3, v, -100, 0), 2);
  const lse0 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(4));
  assert.ok(Math.abs(lse[0] - lse0) < 1e-15 && Math.abs(loss[0] - (lse0 - 4)) < 1e-15);
  assert.equal(loss[1], 0);
  assert.equal(lse[1], 0);
  // ε = 0.2: loss = lse − 0.8·z[label] − 0.05·Σz
  k.crossEntropy(logits, labels, loss, lse, 3, v, -100, 0.2);
  assert.ok(Math.abs(loss[0] - (lse0 - 0.8 * 4 - 0.05 * 10)) < 1e-14);
  // Every row ignored: count 0, zero losses, no gradient.
  const none = Int32Array.from([-100, -100, -100]);
  assert.equal(k.crossEntropy(logits, none, loss, lse, 3, v, -100, 0.1), 0);
  assert.deepEqual(Array.from(loss), [0, 0, 0]);
  const dlogits = new Float64Array(12);
  k.crossEntropyBackward(logits, none, lse, dlogits, 3, v, -100, 0.1, 1);
  assert.ok(dlogits.every((g) => g === 0));
  // Uniform logits: loss = log V for any label.
  assert.equal(k.crossEntropy(f64([0, 0, 0, 0]), Int32Array.from([2]), loss, lse, 1, v, -100, 0), 1);
  assert.ok(Math.abs(loss[0] - Math.log(4)) < 1e-15);
});

test('embeddingBackward matches finite differences with repeated ids', () => {
  const rng = new Rng(5);
  const [tableRows, dim, n] = [6, 5, 7];
  const table = randn(rng, tableRows * dim), ids = Int32Array.from([2, 0, 2, 5, 2, 1, 0]), w = randn(rng, n * dim);
  const out = new Float64Array(n * dim);
  const objective = () => { k.embedding(table, ids, out, n, dim); return dot(w, out); };
  objective();
  assert.deepEqual(Array.from(out.subarray(dim, 2 * dim)), Array.from(table.subarray(0, dim)));
  const before = randn(rng, tableRows * dim);
  const dtable = f64(before);
  k.embeddingBackward(w, ids, dtable, n, dim);
  assertClose(accumulated(dtable, before), numericGradient(table, objective), FD_TOLERANCE, 'dtable');
});

test('dropoutBackward matches finite differences; mask follows uniformAt', () => {
  const rng = new Rng(6);
  const [n, p, seed, offset] = [50, 0.3, 1234, 99];
  const x = randn(rng, n), w = randn(rng, n), out = new Float64Array(n);
  const objective = () => { k.dropout(x, out, n, p, seed, offset); return dot(w, out); };
  objective();
  for (let i = 0; i < n; i++) {
    const keep = uniformAt(seed, offset + i) >= p;
    assert.equal(out[i], keep ? x[i] / (1 - p) : 0);
  }
  const before = randn(rng, n);
  const dx = f64(before);
  k.dropoutBackward(w, dx, n, p, seed, offset);
  assertClose(accumulated(dx, before), numericGradient(x, objective), FD_TOLERANCE, 'dropout dx');
});

test('dropout keep rate is close to 1 − p', () => {
  const n = 200_000;
  const x = new Float32Array(n).fill(1), out = new Float32Array(n);
  for (const p of [0.1, 0.5]) {
    k.dropout(x, out, n, p, 42, 0);
    const kept = out.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) / n;
    assert.ok(Math.abs(kept - (1 - p)) < 0.005, `p=${p}: kept ${kept}`);
  }
});

test('permute backward (inverse permutation, accumulate) matches finite differences', () => {
  const rng = new Rng(7);
  const shape = [2, 3, 4, 2], perm = [0, 2, 3, 1];
  const total = 48;
  const x = randn(rng, total), w = randn(rng, total), y = new Float64Array(total);
  const objective = () => { k.permute(x, y, shape, perm, false); return dot(w, y); };
  objective();
  // y[a, c, d, b] = x[a, b, c, d]
  assert.equal(y[((1 * 4 + 2) * 2 + 1) * 3 + 2], x[((1 * 3 + 2) * 4 + 2) * 2 + 1]);
  const inverse = perm.map((_, i) => perm.indexOf(i));
  const before = randn(rng, total);
  const dx = f64(before);
  k.permute(w, dx, perm.map((p) => shape[p]), inverse, true);
  assertClose(accumulated(dx, before), numericGradient(x, objective), FD_TOLERANCE, 'permute dx');
});

test('elementwise kernels: sumRows accumulates, aliasing add/mul/scale, sumSquares', () => {
  const x = f64([1, 2, 3, 4, 5, 6]);
  const out = f64([10, 20, 30]);
  k.sumRows(x, out, 2, 3);
  assert.deepEqual(Array.from(out), [15, 27, 39]);
  const a = f64([1, 2, 3]), b = f64([4, 5, 6]);
  k.add(a, b, a, 3);
  assert.deepEqual(Array.from(a), [5, 7, 9]);
  k.mul(a, b, b, 3);
  assert.deepEqual(Array.from(b), [20, 35, 54]);
  k.axpy(2, a, b, 3);
  assert.deepEqual(Array.from(b), [30, 49, 72]);
  k.scale(b, 0.5, b, 3);
  assert.deepEqual(Array.from(b), [15, 24.5, 36]);
  assert.equal(k.sumSquares(f64([3, 4, 12]), 3), 169);
  assert.equal(k.sumSquares(f64([3, 4, 12]), 2), 25);
});

test('adamw matches a hand-computed PyTorch AdamW step', () => {
  const [lr, beta1, beta2, eps, wd] = [1e-3, 0.9, 0.999, 1e-8, 0.01];
  const param = f64([1, -2, 0.5]), m = new Float64Array(3), v = new Float64Array(3);
  const grads = [f64([0.1, -0.2, 0.3]), f64([-0.05, -0.1, 0.6])];
  // torch.optim.AdamW, step by step (param.mul_(1-lr·wd); exp_avg.lerp_; exp_avg_sq.mul_.addcmul_;
  // param.addcdiv_(exp_avg, exp_avg_sq.sqrt()/√bc2 + eps, value=-lr/bc1)).
  const p = [1, -2, 0.5], em = [0, 0, 0], ev = [0, 0, 0];
  for (let t = 1; t <= 2; t++) {
    k.adamw(param, grads[t - 1], m, v, 3, lr, beta1, beta2, eps, wd, t);
    for (let i = 0; i < 3; i++) {
      const g = grads[t - 1][i];
      p[i] *= 1 - lr * wd;
      em[i] += (g - em[i]) * (1 - beta1);
      ev[i] = ev[i] * beta2 + (1 - beta2) * g * g;
      p[i] -= (lr / (1 - beta1 ** t)) * em[i] / (Math.sqrt(ev[i]) / Math.sqrt(1 - beta2 ** t) + eps);
    }
    assertClose(param, p, 1e-15, `param after step ${t}`);
    assertClose(m, em, 1e-15, `m after step ${t}`);
    assertClose(v, ev, 1e-15, `v after step ${t}`);
  }
  // Step 1 by hand: m̂ = g, v̂ = g², so p₁ = p₀(1 − lr·wd) − lr·g/(|g| + eps).
  const firstStep = f64([1, -2, 0.5]);
  k.adamw(firstStep, grads[0], new Float64Array(3), new Float64Array(3), 3, lr, beta1, beta2, eps, wd, 1);
  assert.ok(Math.abs(firstStep[0] - (0.99999 - 1e-3 * 0.1 / (0.1 + 1e-8))) < 1e-15);
  assert.ok(Math.abs(firstStep[1] - (-1.99998 + 1e-3 * 0.2 / (0.2 + 1e-8))) < 1e-15);
  // After step 2 (values computed by hand with the formulas above).
  assert.ok(Math.abs(param[0] - 0.9987136731940329) < 1e-15, `param[0] = ${param[0]}`);
});
