/**
 * GPT-2 with an untied LM head (config tie_word_embeddings: false, HF's lm_head.weight [V, C]): the
 * head is its own parameter, logits use it, it survives a save/load round trip, the decoder's cached
 * head is it, and a tied model is unchanged (no lm_head, same init).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT, type GPTConfig } from '../../src/models/gpt.ts';
import { loadModelDir, writeModelFiles } from '../../src/models/load.ts';
import { transposedHead } from '../../src/infer/kv-cache.ts';
import { noGrad } from '../../src/tensor/tensor.ts';

const base: GPTConfig = { model_type: 'gpt2', vocab_size: 50, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2 } as GPTConfig;
const untied: GPTConfig = { ...base, tie_word_embeddings: false };
const ids = Int32Array.from([3, 7, 1, 49, 20, 5]);

test('an untied GPT has lm_head.weight and its logits are h · lm_headᵀ', () => {
  const model = new GPT(untied, 1);
  const names = model.namedParameters().map(([n]) => n);
  assert.ok(names.includes('lm_head.weight'));
  assert.deepEqual(model.lmHead!.shape, [50, 8]);
  const tied = new GPT(base, 1);
  assert.ok(!tied.namedParameters().some(([n]) => n === 'lm_head.weight'));
  // Same body init: the head is drawn after the body.
  assert.deepEqual(tied.transformer.wte.weight.data, model.transformer.wte.weight.data);
  noGrad(() => {
    const hidden = model.transformer.forward(ids, 1, ids.length).data;
    const logits = model.forward(ids, 1, ids.length).logits.data;
    const w = model.lmHead!.data;
    for (const [t, v] of [[0, 0], [5, 49], [2, 17]] as const) {
      let dot = 0;
      for (let j = 0; j < 8; j++) dot += hidden[t * 8 + j]! * w[v * 8 + j]!;
      assert.ok(Math.abs(dot - logits[t * 50 + v]!) < 1e-5, `logit[${t}, ${v}]`);
    }
  });
  const head = transposedHead(model);
  assert.equal(head[3 * 50 + 7], model.lmHead!.data[7 * 8 + 3]);
});

test('an untied GPT round-trips through a model directory with tie_word_embeddings false', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-untied-'));
  try {
    const model = new GPT(untied, 2);
    writeModelFiles(dir, model, untied);
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).tie_word_embeddings, false);
    const loaded = loadModelDir(dir);
    assert.equal(loaded.kind, 'gpt2');
    const back = loaded.model as GPT;
    assert.deepEqual(back.lmHead!.data, model.lmHead!.data);
    assert.equal(back.transformer.lmHead, back.lmHead);
    noGrad(() => assert.deepEqual(back.forward(ids, 1, ids.length).logits.data, model.forward(ids, 1, ids.length).logits.data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
