// The library side of `primer finetune` / `classify` / `tag` (src/tasks/task-run.ts, task-infer.ts):
// the same run the CLI makes, called as functions, on a tiny GPT pre-trained on synthetic reviews.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finetuneTask, loadTaskSplits, taskTypeOfFile, testSplitName } from '../../src/tasks/task-run.ts';
import { classifyTexts, splitWords } from '../../src/tasks/task-infer.ts';
import { evaluateTask } from '../../src/tasks/finetune.ts';
import type { TextExample } from '../../src/tasks/data.ts';
import { loadTaskModelForInference } from '../../src/adapt/lora-task.ts';
import { SequenceClassifier, TokenClassifier, contextLength } from '../../src/models/heads.ts';
import { softmaxRow, argmax } from '../../src/util/math.ts';
import { pretrainTinyGpt, syntheticReviews, POSITIVE, NEGATIVE } from './tiny-lm.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-task-run-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const gpt = pretrainTinyGpt(root, { steps: 200 });

test('softmaxRow and argmax', () => {
  const p = softmaxRow([1, 2, 3]);
  const e = [Math.exp(-2), Math.exp(-1), 1];
  const z = e[0]! + e[1]! + e[2]!;
  e.forEach((x, i) => assert.ok(Math.abs(p[i]! - x / z) < 1e-15));
  assert.deepEqual(Array.from(softmaxRow([1000, 1000])), [0.5, 0.5], 'no overflow: max is subtracted');
  assert.equal(argmax([0.1, 0.7, 0.7, 0.2]), 1);
  assert.equal(argmax([]), -1);
});

test('task type by extension, split names, word splitting', () => {
  assert.equal(taskTypeOfFile('a/squad.JSON'), 'qa');
  assert.equal(taskTypeOfFile('x.conll'), 'tag');
  assert.equal(taskTypeOfFile('x.tsv'), 'classify');
  assert.equal(testSplitName({ task: 'sentiment' }), 'sentiment, test split');
  assert.equal(testSplitName({ data: 'd.csv' }), '10% of d.csv held out from training');
  assert.deepEqual(splitWords("It's a dog's life, isn't it?"), ["It's", 'a', "dog's", 'life', ',', "isn't", 'it', '?']);
  assert.throws(() => loadTaskSplits({}), /--task NAME .* or --data FILE is required/);
  assert.throws(() => loadTaskSplits({ task: 'sentiment', data: 'x.csv' }), /exclusive/);
});

test('finetuneTask trains, saves the model with eval_results.json; classifyTexts and the loader read it back', async () => {
  const data = join(root, 'reviews.csv');
  writeFileSync(data, 'text,label\n' + syntheticReviews(120, 11).map((r) => `${r.text},${r.label}`).join('\n') + '\n');
  const out = join(root, 'clf');
  const lines: string[] = [];
  const epochs: number[] = [];
  const r = await finetuneTask({
    model: await gpt, data, out, labels: 32, epochs: 4, lr: 3e-3, batchSize: 16, seed: 1,
    log: (m) => lines.push(m), onEpoch: (e) => epochs.push(e.epoch),
  });
  assert.equal(r.type, 'classify');
  assert.equal(r.trainExamples, 32);
  assert.deepEqual(epochs, [1, 2, 3, 4]);
  assert.match(lines[0]!, /^fine-tuning GPT2ForSequenceClassification \(.*\) on .*reviews\.csv: 32 training examples \(--labels 32, seed 1\), 12 validation, 12 test$/);
  assert.ok(r.test && 'accuracy' in r.test && r.test.accuracy >= 0.75, JSON.stringify(r.test));
  const saved = JSON.parse(readFileSync(join(out, 'eval_results.json'), 'utf8'));
  assert.equal(saved.trainExamples, 32);
  assert.equal(saved.test.accuracy, (r.test as { accuracy: number }).accuracy);
  assert.equal(saved.history.length, 4);
  assert.ok(!existsSync(join(out, 'checkpoints')));

  const { model, tokenizer } = loadTaskModelForInference(out, SequenceClassifier, 'sequence classification');
  assert.equal(contextLength(model.backbone), contextLength(model.backbone.cfg));
  const texts = [`the food was ${POSITIVE[0]}`, `very ${NEGATIVE[1]} service`];
  const c = classifyTexts(model, tokenizer, texts);
  assert.deepEqual(c.map((x) => x.text), texts);
  for (const x of c) {
    assert.ok(Math.abs(x.scores.negative! + x.scores.positive! - 1) < 1e-12);
    assert.equal(x.score, x.scores[x.label]);
    assert.ok(x.score >= 0.5);
  }
  assert.throws(() => loadTaskModelForInference(out, TokenClassifier, 'token classification'), /holds a GPT2ForSequenceClassification, not a token classification model/);
});

const csv = (name: string, rows: ReadonlyArray<{ text: string; label?: string }>) => {
  const path = join(root, name);
  writeFileSync(path, 'text,label\n' + rows.map((r) => `${r.text},${r.label}`).join('\n') + '\n');
  return path;
};

