/**
 * `primer serve` with Llama-family sequence classifiers: a LlamaForSequenceClassification (grouped-query,
 * tied body) and a Qwen2ForSequenceClassification (q/k/v biases, one KV head, untied), random weights
 * saved as HF checkpoints (model.* + score.weight, pad_token_id). /v1/classify batches texts of different
 * lengths into one right-padded forward; its labels and probabilities must equal the library's
 * classifyTexts (one text at a time, HF's last non-pad token) within 1e-5. Bad requests get clear 4xx
 * errors, and a Llama token classifier (not served, like GPT-2's) is refused at startup by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { ModelLoadError, saveModelDir } from '../../src/models/load.ts';
import { SequenceClassifier, TokenClassifier } from '../../src/models/heads.ts';
import { loadBackbone, loadTaskModelDir, saveTaskModelDir } from '../../src/models/model-dir.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { classifyTexts } from '../../src/tasks/task-infer.ts';
import { createServer } from '../../src/serve/server.ts';
import { describeModelDir } from '../../src/serve/engine.ts';
import { postJson, serveDuringTests } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-llama-classify-serve-'));
const corpus = [
  'the film was wonderful and the cast was great', 'a dull and boring plot with bad acting', 'it was fine , nothing special',
  'win a free prize now , click here', 'are we still meeting for lunch tomorrow ?', 'cheap pills , limited offer , act now',
];
const tokenizer = trainBpe(Array(10).fill(corpus).flat(), { vocabSize: 260, specialTokens: ['<|endoftext|>'] });

/** A random Llama-family body saved as a causal LM directory, then a classifier head (HF layout) on it. */
function classifierDir(name: string, kind: 'llama' | 'qwen2', labels: string[], seed: number): { base: string; dir: string } {
  const config: LlamaConfig = {
    model_type: kind, vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: kind === 'llama' ? 2 : 1, max_position_embeddings: 64,
    tie_word_embeddings: kind === 'llama', initializer_range: 0.2, bos_token_id: 0, eos_token_id: 0,
  };
  const base = join(root, `${name}-base`);
  saveModelDir(base, new Llama(config, seed), config, tokenizer);
  // initializer_range 0.2 gives the `score` head logits of order 1: the probabilities are far from uniform.
  const dir = join(root, name);
  saveTaskModelDir(dir, new SequenceClassifier(loadBackbone(base), labels, { padTokenId: 0, seed: seed + 1 }), tokenizer);
  return { base, dir };
}

const llama = classifierDir('tiny-llama-sentiment', 'llama', ['negative', 'neutral', 'positive'], 3);
const qwen = classifierDir('tiny-qwen2-spam', 'qwen2', ['ham', 'spam'], 7);
const TEXTS = ['wonderful', 'a dull plot with bad acting , boring', 'click here now', 'lunch tomorrow ?', 'the cast was great and the film was fine'];

const served = serveDuringTests({ models: [llama.dir, qwen.dir, llama.base], workers: 1, maxTokens: 16 }, root);

test('/v1/models lists Llama-family classifiers with their architecture, context and labels', async () => {
  const models = await (await fetch(`${served.base}/v1/models`)).json();
  assert.deepEqual(models.data.map((m: Record<string, unknown>) => [m.id, m.kind, m.architecture, m.context_length, m.labels]), [
    ['tiny-llama-sentiment', 'classifier', 'LlamaForSequenceClassification', 64, ['negative', 'neutral', 'positive']],
    ['tiny-qwen2-spam', 'classifier', 'Qwen2ForSequenceClassification', 64, ['ham', 'spam']],
    ['tiny-llama-sentiment-base', 'llama', 'LlamaForCausalLM', 64, undefined],
  ]);
});

