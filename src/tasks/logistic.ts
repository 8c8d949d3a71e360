/**
 * L2-regularised logistic regression with scikit-learn's LogisticRegression(C, solver='lbfgs') objective:
 *
 *   minimise  C · Σᵢ lossᵢ + ½‖W‖²        (the intercepts b are not penalised)
 *
 *   2 classes   one weight vector, p(class 1 | x) = σ(w·x + b),   lossᵢ = log(1 + e^z) − yᵢ z
 *   ≥ 3 classes multinomial softmax over K weight vectors,          lossᵢ = logΣₖ e^{z_k} − z_{yᵢ}
 *
 * Like scikit-learn, the solver works on the same objective divided by n (mean loss + ‖W‖²/(2Cn)), so
 * that the stopping rule — max |∂f/∂θ| ≤ tol — means the same for any data size; the default tol is ten
 * times tighter than scikit-learn's 1e-4. Solved in float64 with L-BFGS (10 correction pairs, as scipy)
 * and a strong-Wolfe line search (lbfgs.ts). Features are a sparse CSR matrix (TF-IDF) or a dense row-major
 * matrix (pooled hidden states); the inner loops allocate nothing per element.
 */
import { lbfgs, type Evaluate } from './lbfgs.ts';

export interface CsrMatrix {
  rows: number;
  cols: number;
  /** Row i's entries are indices/values[indptr[i] .. indptr[i+1]). */
  indptr: Int32Array;
  indices: Int32Array;
  values: Float64Array;
}

export interface DenseMatrix {
  rows: number;
  cols: number;
  /** Row-major, rows × cols. */
  data: Float32Array | Float64Array;
}

export type FeatureMatrix = CsrMatrix | DenseMatrix;

export function isCsr(x: FeatureMatrix): x is CsrMatrix {
  return 'indptr' in x;
}

/** A dense feature matrix over an existing row-major buffer (no copy). */
export function denseMatrix(data: Float32Array | Float64Array, rows: number, cols: number): DenseMatrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols <= 0 || data.length !== rows * cols) {
    throw new RangeError(`denseMatrix: ${data.length} values cannot be ${rows} × ${cols}`);
  }
  return { rows, cols, data };
}

export interface LogisticOptions {
  /** Inverse regularisation strength (scikit-learn's C). Default 1. */
  C?: number;
  /** L-BFGS iterations at most. Default 1000. */
  maxIter?: number;
  /** Stop when every component of the n-scaled objective's gradient is at most this. Default 1e-5. */
  tol?: number;
  /** Warm start: a previous model's weights and biases of the same shape. */
  init?: { weights: Float64Array; bias: Float64Array };
}

export interface LogisticModel {
  nClasses: number;
  nFeatures: number;
  C: number;
  /** (nClasses === 2 ? 1 : nClasses) × nFeatures, row-major (scikit-learn's coef_). */
  weights: Float64Array;
  /** One per weight row (intercept_). */
  bias: Float64Array;
  iterations: number;
  /** Objective + gradient evaluations (iterations plus line-search trials). */
  evaluations: number;
  converged: boolean;
  /** C·Σ loss + ½‖W‖² at the solution (scikit-learn's unscaled objective). */
  objective: number;
  /** rows × nClasses class probabilities. */
  predictProba(X: FeatureMatrix): Float64Array;
  /** Class ids (the first of equal maxima). */
  predict(X: FeatureMatrix): Int32Array;
}

/** Dense float32 as float64 (a copy), anything else as it is. */
function asFloat64(X: FeatureMatrix): FeatureMatrix {
  return isCsr(X) || X.data instanceof Float64Array ? X : { rows: X.rows, cols: X.cols, data: Float64Array.from(X.data) };
}

/** out[i·K + k] = b[k] + w_k · x_i. */
function scores(X: FeatureMatrix, W: Float64Array, b: Float64Array, K: number, out: Float64Array): void {
  const d = X.cols;
  if (isCsr(X)) {
    const { indptr, indices, values } = X;
    for (let i = 0; i < X.rows; i++) {
      const p0 = indptr[i]!;
      const p1 = indptr[i + 1]!;
      for (let k = 0; k < K; k++) {
        const wo = k * d;
        let s = b[k]!;
        for (let p = p0; p < p1; p++) s += values[p]! * W[wo + indices[p]!]!;
        out[i * K + k] = s;
      }
    }
  } else {
    const x = X.data;
    for (let i = 0; i < X.rows; i++) {
      const xo = i * d;
      for (let k = 0; k < K; k++) {
        const wo = k * d;
        let s = b[k]!;
        for (let j = 0; j < d; j++) s += x[xo + j]! * W[wo + j]!;
        out[i * K + k] = s;
      }
    }
  }
}

