/**
 * Logistic regression against conditions that can be checked by hand: the optimum of
 * C·Σ loss + ½‖W‖² is where C·Xᵀ(P − Y) + W = 0 and Σ(P − Y) = 0 (unpenalised intercepts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { accuracyOf, denseMatrix, fitLogistic, selectC, type CsrMatrix, type DenseMatrix, type LogisticModel } from '../../src/tasks/logistic.ts';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** K blobs in d dimensions, centres far apart (separable). */
function blobs(perClass: number, K: number, d: number, seed: number, spread = 0.5): { X: DenseMatrix; y: Int32Array } {
  const rng = new Rng(seed);
  const n = perClass * K;
  const data = new Float64Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % K;
    y[i] = k;
    for (let j = 0; j < d; j++) data[i * d + j] = (j % K === k ? 4 : 0) + spread * rng.normal();
  }
  return { X: denseMatrix(data, n, d), y };
}

/** Largest |C·Xᵀ(P − Y) + W| and |Σ(P − Y)| over every weight row and intercept. */
function stationarity(m: LogisticModel, X: DenseMatrix, y: Int32Array): { w: number; b: number } {
  const K = m.nClasses === 2 ? 1 : m.nClasses;
  const d = X.cols;
  const P = m.predictProba(X);
  let w = 0;
  let b = 0;
  for (let k = 0; k < K; k++) {
    const cls = K === 1 ? 1 : k;
    const r = Array.from({ length: X.rows }, (_, i) => P[i * m.nClasses + cls]! - (y[i] === cls ? 1 : 0));
    b = Math.max(b, Math.abs(r.reduce((s, v) => s + v, 0)));
    for (let j = 0; j < d; j++) {
      let g = m.weights[k * d + j]!;
      for (let i = 0; i < X.rows; i++) g += m.C * r[i]! * X.data[i * d + j]!;
      w = Math.max(w, Math.abs(g));
    }
  }
  return { w, b };
}

test('1-D, two points: the weight solves w = 2C·σ(−w) with b = 0, found by bisection', () => {
  // x = (1, −1), y = (1, 0). By symmetry b = 0; dObjective/dw = C·[(σ(w) − 1) − σ(−w)] + w = w − 2C·σ(−w).
  for (const C of [0.1, 1, 10]) {
    let lo = 0;
    let hi = 100;
    for (let it = 0; it < 200; it++) {
      const mid = (lo + hi) / 2;
      if (mid - 2 * C * sigmoid(-mid) < 0) lo = mid;
      else hi = mid;
    }
    const m = fitLogistic(denseMatrix(Float64Array.of(1, -1), 2, 1), Int32Array.of(1, 0), 2, { C, tol: 1e-10 });
    assert.ok(m.converged);
    assert.ok(Math.abs(m.weights[0]! - lo) < 1e-8, `C=${C}: w ${m.weights[0]} vs ${lo}`);
    assert.ok(Math.abs(m.bias[0]!) < 1e-8, `C=${C}: b ${m.bias[0]}`);
    // The reported objective is the unscaled one: 2C·log(1 + e^{−w}) + w²/2.
    const w = m.weights[0]!;
    assert.ok(Math.abs(m.objective - (2 * C * Math.log1p(Math.exp(-w)) + (w * w) / 2)) < 1e-10);
  }
  // At C = 1 the fixed point is w ≈ 0.6714 (2σ(−0.6714) = 0.6714).
  const m = fitLogistic(denseMatrix(Float64Array.of(1, -1), 2, 1), Int32Array.of(1, 0), 2, { C: 1 });
  assert.ok(Math.abs(m.weights[0]! - 2 * sigmoid(-m.weights[0]!)) < 1e-5);
});

test('1-D, overlapping classes: the gradient of C·Σ loss + ½w² vanishes at the solution', () => {
  const X = denseMatrix(Float64Array.of(-2, -1, -0.5, 0.3, 0.5, 1, 1.5, 2.5, -0.2, 0.8), 10, 1);
  const y = Int32Array.of(0, 0, 1, 0, 1, 1, 0, 1, 0, 1);
  const m = fitLogistic(X, y, 2, { C: 2, tol: 1e-10 });
  const s = stationarity(m, X, y);
  assert.ok(s.w < 1e-7 && s.b < 1e-7, JSON.stringify(s));
  // The optimum is a minimum: nudging w or b either way raises the objective.
  const obj = (w: number, b: number) => 2 * Array.from(y, (yi, i) => {
    const z = w * X.data[i]! + b;
    return Math.log1p(Math.exp(z)) - yi * z;
  }).reduce((a, v) => a + v, 0) + (w * w) / 2;
  const [w, b] = [m.weights[0]!, m.bias[0]!];
  assert.ok(Math.abs(obj(w, b) - m.objective) < 1e-10);
  for (const [dw, db] of [[1e-3, 0], [-1e-3, 0], [0, 1e-3], [0, -1e-3]] as const) assert.ok(obj(w + dw, b + db) > m.objective);
});