test('/v1/classify equals the library\'s classifyTexts (labels, and every probability within 1e-5), batched or one text', async () => {
  assert.ok(new Set(TEXTS.map((t) => tokenizer.encode(t).ids.length)).size > 2, 'the texts pad to different lengths in one batch');
  for (const { dir, id } of [{ dir: llama.dir, id: 'tiny-llama-sentiment' }, { dir: qwen.dir, id: 'tiny-qwen2-spam' }]) {
    const model = loadTaskModelDir(dir);
    assert.ok(model instanceof SequenceClassifier);
    assert.equal(model.padTokenId, 0, `${id}: pad_token_id read back from config.json`);
    const expected = classifyTexts(model, loadTokenizer(dir), TEXTS);
    const r = await postJson(served.base, '/v1/classify', { model: id, input: TEXTS });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, id);
    assert.deepEqual(r.json.data.map((d: { index: number; label: string }) => [d.index, d.label]), expected.map((e, i) => [i, e.label]));
    for (const [i, d] of (r.json.data as Array<{ scores: Array<{ label: string; probability: number }> }>).entries()) {
      assert.deepEqual(d.scores.map((s) => s.label).sort(), [...model.labels.labels].sort());
      for (const s of d.scores) {
        assert.ok(Math.abs(s.probability - expected[i]!.scores[s.label]!) < 1e-5, `${id} "${TEXTS[i]}" ${s.label}: ${s.probability} vs ${expected[i]!.scores[s.label]}`);
      }
      assert.ok(d.scores.every((s, k) => k === 0 || d.scores[k - 1]!.probability >= s.probability), 'scores are sorted, most probable first');
    }
    const spread = Math.max(...expected.flatMap((e) => Object.values(e.scores))) - Math.min(...expected.flatMap((e) => Object.values(e.scores)));
    assert.ok(spread > 0.05, `${id}: the probabilities are not all uniform (spread ${spread})`);
    const one = await postJson(served.base, '/v1/classify', { model: id, input: TEXTS[1] });
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.data.length, 1);
    assert.equal(one.json.data[0].label, expected[1]!.label);
    assert.ok(Math.abs(one.json.data[0].scores[0].probability - expected[1]!.score) < 1e-5);
  }
  // Without a model name, /v1/classify takes the first classifier served (the Llama one).
  const first = await postJson(served.base, '/v1/classify', { input: TEXTS[0] });
  assert.equal(first.json.model, 'tiny-llama-sentiment');
});

test('bad classification requests get a clear 4xx error', async () => {
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['/v1/classify', { model: 'tiny-llama-sentiment' }, 400, /invalid request: body must have required property 'input'/],
    ['/v1/classify', { model: 'tiny-llama-sentiment', input: [] }, 400, /invalid request: body\/input/],
    ['/v1/classify', { model: 'tiny-llama-sentiment', input: 3 }, 400, /invalid request: body\/input/],
    ['/v1/classify', { model: 'tiny-llama-sentiment-base', input: 'x' }, 400,
      /model "tiny-llama-sentiment-base" is a LlamaForCausalLM; classification needs a sequence classifier/],
    ['/v1/completions', { model: 'tiny-qwen2-spam', prompt: 'x' }, 400, /model "tiny-qwen2-spam" is a Qwen2ForSequenceClassification; a completion needs a GPT-2 language model or Llama-family language model/],
    ['/v1/classify', { model: 'nope', input: 'x' }, 404, /model "nope" is not served here \(available: tiny-llama-sentiment, tiny-qwen2-spam, tiny-llama-sentiment-base\)/],
  ];
  for (const [path, body, status, message] of cases) {
    const r = await postJson(served.base, path, body);
    assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.json.error.message, message);
  }
});

test('a LlamaForTokenClassification directory is refused at startup by name (token classifiers are not served)', async () => {
  const dir = join(root, 'tiny-llama-tagger');
  const tagger = new TokenClassifier(loadBackbone(llama.base), ['O', 'B-X']);
  saveTaskModelDir(dir, tagger, tokenizer);
  assert.equal(tagger.architecture, 'LlamaForTokenClassification');
  assert.throws(() => describeModelDir(dir), (e: unknown) => e instanceof ModelLoadError
    && /tiny-llama-tagger: architecture LlamaForTokenClassification cannot be served \(expected .*\*ForSequenceClassification\)/.test((e as Error).message));
  await assert.rejects(createServer({ models: [dir], workers: 1 }), /LlamaForTokenClassification cannot be served/);
});