/** Turns scores into probabilities in place (K === 1: σ; else softmax over each row). */
function toProbabilities(Z: Float64Array, rows: number, K: number): void {
  if (K === 1) {
    for (let i = 0; i < rows; i++) Z[i] = 1 / (1 + Math.exp(-Z[i]!));
    return;
  }
  for (let i = 0; i < rows; i++) {
    const o = i * K;
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, Z[o + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Z[o + k] = Math.exp(Z[o + k]! - m);
    for (let k = 0; k < K; k++) Z[o + k]! /= s;
  }
}

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/**
 * z[k] = b[k] + w_k · x_row for a dense row. Four classes at a time: each feature is loaded once for
 * four dot products (scalar JavaScript is bound by loads, not by multiplies).
 */
function denseScores(x: Float64Array, xo: number, W: Float64Array, b: Float64Array, K: number, d: number, z: Float64Array): void {
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const w0 = k * d;
    const w1 = w0 + d;
    const w2 = w1 + d;
    const w3 = w2 + d;
    let s0 = b[k]!;
    let s1 = b[k + 1]!;
    let s2 = b[k + 2]!;
    let s3 = b[k + 3]!;
    for (let j = 0; j < d; j++) {
      const v = x[xo + j]!;
      s0 += v * W[w0 + j]!;
      s1 += v * W[w1 + j]!;
      s2 += v * W[w2 + j]!;
      s3 += v * W[w3 + j]!;
    }
    z[k] = s0;
    z[k + 1] = s1;
    z[k + 2] = s2;
    z[k + 3] = s3;
  }
  for (; k < K; k++) {
    const wo = k * d;
    // Two accumulators: independent additions for the CPU to overlap.
    let s0 = b[k]!;
    let s1 = 0;
    let j = 0;
    for (; j + 2 <= d; j += 2) {
      s0 += x[xo + j]! * W[wo + j]!;
      s1 += x[xo + j + 1]! * W[wo + j + 1]!;
    }
    if (j < d) s0 += x[xo + j]! * W[wo + j]!;
    z[k] = s0 + s1;
  }
}

/** G[k] += r[k] · x_row for a dense row, four classes at a time. */
function denseAccumulate(x: Float64Array, xo: number, r: Float64Array, K: number, d: number, G: Float64Array): void {
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const g0 = k * d;
    const g1 = g0 + d;
    const g2 = g1 + d;
    const g3 = g2 + d;
    const r0 = r[k]!;
    const r1 = r[k + 1]!;
    const r2 = r[k + 2]!;
    const r3 = r[k + 3]!;
    for (let j = 0; j < d; j++) {
      const v = x[xo + j]!;
      G[g0 + j]! += r0 * v;
      G[g1 + j]! += r1 * v;
      G[g2 + j]! += r2 * v;
      G[g3 + j]! += r3 * v;
    }
  }
  for (; k < K; k++) {
    const go = k * d;
    const rk = r[k]!;
    for (let j = 0; j < d; j++) G[go + j]! += rk * x[xo + j]!;
  }
}

/**
 * Row i's loss from its scores z[0..K) and, in place of the scores, its residuals (p − onehot(y)) / n.
 */
function rowLoss(z: Float64Array, K: number, yi: number, n: number): number {
  if (K === 1) {
    const v = z[0]!;
    z[0] = (1 / (1 + Math.exp(-v)) - yi) / n;
    return softplus(v) - yi * v;
  }
  const zy = z[yi]!;
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, z[k]!);
  let s = 0;
  for (let k = 0; k < K; k++) s += z[k] = Math.exp(z[k]! - m);
  const loss = m + Math.log(s) - zy;
  for (let k = 0; k < K; k++) z[k] = (z[k]! / s - (k === yi ? 1 : 0)) / n;
  return loss;
}