test('binary, separable 2-D blobs: 100% on train and on new points, probabilities in [0, 1]', () => {
  const { X, y } = blobs(40, 2, 2, 1);
  const m = fitLogistic(X, y, 2, { C: 10 });
  assert.equal(m.weights.length, 2, 'one weight vector for two classes, as scikit-learn');
  assert.equal(accuracyOf(m.predict(X), y), 1);
  const t = blobs(30, 2, 2, 2);
  assert.equal(accuracyOf(m.predict(t.X), t.y), 1);
  const P = m.predictProba(t.X);
  for (let i = 0; i < t.X.rows; i++) assert.ok(Math.abs(P[2 * i]! + P[2 * i + 1]! - 1) < 1e-12 && P[2 * i + t.y[i]!]! > 0.5);
});

test('multinomial on 3 classes: 100% accuracy, stationarity of every class row, softmax rows sum to 1', () => {
  const { X, y } = blobs(30, 3, 4, 3, 1.2);
  const m = fitLogistic(X, y, 3, { C: 1, tol: 1e-9 });
  assert.equal(m.weights.length, 3 * 4);
  assert.equal(accuracyOf(m.predict(X), y), 1);
  const s = stationarity(m, X, y);
  assert.ok(s.w < 1e-5 && s.b < 1e-5, JSON.stringify(s));
  const P = m.predictProba(X);
  for (let i = 0; i < X.rows; i++) assert.ok(Math.abs(P[3 * i]! + P[3 * i + 1]! + P[3 * i + 2]! - 1) < 1e-12);
  const t = blobs(20, 3, 4, 4, 1.2);
  assert.ok(accuracyOf(m.predict(t.X), t.y) >= 0.95);
});

test('sparse CSR and dense input give the same model; float32 dense too', () => {
  const { X, y } = blobs(20, 3, 6, 5, 1.5);
  // Zero out a pattern of entries so the CSR matrix is really sparse.
  const data = Float64Array.from(X.data, (v, i) => (i % 3 === 1 ? 0 : v));
  const dense = denseMatrix(data, X.rows, X.cols);
  const indptr = new Int32Array(X.rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < X.rows; i++) {
    for (let j = 0; j < X.cols; j++) if (data[i * X.cols + j] !== 0) indices.push(j), values.push(data[i * X.cols + j]!);
    indptr[i + 1] = indices.length;
  }
  const csr: CsrMatrix = { rows: X.rows, cols: X.cols, indptr, indices: Int32Array.from(indices), values: Float64Array.from(values) };
  const a = fitLogistic(dense, y, 3, { C: 3, tol: 1e-9 });
  const b = fitLogistic(csr, y, 3, { C: 3, tol: 1e-9 });
  const c = fitLogistic(denseMatrix(Float32Array.from(data), X.rows, X.cols), y, 3, { C: 3, tol: 1e-9 });
  for (let j = 0; j < a.weights.length; j++) assert.ok(Math.abs(a.weights[j]! - b.weights[j]!) < 1e-6);
  assert.ok(Math.abs(a.objective - b.objective) < 1e-9);
  // float32 rounding of the inputs moves the optimum a little, not the predictions.
  assert.deepEqual(c.predict(dense), a.predict(dense));
  assert.deepEqual(a.predict(csr), a.predict(dense));
});

test('selectC: first best C in grid order; stronger C fits the training data more closely', () => {
  const { X, y } = blobs(20, 2, 3, 6);
  const v = blobs(10, 2, 3, 7);
  // Separable: every C gets 100% on validation, so the first grid entry wins (Python's max).
  const r = selectC(X, y, v.X, v.y, 2);
  assert.equal(r.C, 0.1);
  assert.deepEqual(r.scores.map((s) => s.C), [0.1, 1, 10, 100]);
  assert.ok(r.scores.every((s) => s.accuracy === 1));
  assert.equal(selectC(X, y, v.X, v.y, 2, { grid: [100, 1] }).C, 100);
  // Larger C: less shrinkage, larger weights.
  const norms = [0.1, 1, 10].map((C) => Math.hypot(...fitLogistic(X, y, 2, { C }).weights));
  assert.ok(norms[0]! < norms[1]! && norms[1]! < norms[2]!);
});

test('bad input: clear errors', () => {
  const X = denseMatrix(Float64Array.of(1, 2, 3), 3, 1);
  assert.throws(() => fitLogistic(X, Int32Array.of(0, 1), 2), /2 labels for 3 rows/);
  assert.throws(() => fitLogistic(X, Int32Array.of(0, 1, 2), 2), /label 2 of row 2 is not a class id in 0\.\.1/);
  assert.throws(() => fitLogistic(X, Int32Array.of(0, 1, 0), 1), /nClasses must be an integer ≥ 2/);
  assert.throws(() => fitLogistic(X, Int32Array.of(0, 1, 0), 2, { C: 0 }), /C must be a positive number/);
  assert.throws(() => denseMatrix(new Float32Array(5), 2, 3), /5 values cannot be 2 × 3/);
});
