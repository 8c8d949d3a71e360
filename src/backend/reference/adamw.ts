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
  checkStep('adamw', step);
  for (const [name, a] of Object.entries({ param, grad, m, v })) checkLength('adamw', name, a, n, 'n');
  adamwTensor(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, 1);
}

/**
 * adamw on every tensor t with g = gradScale·grads[t][i] stored at the grad array's precision (what
 * scale(grads[t], gradScale, grads[t]) writes), weight decay weightDecay[t]; the grads are not modified.
 */
export function adamwGroup(params: readonly FloatArray[], grads: readonly FloatArray[], m: readonly FloatArray[], v: readonly FloatArray[],
  weightDecay: readonly number[], lr: number, beta1: number, beta2: number, eps: number, step: number, gradScale: number): void {
  checkStep('adamwGroup', step);
  for (const [name, list] of Object.entries({ grads, m, v, weightDecay })) {
    if (list.length !== params.length) throw new RangeError(`reference adamwGroup: '${name}' has ${list.length} entries, 'params' has ${params.length}`);
  }
  params.forEach((p, t) => {
    for (const [name, a] of Object.entries({ grads, m, v })) checkLength('adamwGroup', `${name}[${t}]`, a[t]!, p.length, 'params[i].length');
  });
  params.forEach((p, t) => adamwTensor(p, grads[t]!, m[t]!, v[t]!, p.length, lr, beta1, beta2, eps, weightDecay[t]!, step, gradScale));
}

function checkStep(kernel: string, step: number): void {
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`reference ${kernel}: step must be an integer ≥ 1, got ${step}`);
}

function adamwTensor(param: FloatArray, grad: FloatArray, m: FloatArray, v: FloatArray, n: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: number): void {
  const stepSize = lr / (1 - beta1 ** step);
  const bias2Sqrt = Math.sqrt(1 - beta2 ** step);
  const decay = 1 - lr * weightDecay;
  // scale's product lands in the grad array, i.e. is rounded to float32 for a Float32Array
  const round = grad instanceof Float32Array ? Math.fround : (x: number) => x;
  for (let i = 0; i < n; i++) {
    const g = gradScale === 1 ? grad[i] : round(gradScale * grad[i]);
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / bias2Sqrt + eps);
  }
}
