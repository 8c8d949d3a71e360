/**
 * LlamaForSequenceClassification (HF semantics: `score` without bias on the last non-pad token) on the
 * bodies of ../shared/fixtures/llama-tiny and qwen2-tiny: a right-padded batch scores each row as it
 * scores alone, the loss is the mean cross-entropy of those logits, backward matches finite
 * differences (score head and body norms), and the state dict / config use HF's names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend } from '../../src/backend/index.ts';
import { loadAnyModelDir } from '../../src/models/load.ts';
import type { Llama, LlamaConfig } from '../../src/models/llama.ts';
import { LlamaForSequenceClassification, lastNonPadIndices } from '../../src/models/llama-heads.ts';
import { noGrad, setDefaultDtype, withScope } from '../../src/tensor/tensor.ts';
import { numericGrads, relError } from '../helpers/numeric.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
const PAD = 0;

/** A 3-class classifier whose body is the fixture's pre-trained LlamaModel (the head is seeded random). */
function classifierOn(fixture: string): LlamaForSequenceClassification {
  const lm = loadAnyModelDir(join(fixtures, fixture)).model as Llama;
  const clf = new LlamaForSequenceClassification({ ...(lm.config as LlamaConfig), num_labels: 3, pad_token_id: PAD, initializer_range: 0.5 }, 4);
  const { missing, unexpected } = clf.model.loadStateDict(new Map(lm.model.namedParameters().map(([n, p]) => [n, p.data as Float32Array])));
  assert.deepEqual([missing, unexpected], [[], []]);
  return clf.eval();
}

const rows = [[1, 23, 5, 61, 9], [1, 40, 7], [1, 3, 88, 12, 19, 30, 2]];
const T = 7;
const padded = Int32Array.from(rows.flatMap((r) => [...r, ...new Array(T - r.length).fill(PAD)]));

for (const fixture of ['llama-tiny', 'qwen2-tiny']) {
  test(`${fixture}: a right-padded batch gives each row the logits it gets alone; loss = mean cross-entropy`, () => {
    setBackend('native');
    const clf = classifierOn(fixture);
    assert.equal(clf.architecture, fixture === 'llama-tiny' ? 'LlamaForSequenceClassification' : 'Qwen2ForSequenceClassification');
    const labels = Int32Array.from([2, 0, 1]);
    const { logits, loss } = noGrad(() => withScope(() => {
      const out = clf.forward(padded, 3, T, labels);
      return { logits: Float32Array.from(out.logits.data), loss: out.loss!.data[0]! };
    }));
    assert.equal(logits.length, 9);
    let worst = 0;
    let expectedLoss = 0;
    rows.forEach((r, i) => {
      const alone = noGrad(() => withScope(() => Float32Array.from(clf.forward(Int32Array.from(r), 1, r.length).logits.data)));
      worst = Math.max(worst, relError(logits.subarray(3 * i, 3 * i + 3), alone));
      const z = Array.from(alone);
      const max = Math.max(...z);
      expectedLoss += (Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0)) + max - z[labels[i]!]!) / 3;
    });
    assert.ok(worst < 1e-5, `${fixture}: padded vs alone relative error ${worst.toExponential(2)}`);
    assert.ok(Math.abs(loss - expectedLoss) < 1e-5, `loss ${loss} vs ${expectedLoss}`);
    // The classes differ between rows: the head reads each row's own last token, not a pad.
    assert.notDeepEqual(Array.from(logits.subarray(0, 3)), Array.from(logits.subarray(3, 6)));
  });
}

test('last non-pad token as HF finds it; no pad_token_id: last position, and batches of one row only', () => {
  assert.deepEqual(Array.from(lastNonPadIndices(padded, 3, T, PAD)), [4, 2, 6]);
  // A pad id inside a row does not end it; an all-pad row reads position 0 (HF's argmax of zeros).
  assert.deepEqual(Array.from(lastNonPadIndices(Int32Array.from([5, 0, 7, 0, 0, 0, 0, 0]), 2, 4, 0)), [2, 0]);
  assert.deepEqual(Array.from(lastNonPadIndices(padded, 3, T, null)), [6, 6, 6]);
  const lm = loadAnyModelDir(join(fixtures, 'llama-tiny')).model as Llama;
  const clf = new LlamaForSequenceClassification({ ...lm.config, id2label: { 0: 'neg', 1: 'pos' } });
  assert.equal(clf.numLabels, 2);
  assert.throws(() => clf.forward(padded, 3, T), /more than one row needs pad_token_id/);
  assert.deepEqual(clf.forward(Int32Array.from(rows[0]!), 1, 5).logits.shape, [1, 2]);
  assert.throws(() => clf.forward(Int32Array.from(rows[0]!), 1, 5, Int32Array.from([2])), /label 2 is not a class id in \[0, 2\)/);
  assert.throws(() => new LlamaForSequenceClassification({ ...lm.config, pad_token_id: 500 }), /pad_token_id 500 is outside the vocabulary/);
  // HF names: the body under model.*, the head as score.weight (no bias); config.json carries the head's keys.
  const names = clf.namedParameters().map(([n]) => n);
  assert.equal(names[0], 'model.embed_tokens.weight');
  assert.deepEqual(names.filter((n) => n.startsWith('score')), ['score.weight']);
  assert.ok(!names.includes('lm_head.weight'));
  const cfg = clf.configJson();
  assert.deepEqual([cfg.architectures, cfg.num_labels, cfg.pad_token_id, cfg.id2label, cfg.label2id], [['LlamaForSequenceClassification'], 2, null, { 0: 'neg', 1: 'pos' }, { neg: 0, pos: 1 }]);
});

test('LlamaForSequenceClassification backward equals finite differences (score head and body), padded batch', () => {
  setBackend('reference');
  setDefaultDtype('float64');
  try {
    const config: LlamaConfig & { num_labels: number; pad_token_id: number } = {
      model_type: 'llama', vocab_size: 30, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
      num_key_value_heads: 2, max_position_embeddings: 16, tie_word_embeddings: true, initializer_range: 0.3, num_labels: 3, pad_token_id: 0,
    };
    const clf = new LlamaForSequenceClassification(config, 5);
    const params = new Map(clf.namedParameters());
    for (const p of params.values()) p.data = Float64Array.from(p.data); // float64, so that finite differences are exact enough
    const ids = Int32Array.from([4, 9, 17, 3, 0, 0, 8, 21, 5, 11, 6, 2, 7, 13, 0, 0, 0, 0]);
    const labels = Int32Array.from([1, 2, 0]);
    const loss = () => clf.forward(ids, 3, 6, labels).loss!;
    loss().backward();
    for (const name of ['score.weight', 'model.norm.weight', 'model.layers.1.input_layernorm.weight']) {
      const p = params.get(name)!;
      const [numeric] = numericGrads([p], () => loss().data[0]!, 1e-4);
      const err = relError(p.grad!.data, numeric!);
      assert.ok(err < 1e-6, `${name}: relative error ${err.toExponential(3)} against finite differences`);
    }
    // Pads come after each row's last token, so (causal attention) they reach no logit: the embedding
    // row of the pad id, used only there, gets a gradient of exactly 0, while the real tokens' rows do not.
    const g = params.get('model.embed_tokens.weight')!.grad!.data;
    assert.deepEqual(Array.from(g.subarray(0, config.hidden_size)), new Array(config.hidden_size).fill(0));
    assert.ok(g.subarray(4 * config.hidden_size, 5 * config.hidden_size).some((v) => v !== 0));
  } finally {
    setDefaultDtype('float32');
    setBackend('native');
  }
});
