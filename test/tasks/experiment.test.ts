/**
 * The label-efficiency pipeline end to end at toy scale: a tiny GPT pre-trained inside the experiment
 * (the library pretrain function on a small synthetic corpus), 2 label budgets × 2 seeds × 2
 * initialisations on the built-in sentiment task, and its outputs: results.json, the Markdown table
 * and a well-formed SVG plot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMAIN_TEXT_COPIES, evaluationSets, labelEfficiency } from '../../src/tasks/experiment.ts';
import { loadBuiltinTask, type ClassificationTask } from '../../src/tasks/builtin.ts';
import { markdownTable, meanStd, svgPlot, type Curve } from '../../src/tasks/experiment-report.ts';
import { syntheticReviews } from './tiny-lm.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-experiment-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('mean ± sample std, table rows and plot geometry', () => {
  assert.deepEqual(meanStd([0.5]), { mean: 0.5, std: 0 });
  const { mean, std } = meanStd([0.6, 0.7, 0.8]);
  assert.ok(Math.abs(mean - 0.7) < 1e-12 && Math.abs(std - 0.1) < 1e-12);
  const curves: [Curve, Curve] = [
    { name: 'pre-trained', color: '#00f', points: [{ labels: 10, mean: 0.7, std: 0.1, n: 3 }, { labels: 1000, mean: 0.9, std: 0, n: 3 }] },
    { name: 'from scratch', color: '#f00', points: [{ labels: 10, mean: 0.5, std: 0.05, n: 3 }, { labels: 1000, mean: 0.8, std: 0.02, n: 3 }] },
  ];
  const md = markdownTable(curves, { label: 'positive', accuracy: 0.5 });
  assert.match(md, /\| 10 \| 70\.0 ± 10\.0 \| 50\.0 ± 5\.0 \| \+20\.0 \|/);
  assert.match(md, /Majority-class baseline \(always "positive"\): 50\.0%/);
  const svg = svgPlot(curves, { title: 'A & B', baseline: 0.5, width: 640, height: 420 });
  assert.match(svg, /A &amp; B/);
  // Log x: 10 and 1000 sit a quarter decade inside the plot area (64 … 616): at 64 + 552·0.25/2.5 and 616 − 55.2.
  assert.match(svg, /<polyline points="119\.2,[\d.]+ 560\.8,[\d.]+"/);
});

test('label efficiency at toy scale: pre-train, fine-tune both inits per budget and seed, write results.json, table and SVG', async () => {
  const corpus = join(root, 'corpus');
  mkdirSync(corpus);
  for (let d = 0; d < 6; d++) writeFileSync(join(corpus, `doc${d}.txt`), syntheticReviews(50, d).map((r) => `${r.text}. It was ${r.label}.`).join(' ') + '\n');
  const out = join(root, 'exp');
  const lines: string[] = [];
  let partial: { complete: boolean; runs: unknown[] } | null = null;
  const log = (m: string) => {
    lines.push(m);
    // The second run's line comes after the first run's results were written.
    if (/scratch +labels +8 seed 0/.test(m)) partial = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  };
  const r = await labelEfficiency({
    task: 'sentiment', labels: [16, 8], seeds: 2, out, testExamples: 40, log, domainText: true,
    pretrain: { corpus: [corpus], preset: 'tiny', layers: 1, dims: 32, heads: 2, vocabSize: 300, blockSize: 32, batchSize: 4, steps: 6, warmupSteps: 1, evalEvery: 0, checkpointEvery: 0 },
    recipe: { epochs: 1, minSteps: 4, maxEpochs: 2, batchSize: 8, maxLength: 32, valExamples: 20, headEpochs: 0 },
  });
  assert.ok(existsSync(join(out, 'pretrain', 'model.safetensors')), 'pre-trained by the experiment');
  // Domain-adaptive pre-training: the train texts, unlabelled, in DOMAIN_TEXT_COPIES orders; no val/test text.
  const task = loadBuiltinTask('sentiment') as ClassificationTask;
  const domainLines = (copy: number) => readFileSync(join(out, 'domain-text', `sentiment-train-${copy}.txt`), 'utf8').trimEnd().split('\n');
  assert.deepEqual([...domainLines(0)].sort(), task.train.map((x) => x.text).sort());
  assert.notDeepEqual(domainLines(0), domainLines(DOMAIN_TEXT_COPIES - 1));
  const evalTexts = new Set([...task.val, ...task.test].map((x) => x.text));
  assert.equal(domainLines(0).filter((t) => evalTexts.has(t)).length, 0);
  assert.ok(r.domainText && /domain-adaptive/.test(readFileSync(join(out, 'results.md'), 'utf8')));
  assert.ok(r.pretrainSeconds! > 0);
  assert.equal(r.runs.length, 2 * 2 * 2);
  assert.deepEqual([...new Set(r.runs.map((x) => x.labels))], [8, 16], 'budgets in increasing order');
  for (const run of r.runs) {
    assert.ok(run.accuracy >= 0 && run.accuracy <= 1);
    assert.equal(run.epochs, run.labels === 8 ? 2 : 1, 'small budgets are stretched to minSteps optimizer steps');
  }
  assert.equal(r.testExamples, 40);
  assert.equal(r.complete, true);
  assert.deepEqual([partial!.complete, partial!.runs.length], [false, 1], 'results.json is rewritten after every run');
  assert.equal(r.majority.accuracy, 0.5);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.deepEqual(results.summary.pretrained.map((p: { labels: number; n: number }) => [p.labels, p.n]), [[8, 2], [16, 2]]);
  const mean16 = r.runs.filter((x) => x.init === 'scratch' && x.labels === 16).reduce((s, x) => s + x.accuracy, 0) / 2;
  assert.ok(Math.abs(results.summary.scratch[1].mean - mean16) < 1e-12);
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  assert.equal(md.split('\n').filter((l) => /^\| (8|16) \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [+-][\d.]+ \|$/.test(l)).length, 2, md);
  const svg = readFileSync(join(out, 'label-efficiency.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.trimEnd().endsWith('</svg>'));
  // Well-formed: every opened element is closed (all are self-closing except svg and text).
  assert.equal((svg.match(/<text\b/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 4);
  for (const tag of svg.match(/<(line|rect|circle|polyline)\b[^>]*>/g) ?? []) assert.ok(tag.endsWith('/>'), tag);
  assert.ok(!existsSync(join(out, 'runs')), 'fine-tuning checkpoints are cleaned up');
  assert.ok(lines.some((l) => /scratch +labels +16 seed 1: test accuracy/.test(l)), lines.join('\n'));
});

test('scoring on validation: the scored examples are disjoint from early stopping and from test', () => {
  const task = loadBuiltinTask('sentiment') as ClassificationTask;
  const onTest = evaluationSets(task, 100, 'test');
  assert.equal(onTest.scored.length, task.test.length);
  assert.equal(onTest.earlyStopping.length, 100);
  const onVal = evaluationSets(task, 100, 'val');
  assert.equal(onVal.scored.length, task.val.length - 100);
  const ids = (xs: readonly { id?: string }[]) => new Set(xs.map((x) => x.id));
  const scored = ids(onVal.scored);
  assert.equal([...ids(onVal.earlyStopping)].filter((id) => scored.has(id)).length, 0);
  assert.equal([...ids(task.test)].filter((id) => scored.has(id)).length, 0);
  assert.deepEqual(onVal.earlyStopping, onTest.earlyStopping, 'the same early-stopping examples either way');
  const limited = evaluationSets(task, 100, 'val', 50).scored;
  assert.equal(limited.length, 50);
  assert.equal(limited.filter((x) => x.label === 'positive').length, 25, 'a stratified subset');
  assert.throws(() => evaluationSets(task, task.val.length, 'val'), /no validation examples left to score/);
});

test('a validation-scored run reuses a model directory, trains the head first (LP-FT), freezes embeddings and leaves no fine-tuning checkpoints', async () => {
  const out = join(root, 'val-exp');
  const model = join(root, 'exp', 'pretrain');
  const r = await labelEfficiency({
    task: 'sentiment', labels: [8], seeds: 1, out, model, testExamples: 30, scoreSplit: 'val', log: () => {},
    recipe: { epochs: 3, minSteps: 1, maxEpochs: 3, batchSize: 8, maxLength: 32, valExamples: 20, patience: 1, freezeEmbeddings: true, headEpochs: 2, headLr: 1e-2 },
  });
  assert.equal(r.pretrainSeconds, null);
  assert.equal(r.scoreSplit, 'val');
  assert.equal(r.testExamples, 30);
  assert.equal(r.runs.length, 2);
  // 2 head-only epochs (patience 1 stops after the second at the latest), then 1 … 3 full epochs.
  assert.ok(r.runs.every((x) => x.epochs >= 3 && x.epochs <= 5 && x.bestEpoch >= 1 && x.bestEpoch <= x.epochs), JSON.stringify(r.runs));
  assert.match(readFileSync(r.files.table, 'utf8'), /held-out validation accuracy/);
  assert.ok(!existsSync(join(out, 'runs')));
});

test('experiment rejects token tasks and budgets larger than the train split', async () => {
  await assert.rejects(labelEfficiency({ task: 'pos', labels: [8], seeds: 1, out: join(root, 'x'), model: root }), /needs a text classification task/);
  await assert.rejects(labelEfficiency({ task: 'sentiment', labels: [999999], seeds: 1, out: join(root, 'x'), model: root }), /train split has \d+/);
  await assert.rejects(labelEfficiency({ task: 'sentiment', labels: [8], seeds: 1, out: join(root, 'x'), model: root, domainText: true }), /cannot be combined with --model/);
});
