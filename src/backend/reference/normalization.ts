/** Reference LayerNorm and softmax (float64 accumulation). */
import type { FloatArray } from '../types.ts';
import { checkLength, checkSize } from './check.ts';

function checkRows(kernel: string, rows: number, cols: number, matrices: Record<string, FloatArray>,
  vectors: Record<string, FloatArray>, perRow: Record<string, FloatArray>): void {
  checkSize(kernel, 'rows', rows);
  checkSize(kernel, 'cols', cols);
  for (const [name, a] of Object.entries(matrices)) checkLength(kernel, name, a, rows * cols, 'rows*cols');
  for (const [name, a] of Object.entries(vectors)) checkLength(kernel, name, a, cols, 'cols');
  for (const [name, a] of Object.entries(perRow)) checkLength(kernel, name, a, rows, 'rows');
}

/** μ = mean(x_r), σ² = mean((x_r−μ)²), rstd = 1/√(σ²+eps), out = (x−μ)·rstd·weight + bias */
export function layerNorm(x: FloatArray, weight: FloatArray, bias: FloatArray, out: FloatArray,
  mean: FloatArray, rstd: FloatArray, rows: number, cols: number, eps: number): void {
  checkRows('layerNorm', rows, cols, { x, out }, { weight, bias }, { mean, rstd });
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += x[o + j];
    const mu = sum / cols;
    let squares = 0;
    for (let j = 0; j < cols; j++) squares += (x[o + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(squares / cols + eps);
    for (let j = 0; j < cols; j++) out[o + j] = (x[o + j] - mu) * rs * weight[j] + bias[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

/**
 * x̂ = (x−μ)·rstd, g = dout·weight:
 *   dx += rstd·(g − mean(g) − x̂·mean(g·x̂)),  dweight += Σ_r dout·x̂,  dbias += Σ_r dout
 * (dx = 0 + rstd·(…) with accumulateDx = false: dx's old contents are not read).
 */
export function layerNormBackward(dout: FloatArray, x: FloatArray, weight: FloatArray, mean: FloatArray, rstd: FloatArray,
  dx: FloatArray, dweight: FloatArray, dbias: FloatArray, rows: number, cols: number, accumulateDx = true): void {
  checkRows('layerNormBackward', rows, cols, { dout, x, dx }, { weight, dweight, dbias }, { mean, rstd });
  const dweightSum = new Float64Array(cols);
  const dbiasSum = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = mean[r];
    const rs = rstd[r];
    let gSum = 0;
    let gxSum = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[o + j] - mu) * rs;
      const g = dout[o + j] * weight[j];
      gSum += g;
      gxSum += g * xhat;
      dweightSum[j] += dout[o + j] * xhat;
      dbiasSum[j] += dout[o + j];
    }
    const gMean = gSum / cols;
    const gxMean = gxSum / cols;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[o + j] - mu) * rs;
      dx[o + j] = (accumulateDx ? dx[o + j] : 0) + rs * (dout[o + j] * weight[j] - gMean - xhat * gxMean);
    }
  }
  for (let j = 0; j < cols; j++) {
    dweight[j] += dweightSum[j];
    dbias[j] += dbiasSum[j];
  }
}

/** out = exp(x − max) / Σ exp(x − max), per row */
export function softmax(x: FloatArray, out: FloatArray, rows: number, cols: number): void {
  checkRows('softmax', rows, cols, { x, out }, {}, {});
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[o + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(x[o + j] - max);
    for (let j = 0; j < cols; j++) out[o + j] = Math.exp(x[o + j] - max) / sum;
  }
}

/** dx += y ⊙ (dy − Σ_j dy_j·y_j), per row */
export function softmaxBackward(y: FloatArray, dy: FloatArray, dx: FloatArray, rows: number, cols: number): void {
  checkRows('softmaxBackward', rows, cols, { y, dy, dx }, {}, {});
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[o + j] * y[o + j];
    for (let j = 0; j < cols; j++) dx[o + j] += y[o + j] * (dy[o + j] - dot);
  }
}
