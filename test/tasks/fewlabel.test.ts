/**
 * The few-label methods on a separable synthetic task: a tiny GPT pre-trained on "Review: … good …
 * \nSentiment: positive" documents. Prompting it zero-shot (with and without calibration), prompt-based
 * fine-tuning and a frozen-feature probe must all classify held-out reviews; the verbalizer head must
 * start as the LM head's rows, so that step 0 of prompt fine-tuning is the zero-shot classifier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { loadBackbone } from '../../src/models/model-dir.ts';
import { LabelMap } from '../../src/models/labels.ts';
import { GPT } from '../../src/models/gpt.ts';
import { loadModelDir } from '../../src/models/load.ts';
import { applyTemplate, argmaxRows, calibrationBias, labelWordToken, parseVerbalizer, promptClassifier, promptLogProbs, defaultPrompt } from '../../src/tasks/prompt.ts';
import { layerFeatures, featureMatrix, columnStats, standardize } from '../../src/tasks/probe.ts';
import { linearProbe, zeroShot } from '../../src/tasks/fewlabel.ts';
import { DEFAULT_RECIPE, promptRun } from '../../src/tasks/experiment-runs.ts';
import { pretrainTinyGpt, syntheticReviews } from './tiny-lm.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-fewlabel-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = pretrainTinyGpt(root, { steps: 250 });
const labels = new LabelMap(['negative', 'positive']);
const spec = { template: 'Review: {text}\nSentiment:', verbalizer: { positive: ['positive'], negative: ['negative'] } };
const train = syntheticReviews(16, 1);
const earlyStopping = syntheticReviews(40, 2);
const heldOut = syntheticReviews(60, 3);

test('the verbalizer head is the LM head: prompt scores equal the LM logits of the label words', async () => {
  const dir = await modelDir;
  const tokenizer = loadTokenizer(dir);
  const loaded = loadModelDir(dir);
  assert.equal(loaded.kind, 'gpt2');
  const lm = loaded.model as GPT;
  const model = promptClassifier(loadBackbone(dir) as never, tokenizer, labels, spec, 0);
  const prompt = applyTemplate(tokenizer, heldOut.slice(0, 1), spec.template, 64)[0]!.text;
  assert.equal(prompt, `Review: ${heldOut[0]!.text}\nSentiment:`);
  const ids = tokenizer.encode(prompt, null, { maxLength: 64 }).ids;
  const logits = lm.forward(Int32Array.from(ids), 1, ids.length).logits.data;
  const v = lm.config.vocab_size;
  const at = (id: number) => logits[(ids.length - 1) * v + id]!;
  const pos = at(labelWordToken(tokenizer, 'positive'));
  const neg = at(labelWordToken(tokenizer, 'negative'));
  const lp = promptLogProbs(model, tokenizer, [{ text: prompt }], 64);
  // log softmax over the two classes (label order: negative, positive).
  const lse = Math.max(pos, neg) + Math.log(Math.exp(pos - Math.max(pos, neg)) + Math.exp(neg - Math.max(pos, neg)));
  assert.ok(Math.abs(lp[0]! - (neg - lse)) < 1e-4 && Math.abs(lp[1]! - (pos - lse)) < 1e-4, `${[...lp]} vs ${neg - lse}, ${pos - lse}`);
});

test('zero-shot prompting classifies the synthetic reviews; calibration is −log of the content-free probabilities', async () => {
  const dir = await modelDir;
  const tokenizer = loadTokenizer(dir);
  const body = loadBackbone(dir);
  const z = zeroShot(body, tokenizer, labels, spec, earlyStopping, heldOut, 64);
  assert.ok(z.uncalibrated.accuracy >= 0.9, `uncalibrated ${z.uncalibrated.accuracy}`);
  assert.ok(z.calibrated.accuracy >= 0.75, `calibrated ${z.calibrated.accuracy}`);
  const model = promptClassifier(body as never, tokenizer, labels, spec, 0);
  const bias = calibrationBias(model, tokenizer, spec.template, 64);
  const cf = promptLogProbs(model, tokenizer, ['N/A', '', '[MASK]'].map((t) => ({ text: spec.template.replace('{text}', t) })), 64);
  for (let k = 0; k < 2; k++) {
    const p = (Math.exp(cf[k]!) + Math.exp(cf[2 + k]!) + Math.exp(cf[4 + k]!)) / 3;
    assert.ok(Math.abs(bias[k]! + Math.log(p)) < 1e-9);
  }
  // argmaxRows adds the bias before the argmax.
  assert.deepEqual([...argmaxRows(Float64Array.from([-0.1, -2.4]), 2)], [0]);
  assert.deepEqual([...argmaxRows(Float64Array.from([-0.1, -2.4]), 2, Float64Array.from([0, 3]))], [1]);
});

test('prompt-based fine-tuning and the frozen-feature probe learn the task from 16 labels', async () => {
  const dir = await modelDir;
  const tokenizer = loadTokenizer(dir);
  const recipe = { ...DEFAULT_RECIPE, maxLength: 64, minSteps: 8, epochs: 2, maxEpochs: 4, promptLr: 1e-3 };
  const r = await promptRun(dir, spec, { tokenizer, labels, train, earlyStopping, selection: earlyStopping, test: heldOut, recipe, seed: 0, runDir: join(root, 'prompt-run') });
  assert.ok(r.accuracy >= 0.9, `prompt fine-tuning ${r.accuracy}`);
  const all = [...train, ...earlyStopping, ...heldOut];
  const prompted = applyTemplate(tokenizer, all, spec.template, 64);
  const bank = { features: layerFeatures(loadBackbone(dir), tokenizer, prompted, { maxLength: 64 }), index: new Map(all.map((x, i) => [x, i])), poolRows: Int32Array.from(all, (_, i) => i) };
  assert.equal(bank.features.layers, 2, '1 block: the embeddings and the final layer');
  const p = linearProbe(bank, labels, train, earlyStopping, earlyStopping, heldOut);
  assert.ok(p.accuracy >= 0.9, `probe ${p.accuracy} (${p.detail})`);
});

test('feature views, standardisation and verbalizer parsing', () => {
  const f = { data: Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i), count: 2, layers: 3, dim: 2 };
  // Row 1, final layer (2), mean (0) then last (1): offsets ((1·3+2)·2+p)·2.
  assert.deepEqual([...featureMatrix(f, [1], { layers: 'final', pooling: 'mean+last' }).x], [20, 21, 22, 23]);
  assert.equal(featureMatrix(f, [0, 1], { layers: 'all', pooling: 'mean' }).dim, 6);
  const x = Float32Array.from([1, 10, 3, 30]);
  const s = columnStats(x, 2);
  assert.deepEqual([...s.mean], [2, 20]);
  assert.deepEqual([...standardize(x, 2, s)].map((v) => Math.round(v * 1e6) / 1e6), [-0.707107, -0.707107, 0.707107, 0.707107]);
  assert.deepEqual(parseVerbalizer('positive=great|good, negative=terrible', labels), { positive: ['great', 'good'], negative: ['terrible'] });
  assert.throws(() => parseVerbalizer('positive=great', labels), /no word for label "negative"/);
  assert.throws(() => parseVerbalizer('positive=a,negative=b,neutral=c', labels), /"neutral", which is not a label/);
  assert.deepEqual(defaultPrompt('genre', new LabelMap(['science_fiction', 'news'])).verbalizer, { science_fiction: ['science'], news: ['news'] });
});
