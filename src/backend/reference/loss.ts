/** Reference fused softmax cross-entropy (float64 accumulation). */
import type { FloatArray } from '../types.ts';
import { checkLength, checkSize } from './check.ts';

function checkArgs(kernel: string, logits: FloatArray, labels: Int32Array, perRow: Record<string, FloatArray>,
  rows: number, v: number, ignoreIndex: number): void {
  checkSize(kernel, 'rows', rows);
  checkSize(kernel, 'v', v);
  checkLength(kernel, 'logits', logits, rows * v, 'rows*v');
  checkLength(kernel, 'labels', labels, rows, 'rows');
  for (const [name, a] of Object.entries(perRow)) checkLength(kernel, name, a, rows, 'rows');
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label !== ignoreIndex && (label < 0 || label >= v)) {
      throw new RangeError(`reference ${kernel}: label ${label} at row ${r} is out of range [0, ${v}) and is not ignoreIndex ${ignoreIndex}`);
    }
  }
}

/**
 * loss_r = lse_r − (1−ε)·z[label] − (ε/V)·Σ_j z_j,  lse_r = log Σ_j exp(z_j)  (0 and 0 for ignored rows).
 * Returns the number of non-ignored rows.
 */
export function crossEntropy(logits: FloatArray, labels: Int32Array, loss: FloatArray, lse: FloatArray,
  rows: number, v: number, ignoreIndex: number, smoothing: number): number {
  checkArgs('crossEntropy', logits, labels, { loss, lse }, rows, v, ignoreIndex);
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label === ignoreIndex) {
      loss[r] = 0;
      lse[r] = 0;
      continue;
    }
    count++;
    const o = r * v;
    let max = -Infinity;
    for (let j = 0; j < v; j++) max = Math.max(max, logits[o + j]);
    let sumExp = 0;
    let sumLogits = 0;
    for (let j = 0; j < v; j++) {
      sumExp += Math.exp(logits[o + j] - max);
      sumLogits += logits[o + j];
    }
    const logSumExp = max + Math.log(sumExp);
    lse[r] = logSumExp;
    loss[r] = logSumExp - (1 - smoothing) * logits[o + label] - (smoothing / v) * sumLogits;
  }
  return count;
}

/** dlogits[r,j] += scale·(softmax(z_r)_j − (1−ε)·[j = label_r] − ε/V) for non-ignored rows */
export function crossEntropyBackward(logits: FloatArray, labels: Int32Array, lse: FloatArray, dlogits: FloatArray,
  rows: number, v: number, ignoreIndex: number, smoothing: number, scale: number): void {
  checkArgs('crossEntropyBackward', logits, labels, { lse }, rows, v, ignoreIndex);
  checkLength('crossEntropyBackward', 'dlogits', dlogits, rows * v, 'rows*v');
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label === ignoreIndex) continue;
    const o = r * v;
    for (let j = 0; j < v; j++) {
      const target = (j === label ? 1 - smoothing : 0) + smoothing / v;
      dlogits[o + j] += scale * (Math.exp(logits[o + j] - lse[r]) - target);
    }
  }
}
