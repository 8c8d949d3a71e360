/**
 * zeroGrad() is lazy (Tensor.gradStale): the next writer that overwrites the whole gradient (a weight
 * gradient's GEMM) skips the zero fill, every other reader or writer sees zeros. Each case compares
 * against fresh gradients (grad = null) of the same computation, on the native backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, withScope } from '../../src/tensor/tensor.ts';
import * as T from '../../src/tensor/index.ts';
import { linear, embedding, layerNorm } from '../../src/tensor/nn-ops.ts';
import { Rng } from '../../src/util/random.ts';

const rng = new Rng(11);
const param = (...shape: number[]) => {
  const t = new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape, true);
  return t;
};
// A tied embedding (read by the lookup and, transposed, by the output GEMM), a linear layer with a
// bias, a LayerNorm, and one parameter the loss never reaches.
const wte = param(7, 4), w = param(4, 4), b = param(4), lnW = param(4), lnB = param(4), unused = param(3);
const params = [wte, w, b, lnW, lnB, unused];
const ids = Int32Array.from([1, 3, 3, 6, 0, 2]);

function lossBackward(): void {
  withScope(() => {
    const x = embedding(wte, ids, [6]);
    const h = layerNorm(linear(x, w, b, 'in_out'), lnW, lnB, 1e-5);
    const logits = linear(h, wte, null, 'out_in');
    T.sum(T.mul(logits, logits)).backward();
  });
}
const grads = () => params.map((p) => Array.from(p.grad?.data ?? []));

test('zeroGrad: stale gradients read as zeros and are overwritten by the next backward', () => {
  for (const p of params) p.grad = null;
  unused.ensureGrad();
  lossBackward();
  const fresh = grads();
  assert.ok(fresh[0]!.some((v) => v !== 0) && fresh[1]!.some((v) => v !== 0), 'the loss reaches wte and w');
  assert.deepEqual(fresh[5], [0, 0, 0]);

  // Dirty the gradients, then zero them: a backward after zeroGrad gives the fresh gradients exactly.
  lossBackward();
  unused.grad!.data.fill(5);
  for (const p of params) p.zeroGrad();
  lossBackward();
  assert.deepEqual(grads(), fresh);

  // Without a backward, zeroed gradients read as zeros.
  for (const p of params) p.zeroGrad();
  for (const g of grads()) assert.ok(g.every((v) => v === 0));

  // Accumulation across two backwards after zeroGrad (gradient accumulation) is the doubled gradient.
  for (const p of params) p.zeroGrad();
  lossBackward();
  lossBackward();
  grads().forEach((g, i) => g.forEach((v, j) => assert.ok(Math.abs(v - 2 * fresh[i]![j]!) <= 1e-5 * (1 + Math.abs(v)), `param ${i}[${j}]: ${v} vs 2·${fresh[i]![j]}`)));
});