test('--val-data or --test-data alone: the split not given is still 10% of --data, held out from training', () => {
  const data = csv('splits.csv', syntheticReviews(100, 3));
  const other = csv('other.csv', syntheticReviews(20, 4));
  const sizes = (s: { train: unknown[]; val: unknown[]; test: unknown[] }) => [s.train.length, s.val.length, s.test.length];
  const lines = (xs: unknown[]) => (xs as TextExample[]).map((x) => x.where!.line);
  const plain = loadTaskSplits({ data });
  assert.deepEqual(sizes(plain), [80, 10, 10]);
  const withTest = loadTaskSplits({ data, testData: other });
  assert.deepEqual(sizes(withTest), [90, 10, 20]);
  assert.deepEqual((withTest.val as TextExample[]).map((x) => x.label).sort(), [...Array(5).fill('negative'), ...Array(5).fill('positive')], 'stratified');
  assert.ok(!lines(withTest.train).some((l) => lines(withTest.val).includes(l)), 'validation rows are not trained on');
  const withVal = loadTaskSplits({ data, valData: other });
  assert.deepEqual(sizes(withVal), [90, 20, 10]);
  assert.deepEqual(withVal.test, plain.test, 'the same held-out test rows as without --val-data');
  assert.ok(!lines(withVal.train).some((l) => lines(withVal.test).includes(l)));
  assert.deepEqual(sizes(loadTaskSplits({ data, valData: other, testData: other })), [100, 20, 20]);
  const flags = { data, valData: other };
  assert.equal(testSplitName(flags), `10% of ${data} held out from training`, 'the test heading says where the scores come from');
});

test('training data with a single label is refused before training: a file, a --labels sample, tags', async () => {
  const model = await gpt;
  const out = join(root, 'one-label');
  const run = (o: { data: string; labels?: number }) => finetuneTask({ model, out, epochs: 1, batchSize: 16, log: () => {}, ...o });
  const one = csv('oneclass.csv', syntheticReviews(40, 5).map((r) => ({ text: r.text, label: 'pos' })));
  await assert.rejects(run({ data: one }), { message: `${one}: every example has the label "pos"; a classifier needs at least two labels` });
  assert.ok(!existsSync(out), 'refused before anything was written');
  const two = csv('two.csv', syntheticReviews(40, 6));
  await assert.rejects(run({ data: two, labels: 1 }), /^RangeError: --labels 1: the 1 training example has only the label "(negative|positive)"; a model needs at least two labels to learn from \(.*two\.csv has 2: use a larger --labels\)$/);
  const conll = join(root, 'one-tag.conll');
  writeFileSync(conll, 'the O\nfood O\n\nit O\nwas O\n');
  await assert.rejects(run({ data: conll }), { message: `${conll}: every token has the tag "O"; a tagger needs at least two tags` });
  assert.ok(!existsSync(out));
  // Fewer labelled examples than labels: training goes on, with a warning naming the labels left out.
  const three = csv('three.csv', [...syntheticReviews(30, 7), ...Array.from({ length: 15 }, (_, i) => ({ text: `the film was fine ${i}`, label: 'neutral' }))]);
  const lines: string[] = [];
  await finetuneTask({ model, out, data: three, labels: 2, epochs: 1, log: (m) => lines.push(m) });
  assert.ok(lines.some((l) => /^warning: --labels 2 leaves 1 of the labels without a training example \((negative|neutral|positive)\): the model will not learn to predict them$/.test(l)), lines.join('\n'));
});

test('stop (Ctrl-C in the CLI) saves the best finished epoch, loadable, and skips the test split; before the first epoch, nothing', async () => {
  const data = csv('stop.csv', syntheticReviews(120, 11));
  const out = join(root, 'stopped');
  const stop = new AbortController();
  const lines: string[] = [];
  const r = await finetuneTask({
    model: await gpt, data, out, epochs: 6, lr: 3e-3, batchSize: 16, seed: 1, stop: stop.signal,
    log: (m) => lines.push(m), onEpoch: (e) => { if (e.epoch === 2) stop.abort(); },
  });
  assert.equal(r.interrupted, true);
  assert.equal(r.saved, true);
  assert.equal(r.signal, undefined);
  assert.equal(r.test, null);
  assert.deepEqual(r.training.history.map((h) => h.epoch), [1, 2]);
  assert.match(lines.at(-1)!, new RegExp(`^interrupted after 2 of 6 epochs: saved the model of epoch ${r.training.bestEpoch} to ${out} \\(no test scores for an interrupted run\\)$`));
  const saved = JSON.parse(readFileSync(join(out, 'eval_results.json'), 'utf8'));
  assert.equal(saved.interrupted, true);
  assert.equal(saved.bestEpoch, r.training.bestEpoch);
  assert.equal(saved.test, undefined);
  assert.ok(!existsSync(join(out, 'checkpoints')));
  const { model, tokenizer } = loadTaskModelForInference(out, SequenceClassifier, 'sequence classification');
  const val = loadTaskSplits({ data }).val as TextExample[];
  assert.equal(evaluateTask(model, tokenizer, val, { maxLength: 128 }).accuracy, r.training.bestMetric, 'the saved weights are the best epoch\'s');

  const early = join(root, 'stopped-early');
  const none = await finetuneTask({ model: await gpt, data, out: early, epochs: 2, stop: AbortSignal.abort(), log: (m) => lines.push(m) });
  assert.equal(none.interrupted, true);
  assert.equal(none.saved, false);
  assert.equal(lines.at(-1), `interrupted before the first epoch ended: nothing was saved to ${early}`);
  assert.ok(!existsSync(join(early, 'model.safetensors')) && !existsSync(join(early, 'eval_results.json')));
});
