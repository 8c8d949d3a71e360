/**
 * Whole-model agreement between backends: a GPT and a BERT with odd sizes run forward + backward on
 * the native and the reference backend; logits, loss and every parameter gradient must agree in fp32,
 * and within bf16 tolerance under autocast (native bf16 vs reference bf16 — same input rounding).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setBackend, type BackendName } from '../../src/backend/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { Bert } from '../../src/models/bert.ts';
import { autocast } from '../../src/tensor/tensor.ts';
import type { Module } from '../../src/nn/module.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { relError } from '../helpers/numeric.ts';

interface Run {
  outputs: Float32Array[];
  grads: Map<string, Float32Array>;
}

function runOn(backend: BackendName, bf16: boolean, make: () => Module, step: (m: Module) => { outputs: Tensor[]; loss: Tensor }): Run {
  setBackend(backend);
  const model = make();
  return autocast(bf16, () => {
    const { outputs, loss } = step(model);
    loss.backward();
    return {
      outputs: outputs.map((t) => Float32Array.from(t.data)),
      grads: new Map(model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.grad?.data ?? [])])),
    };
  });
}

function agree(label: string, a: Run, b: Run, tol: number): void {
  a.outputs.forEach((o, i) => {
    const err = relError(o, b.outputs[i]!);
    assert.ok(err < tol, `${label}: output ${i} relative error ${err.toExponential(2)} ≥ ${tol}`);
  });
  for (const [name, g] of a.grads) {
    // The key bias adds the same q·b to every score of a row, which softmax cancels: its true
    // gradient is exactly zero and both backends return rounding noise. Check it is tiny instead.
    if (name.endsWith('attention.self.key.bias')) {
      const noise = Math.max(...g.map(Math.abs));
      assert.ok(noise < 1e-5, `${label}: ${name} should be ~0, got ${noise}`);
      continue;
    }
    const err = relError(g, b.grads.get(name)!);
    assert.ok(err < tol, `${label}: grad ${name} relative error ${err.toExponential(2)} ≥ ${tol}`);
  }
}

const gptMake = () => new GPT({ model_type: 'gpt2', vocab_size: 97, n_positions: 40, n_embd: 48, n_layer: 2, n_head: 3 }, 3);
const gptStep = (b: number, t: number) => (m: Module) => {
  const ids = Int32Array.from({ length: b * t }, (_, i) => (i * 31 + 7) % 97);
  const { logits, loss } = (m as GPT).forward(ids, b, t, ids);
  return { outputs: [logits, loss!], loss: loss! };
};

const bertMake = () => new Bert({ model_type: 'bert', vocab_size: 101, hidden_size: 36, num_hidden_layers: 2, num_attention_heads: 3, intermediate_size: 70, max_position_embeddings: 40 }, 4);
const bertStep = (m: Module) => {
  const b = 3, t = 33;
  const ids = Int32Array.from({ length: b * t }, (_, i) => (i * 17 + 3) % 101);
  const mask = Uint8Array.from({ length: b * t }, (_, i) => (i % t < t - (i / t | 0) * 5 ? 1 : 0));
  const labels = Int32Array.from({ length: b * t }, (_, i) => (i % 4 === 1 ? (i * 5) % 101 : -100));
  const out = (m as Bert).forward({ inputIds: ids, batch: b, length: t, attentionMask: mask, tokenTypeIds: Int32Array.from({ length: b * t }, (_, i) => (i % t > 15 ? 1 : 0)) }, labels, new Int32Array([0, 1, 1]));
  return { outputs: [out.predictionLogits, out.pooledOutput, out.loss!], loss: out.loss! };
};

for (const [b, t] of [[1, 1], [2, 7], [3, 33]] as const) {
  test(`GPT B=${b} T=${t}: native fp32 = reference fp32`, () => {
    agree('gpt fp32', runOn('native', false, gptMake, gptStep(b, t)), runOn('reference', false, gptMake, gptStep(b, t)), 1e-4);
  });
}
test('GPT bf16 autocast: native = reference within bf16 tolerance', () => {
  agree('gpt bf16', runOn('native', true, gptMake, gptStep(2, 33)), runOn('reference', true, gptMake, gptStep(2, 33)), 2e-2);
});
test('BERT with padding: native fp32 = reference fp32', () => {
  agree('bert fp32', runOn('native', false, bertMake, bertStep), runOn('reference', false, bertMake, bertStep), 1e-4);
});
test('BERT bf16 autocast: native = reference within bf16 tolerance', () => {
  agree('bert bf16', runOn('native', true, bertMake, bertStep), runOn('reference', true, bertMake, bertStep), 2e-2);
});
