/** Reference AdamW step, with the exact operation order of PyTorch's torch.optim.AdamW (single-tensor). */
import type { FloatArray } from '../types.ts';
import { checkLength, checkSize } from './check.ts';

/**
 *   p −= lr·wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
 *   p −= (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + eps)
 */
export function adamw(param: FloatArray, grad: FloatArray, m: FloatArray, v: FloatArray, n: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
  checkSize('adamw', 'n', n);
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`reference adamw: step must be an integer ≥ 1, got ${step}`);
  for (const [name, a] of Object.entries({ param, grad, m, v })) checkLength('adamw', name, a, n, 'n');
  const stepSize = lr / (1 - beta1 ** step);
  const bias2Sqrt = Math.sqrt(1 - beta2 ** step);
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / bias2Sqrt + eps);
  }
}