/**
 * The n-scaled objective f = (1/n)·Σ loss + ‖W‖²/(2Cn) and its gradient, over θ = [W (K'×d), b (K')].
 * One pass over the rows: each row's scores, residuals and gradient contribution while the row is in
 * cache (the features are read once per evaluation, not twice). z is scratch of K'.
 */
function objective(X: FeatureMatrix, y: Int32Array, K: number, C: number, theta: Float64Array, grad: Float64Array, z: Float64Array): number {
  const n = X.rows;
  const d = X.cols;
  const W = theta.subarray(0, K * d);
  const b = theta.subarray(K * d);
  grad.fill(0);
  let loss = 0;
  if (isCsr(X)) {
    const { indptr, indices, values } = X;
    for (let i = 0; i < n; i++) {
      const p0 = indptr[i]!;
      const p1 = indptr[i + 1]!;
      for (let k = 0; k < K; k++) {
        const wo = k * d;
        let s = b[k]!;
        for (let p = p0; p < p1; p++) s += values[p]! * W[wo + indices[p]!]!;
        z[k] = s;
      }
      loss += rowLoss(z, K, y[i]!, n);
      for (let k = 0; k < K; k++) {
        const r = z[k]!;
        const go = k * d;
        for (let p = p0; p < p1; p++) grad[go + indices[p]!]! += r * values[p]!;
        grad[K * d + k]! += r;
      }
    }
  } else {
    const x = X.data as Float64Array;
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      denseScores(x, xo, W, b, K, d, z);
      loss += rowLoss(z, K, y[i]!, n);
      denseAccumulate(x, xo, z, K, d, grad);
      for (let k = 0; k < K; k++) grad[K * d + k]! += z[k]!;
    }
  }
  let wsq = 0;
  const reg = 1 / (C * n);
  for (let j = 0; j < K * d; j++) {
    wsq += W[j]! * W[j]!;
    grad[j]! += reg * W[j]!;
  }
  return loss / n + (0.5 * reg) * wsq;
}

function checkInputs(X: FeatureMatrix, y: Int32Array, nClasses: number, C: number): void {
  if (!Number.isInteger(nClasses) || nClasses < 2) throw new RangeError(`fitLogistic: nClasses must be an integer ≥ 2, got ${nClasses}`);
  if (y.length !== X.rows) throw new RangeError(`fitLogistic: ${y.length} labels for ${X.rows} rows`);
  if (X.rows === 0) throw new RangeError('fitLogistic: no training rows');
  if (!(C > 0) || !Number.isFinite(C)) throw new RangeError(`fitLogistic: C must be a positive number, got ${C}`);
  for (let i = 0; i < y.length; i++) {
    if (!(y[i]! >= 0 && y[i]! < nClasses)) throw new RangeError(`fitLogistic: label ${y[i]} of row ${i} is not a class id in 0..${nClasses - 1}`);
  }
  if (isCsr(X)) {
    if (X.indptr.length !== X.rows + 1 || X.indptr[X.rows] !== X.indices.length || X.indices.length !== X.values.length) throw new RangeError('fitLogistic: inconsistent CSR matrix');
  } else if (X.data.length !== X.rows * X.cols) {
    throw new RangeError(`fitLogistic: ${X.data.length} values for a ${X.rows} × ${X.cols} matrix`);
  }
}

/** Fits the model; y holds class ids 0..nClasses−1. */
export function fitLogistic(X: FeatureMatrix, y: Int32Array, nClasses: number, options: LogisticOptions = {}): LogisticModel {
  const C = options.C ?? 1;
  checkInputs(X, y, nClasses, C);
  const K = nClasses === 2 ? 1 : nClasses;
  const d = X.cols;
  const theta = new Float64Array(K * d + K);
  if (options.init) {
    if (options.init.weights.length !== K * d || options.init.bias.length !== K) throw new RangeError('fitLogistic: init has the wrong shape');
    theta.set(options.init.weights);
    theta.set(options.init.bias, K * d);
  }
  // One element type in the hot loops: V8 keeps them monomorphic (a Float32Array here as well as
  // Float64Arrays elsewhere would make every access generic and several times slower).
  const Xf = asFloat64(X);
  const z = new Float64Array(K);
  let evaluations = 0;
  // Binary: the class ids 0/1 are already the targets of σ.
  const fg: Evaluate = (t, g) => (evaluations++, objective(Xf, y, K, C, t, g, z));
  const r = lbfgs(fg, theta, options.maxIter ?? 1000, options.tol ?? 1e-5);
  const weights = theta.slice(0, K * d);
  const bias = theta.slice(K * d);
  return makeModel(weights, bias, nClasses, C, { iterations: r.iterations, evaluations, converged: r.converged, objective: r.f * C * X.rows });
}

