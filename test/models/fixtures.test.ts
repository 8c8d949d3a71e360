/**
 * The engine reproduces PyTorch: GPT-2 (causal, tied head) and BERT (bidirectional with padding,
 * MLM + NSP) built from engine ops match ../shared/fixtures logits, losses and gradients to 1e-4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend, type BackendName } from '../../src/backend/index.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { GPT, type GPTConfig } from '../../src/models/gpt.ts';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import type { Module } from '../../src/nn/module.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { relError } from '../helpers/numeric.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
/** Fixtures of this repository (made by scripts/fixtures/*.py with PyTorch). */
const ownFixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const TOL = 1e-4;

function loadFixture(name: string) {
  const dir = join(name.startsWith('bert-relative') ? ownFixtures : fixtures, name);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
  const weights = readSafetensors(join(dir, 'model.safetensors'));
  const expected = readSafetensors(join(dir, 'expected.safetensors'));
  return { config, inputs, weights, expected };
}

function loadWeights(model: Module, weights: ReturnType<typeof readSafetensors>): void {
  const state = new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const));
  const { missing, unexpected } = model.loadStateDict(state);
  assert.deepEqual(missing, [], 'parameters missing from the fixture');
  assert.deepEqual(unexpected, [], 'fixture tensors the model does not have');
}

function compare(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  const err = relError(actual, expected);
  assert.ok(err <= TOL, `${label}: relative error ${err.toExponential(3)} > ${TOL}`);
  return err;
}

function compareGrads(model: Module, expected: ReturnType<typeof readSafetensors>, backendName: string): number {
  const params = new Map<string, Tensor>(model.namedParameters());
  let checked = 0;
  for (const name of expected.names.filter((n) => n.startsWith('grad.'))) {
    const p = params.get(name.slice(5));
    assert.ok(p, `no parameter for ${name}`);
    assert.ok(p.grad, `${name}: no gradient computed`);
    compare(`${backendName} ${name}`, p.grad.data, expected.getFloat32(name));
    checked++;
  }
  return checked;
}

for (const backendName of ['native', 'reference'] as BackendName[]) {
  test(`gpt2-tiny reproduces PyTorch logits, loss and gradients (${backendName})`, () => {
    setBackend(backendName);
    const { config, inputs, weights, expected } = loadFixture('gpt2-tiny');
    const model = new GPT(config as GPTConfig);
    loadWeights(model, weights);
    const ids = Int32Array.from((inputs.input_ids as number[][]).flat());
    const [b, t] = [inputs.input_ids.length, inputs.input_ids[0].length];
    const { logits, loss } = model.forward(ids, b, t, ids);
    compare(`${backendName} logits`, logits.data, expected.getFloat32('logits'));
    compare(`${backendName} loss`, loss!.data, expected.getFloat32('loss'));
    loss!.backward();
    const n = compareGrads(model, expected, backendName);
    assert.ok(n >= 5, `only ${n} gradients compared`);
  });

  for (const name of ['bert-tiny', 'bert-relative-tiny']) test(`${name} reproduces PyTorch MLM+NSP outputs and gradients (${backendName})`, () => {
    setBackend(backendName);
    const { config, inputs, weights, expected } = loadFixture(name);
    const model = new Bert(config as BertConfig);
    loadWeights(model, weights);
    const rows = inputs.input_ids as number[][];
    const out = model.forward(
      {
        inputIds: Int32Array.from(rows.flat()),
        batch: rows.length,
        length: rows[0]!.length,
        tokenTypeIds: Int32Array.from((inputs.token_type_ids as number[][]).flat()),
        attentionMask: Uint8Array.from((inputs.attention_mask as number[][]).flat()),
      },
      Int32Array.from((inputs.labels as number[][]).flat()),
      Int32Array.from(inputs.next_sentence_label as number[]),
    );
    compare(`${backendName} prediction_logits`, out.predictionLogits.data, expected.getFloat32('prediction_logits'));
    compare(`${backendName} seq_relationship_logits`, out.seqRelationshipLogits.data, expected.getFloat32('seq_relationship_logits'));
    compare(`${backendName} last_hidden_state`, out.lastHiddenState.data, expected.getFloat32('last_hidden_state'));
    compare(`${backendName} pooled_output`, out.pooledOutput.data, expected.getFloat32('pooled_output'));
    compare(`${backendName} mlm_loss`, out.mlmLoss!.data, expected.getFloat32('mlm_loss'));
    compare(`${backendName} nsp_loss`, out.nspLoss!.data, expected.getFloat32('nsp_loss'));
    compare(`${backendName} loss`, out.loss!.data, expected.getFloat32('loss'));
    out.loss!.backward();
    const n = compareGrads(model, expected, backendName);
    assert.ok(n >= 6, `only ${n} gradients compared`);
  });
}
