// The library side of `primer finetune` / `classify` / `tag` (src/tasks/task-run.ts, task-infer.ts):
// the same run the CLI makes, called as functions, on a tiny GPT pre-trained on synthetic reviews.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finetuneTask, loadTaskSplits, taskTypeOfFile, testSplitName } from '../../src/tasks/task-run.ts';
import { classifyTexts, splitWords } from '../../src/tasks/task-infer.ts';
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