function makeModel(weights: Float64Array, bias: Float64Array, nClasses: number, C: number, fit: { iterations: number; evaluations: number; converged: boolean; objective: number }): LogisticModel {
  const K = nClasses === 2 ? 1 : nClasses;
  const nFeatures = weights.length / K;
  const scoresOf = (X: FeatureMatrix): Float64Array => {
    if (X.cols !== nFeatures) throw new RangeError(`predict: ${X.cols} features, the model has ${nFeatures}`);
    const Z = new Float64Array(X.rows * K);
    scores(asFloat64(X), weights, bias, K, Z);
    return Z;
  };
  const predictProba = (X: FeatureMatrix): Float64Array => {
    const Z = scoresOf(X);
    toProbabilities(Z, X.rows, K);
    if (K > 1) return Z;
    const P = new Float64Array(X.rows * 2);
    for (let i = 0; i < X.rows; i++) {
      P[2 * i] = 1 - Z[i]!;
      P[2 * i + 1] = Z[i]!;
    }
    return P;
  };
  const predict = (X: FeatureMatrix): Int32Array => {
    // Argmax of the scores (no exp needed); binary: class 1 when w·x + b > 0, as scikit-learn.
    const Z = scoresOf(X);
    const out = new Int32Array(X.rows);
    for (let i = 0; i < X.rows; i++) {
      if (K === 1) {
        out[i] = Z[i]! > 0 ? 1 : 0;
        continue;
      }
      let best = 0;
      for (let k = 1; k < K; k++) if (Z[i * K + k]! > Z[i * K + best]!) best = k;
      out[i] = best;
    }
    return out;
  };
  return { nClasses, nFeatures, C, weights, bias, ...fit, predictProba, predict };
}

export const C_GRID: readonly number[] = [0.1, 1, 10, 100];

export function accuracyOf(pred: Int32Array, y: Int32Array): number {
  let right = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) right++;
  return right / y.length;
}

export interface SelectCResult {
  C: number;
  valAccuracy: number;
  /** Validation accuracy of every C tried, in grid order. */
  scores: Array<{ C: number; accuracy: number }>;
  /** The model fitted on train with the chosen C. */
  model: LogisticModel;
}

/**
 * Chooses C on a validation set, as ref_tfidf.py does: Python's max over the grid in its order, so on
 * equal accuracy the first (with the default grid, the smallest) C wins. Each fit warm-starts from the
 * previous C's solution, which changes nothing but the time to converge.
 */
export function selectC(train: FeatureMatrix, yTrain: Int32Array, val: FeatureMatrix, yVal: Int32Array, nClasses: number, options: Omit<LogisticOptions, 'C' | 'init'> & { grid?: readonly number[] } = {}): SelectCResult {
  const grid = options.grid ?? C_GRID;
  if (grid.length === 0) throw new RangeError('selectC: empty grid');
  if (yVal.length !== val.rows || val.rows === 0) throw new RangeError(`selectC: ${yVal.length} validation labels for ${val.rows} rows`);
  let best: SelectCResult | null = null;
  const scores: SelectCResult['scores'] = [];
  let prev: LogisticModel | undefined;
  const order = grid.map((C, i) => ({ C, i })).sort((a, b) => a.C - b.C);
  const fitted = new Array<{ model: LogisticModel; accuracy: number }>(grid.length);
  for (const { C, i } of order) {
    const model = fitLogistic(train, yTrain, nClasses, { maxIter: options.maxIter, tol: options.tol, C, init: prev && { weights: prev.weights, bias: prev.bias } });
    fitted[i] = { model, accuracy: accuracyOf(model.predict(val), yVal) };
    prev = model;
  }
  grid.forEach((C, i) => {
    const { model, accuracy } = fitted[i]!;
    scores.push({ C, accuracy });
    if (!best || accuracy > best.valAccuracy) best = { C, valAccuracy: accuracy, scores, model };
  });
  return best!;
}
