/**
 * Few-shot evaluation: the verbalizer log-likelihood matches a hand computation from the model's
 * logits, and a tiny GPT pre-trained on "Review: … good … Sentiment: positive" documents classifies
 * new reviews from the prompt alone, far above the majority-class baseline; templates without {text}
 * or with ambiguous / non-string verbalizers are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelDir, saveModelDir } from '../../src/models/load.ts';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import type { GPT } from '../../src/models/gpt.ts';
import { continuationLogLikelihoods, defaultTemplate, evaluateFewShot, renderPrompt, type PromptTemplate } from '../../src/tasks/fewshot.ts';
import { primerInProcess as primer } from '../helpers/cli.ts';
import { pretrainTinyGpt, syntheticReviews } from './tiny-lm.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-fewshot-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = pretrainTinyGpt(root, { steps: 250 });

async function load() {
  const dir = await modelDir;
  return { model: loadModelDir(dir).model as GPT, tokenizer: loadTokenizer(dir) };
}

test('prompts: demonstrations with their verbalizers, then the query', () => {
  const t = defaultTemplate('sentiment', ['negative', 'positive']);
  const prompt = renderPrompt(t, [{ text: 'so good', label: 'positive' }, { text: 'so bad', label: 'negative' }], { text: 'fine' });
  assert.equal(prompt, 'Review: so good\nSentiment: positive\n\nReview: so bad\nSentiment: negative\n\nReview: fine\nSentiment:');
  assert.throws(() => renderPrompt(t, [{ text: 'x', label: 'meh' }], { text: 'y' }), /label "meh" has no verbalizer/);
});

test('verbalizer log-likelihood = Σ log-softmax of the logits at the continuation tokens (hand computation)', async () => {
  const { model, tokenizer } = await load();
  const context = 'Review: the film was great\nSentiment:';
  const conts = [' positive', ' negative', ' it was'];
  const lls = continuationLogLikelihoods(model, tokenizer, context, conts);
  const bos = model.config.bos_token_id!;
  conts.forEach((c, i) => {
    const ctx = [bos, ...tokenizer.encode(context, null, { addSpecialTokens: false }).ids];
    const cont = tokenizer.encode(c, null, { addSpecialTokens: false }).ids;
    const ids = Int32Array.from([...ctx, ...cont]);
    const logits = model.forward(ids, 1, ids.length).logits.data;
    const v = model.config.vocab_size;
    let expected = 0;
    cont.forEach((tok, j) => {
      const row = Array.from(logits.subarray((ctx.length + j - 1) * v, (ctx.length + j) * v));
      const lse = Math.log(row.reduce((s, z) => s + Math.exp(z), 0));
      expected += row[tok]! - lse;
    });
    assert.ok(Math.abs(lls[i]! - expected) < 1e-4, `${JSON.stringify(c)}: ${lls[i]} vs hand ${expected}`);
    assert.ok(lls[i]! < 0);
  });
  // Batched with padding or alone: the same numbers (causal attention never sees the padding).
  assert.ok(Math.abs(continuationLogLikelihoods(model, tokenizer, context, [' positive'])[0]! - lls[0]!) < 1e-4);
  assert.ok(lls[0]! > lls[1]!, `the model learnt that "great" reads as positive: ${lls[0]} vs ${lls[1]}`);
});

test('few-shot accuracy on held-out synthetic reviews beats the majority baseline; shots are seeded', async () => {
  const { model, tokenizer } = await load();
  const template = defaultTemplate('sentiment', ['negative', 'positive']);
  const train = syntheticReviews(40, 1);
  const testSet = syntheticReviews(40, 2);
  const r = evaluateFewShot({ model, tokenizer, train, test: testSet, shots: [0, 2], template, seed: 3 });
  assert.equal(r.count, 40);
  assert.deepEqual(r.majority, { label: 'positive', accuracy: 0.5 }); // a tie: the template's first label
  assert.deepEqual(r.results.map((x) => x.shots), [0, 2]);
  assert.equal(r.results[0]!.meanShotsUsed, 0);
  assert.ok(r.results[1]!.meanShotsUsed > 1 && r.results[1]!.meanShotsUsed <= 2, `shots used ${r.results[1]!.meanShotsUsed}`);
  for (const x of r.results) {
    assert.ok(x.accuracy >= 0.85, `${x.shots}-shot accuracy ${x.accuracy}`);
    assert.equal(x.report.confusion.flat().reduce((a, b) => a + b, 0), 40);
  }
  const again = evaluateFewShot({ model, tokenizer, train, test: testSet, shots: [2], template, seed: 3, limit: 10 });
  assert.equal(again.count, 10);
  assert.deepEqual(again.results[0]!.report.confusion.flat().reduce((a, b) => a + b, 0), 10);
  assert.throws(() => evaluateFewShot({ model, tokenizer, train, test: [{ text: 'x', label: 'neutral' }], shots: [0], template }), /label "neutral" has no verbalizer/);
});

test('eval few-shot refuses templates whose scores would mean nothing, with one clear line (no stack trace)', async () => {
  const { model, tokenizer } = await load();
  const base = defaultTemplate('sentiment', ['negative', 'positive']);
  const run = (template: PromptTemplate) => () => evaluateFewShot({ model, tokenizer, train: syntheticReviews(4, 1), test: syntheticReviews(4, 2), shots: [0], template });
  assert.throws(run({ ...base, input: 'Review: great\nSentiment:' }), { name: 'RangeError', message: 'few-shot: the template "Review: great\\nSentiment:" has no {text}, so every query would get the same prompt' });
  assert.throws(run({ ...base, verbalizers: { positive: ' good', negative: ' good' } }), { name: 'RangeError', message: 'few-shot: labels "positive" and "negative" share the verbalizer " good"; they could never be told apart' });
  assert.throws(run({ ...base, verbalizers: { positive: 1, negative: ' bad' } as unknown as Record<string, string> }), { name: 'RangeError', message: 'few-shot: the verbalizer of label "positive" must be a non-empty string, got 1' });
  const dir = await modelDir;
  let r = await primer(['eval', 'few-shot', '--model', dir, '--limit', '2', '--shots', '0', '--verbalizers', '"x"']);
  assert.equal(r.error, 'primer: error: few-shot: the verbalizers must be an object of label → continuation text, got "x"');
  assert.equal(r.exitCode, 1);
  r = await primer(['eval', 'few-shot', '--model', dir, '--limit', '2', '--shots', '0', '--verbalizers', '[" good", " bad"]']);
  assert.equal(r.error, 'primer: error: few-shot: the verbalizers must be an object of label → continuation text, got [" good"," bad"]');
  r = await primer(['eval', 'few-shot', '--model', dir, '--limit', '2', '--shots', '0', '--template', 'Review:\\nSentiment:']);
  assert.match(r.error!, /^primer: error: few-shot: the template "Review:\\nSentiment:" has no \{text\}/);
  assert.deepEqual(r.out, []);
});

test('few-shot scores a Llama-family model too (it was refused as "not a causal LM"): hand log-likelihoods, then the command', async () => {
  const { tokenizer } = await load();
  const config: LlamaConfig = {
    model_type: 'llama', vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 48, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
  };
  const model = new Llama(config, 7);
  model.eval();
  const context = 'Review: the film was great\nSentiment:';
  const conts = [' positive', ' negative'];
  const lls = continuationLogLikelihoods(model, tokenizer, context, conts);
  conts.forEach((c, i) => {
    const ctx = [0, ...tokenizer.encode(context, null, { addSpecialTokens: false }).ids];
    const cont = tokenizer.encode(c, null, { addSpecialTokens: false }).ids;
    const ids = Int32Array.from([...ctx, ...cont]);
    const logits = model.forward(ids, 1, ids.length).logits.data;
    let expected = 0;
    cont.forEach((tok, j) => {
      const row = Array.from(logits.subarray((ctx.length + j - 1) * config.vocab_size, (ctx.length + j) * config.vocab_size));
      expected += row[tok]! - Math.log(row.reduce((s, z) => s + Math.exp(z), 0));
    });
    assert.ok(Math.abs(lls[i]! - expected) < 1e-4, `${JSON.stringify(c)}: ${lls[i]} vs hand ${expected}`);
  });
  // A context longer than max_position_embeddings (48) keeps its last tokens instead of failing.
  assert.ok(Number.isFinite(continuationLogLikelihoods(model, tokenizer, context.repeat(8), conts)[0]!));
  const dir = join(root, 'llama');
  saveModelDir(dir, model, config, tokenizer);
  const r = await primer(['eval', 'few-shot', '--model', dir, '--limit', '4', '--shots', '0,1', '--json']);
  assert.equal(r.error, null);
  const report = JSON.parse(r.out.join('\n')) as { results: Array<{ shots: number; accuracy: number }> };
  assert.deepEqual(report.results.map((x) => x.shots), [0, 1]);
  for (const x of report.results) assert.ok(x.accuracy >= 0 && x.accuracy <= 1);
});
