/**
 * The label-efficiency pipeline end to end at toy scale: a tiny GPT pre-trained inside the experiment
 * (the library pretrain function on a small synthetic corpus), 2 label budgets × 2 seeds × (TF-IDF,
 * scratch, four pre-trained methods and the stacked anchors + TF-IDF) on the built-in sentiment task, and
 * its outputs: results.json, the Markdown table and a well-formed SVG plot with three curves and the dashed
 * stacked one; the pre-training corpus builder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluationSets, labelEfficiency } from '../../src/tasks/experiment.ts';
import { prepareExperimentCorpus, writeExperimentCorpus } from '../../src/tasks/experiment-corpus.ts';
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

test('label efficiency at toy scale: pre-train, then TF-IDF, scratch and every pre-trained method per budget and seed; results.json, table and SVG', async () => {
  const corpus = join(root, 'corpus');
  mkdirSync(corpus);
  for (let d = 0; d < 6; d++) writeFileSync(join(corpus, `doc${d}.txt`), syntheticReviews(50, d).map((r) => `${r.text}. It was ${r.label}.`).join(' ') + '\n');
  const out = join(root, 'exp');
  const lines: string[] = [];
  let partial: { complete: boolean; runs: unknown[] } | null = null;
  const log = (m: string) => {
    lines.push(m);
    // Seed 1's first line comes after seed 0's results were written.
    if (/tfidf\/tfidf +labels +8 seed 1/.test(m)) partial = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  };
  const r = await labelEfficiency({
    task: 'sentiment', labels: [16, 8], seeds: 2, out, testExamples: 40, log, domainText: true,
    pretrain: { corpus: [corpus], preset: 'tiny', layers: 1, dims: 32, heads: 2, vocabSize: 300, blockSize: 32, batchSize: 4, steps: 6, warmupSteps: 1, evalEvery: 0, checkpointEvery: 0 },
    recipe: { epochs: 1, minSteps: 4, maxEpochs: 2, batchSize: 8, maxLength: 32, valExamples: 20, headEpochs: 0 },
  });
  assert.ok(existsSync(join(out, 'pretrain', 'model.safetensors')), 'pre-trained by the experiment');
  assert.ok(!existsSync(join(out, 'corpus')), 'the written corpus is removed after pre-training');
  assert.ok(r.pretrainSeconds! > 0);
  // 2 budgets × 2 seeds × (TF-IDF, scratch, 4 pre-trained methods, anchors + TF-IDF, the ensemble).
  assert.equal(r.runs.length, 2 * 2 * 8);
  assert.deepEqual([...new Set(r.runs.map((x) => x.labels))], [8, 16], 'budgets in increasing order');
  assert.deepEqual([...new Set(r.runs.map((x) => `${x.arm}/${x.method}`))], ['tfidf/tfidf', 'scratch/lpft', 'pretrained/lpft', 'pretrained/probe', 'pretrained/prompt', 'pretrained/anchor', 'stacked/anchor+tfidf', 'pretrained/ensemble']);
  // The experiment's GPT: PPMI token embeddings, kept fixed, and an untied LM head.
  const config = JSON.parse(readFileSync(join(out, 'pretrain', 'config.json'), 'utf8'));
  assert.equal(config.tie_word_embeddings, false);
  assert.ok(lines.some((l) => /init: token embeddings from co-occurrence/.test(l)));
  assert.ok(r.anchorZeroShot && r.anchorZeroShot.accuracy >= 0 && r.anchorZeroShot.accuracy <= 1);
  for (const run of r.runs) assert.ok(run.accuracy >= 0 && run.accuracy <= 1 && run.selection >= 0 && run.selection <= 1);
  for (const run of r.runs.filter((x) => x.arm === 'scratch')) assert.equal(run.epochs, run.labels === 8 ? 2 : 1, 'small budgets are stretched to minSteps optimizer steps');
  assert.equal(r.testExamples, 40);
  assert.equal(r.complete, true);
  assert.deepEqual([partial!.complete, partial!.runs.length], [false, 8], 'results.json is rewritten after every seed');
  assert.equal(r.majority.accuracy, 0.5);
  assert.ok(r.zeroShot && r.zeroShot.calibrated.accuracy >= 0 && r.zeroShot.bias.length === 2);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  // The chosen method has the best (lowest) mean selection Brier score at its budget, and its test mean is the curve's.
  for (const p of results.summary.pretrained as Array<{ labels: number; mean: number; method: string }>) {
    const mean = (m: string, key: 'selectionBrier' | 'accuracy') => r.runs.filter((x) => x.arm === 'pretrained' && x.method === m && x.labels === p.labels).reduce((s, x) => s + x[key]!, 0) / 2;
    for (const m of ['lpft', 'probe', 'prompt', 'anchor', 'ensemble']) assert.ok(mean(p.method, 'selectionBrier') <= mean(m, 'selectionBrier'));
    assert.ok(Math.abs(mean(p.method, 'accuracy') - p.mean) < 1e-12);
  }
  // Every pre-trained run's class probabilities, for studying selection rules (bench/selection-rules.py).
  const probs = JSON.parse(readFileSync(join(out, 'probabilities.json'), 'utf8'));
  assert.equal(probs.runs.length, r.runs.filter((x) => x.arm === 'pretrained').length);
  assert.equal(probs.test.length, 40);
  for (const q of probs.runs) assert.deepEqual([q.selection.length, q.test.length], [2 * probs.selection.length, 80]);
  const tfidf16 = r.runs.filter((x) => x.arm === 'tfidf' && x.labels === 16).reduce((s, x) => s + x.accuracy, 0) / 2;
  assert.ok(Math.abs(results.summary.tfidf[1].mean - tfidf16) < 1e-12);
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  assert.match(md, /TF-IDF/);
  assert.match(md, /anchors \+ TF-IDF \(%\)/);
  assert.equal(results.summary.stacked.length, 2);
  assert.match(md, /Zero-shot prompting \(no labels\)/);
  assert.equal(md.split('\n').filter((l) => /^\| (8|16) \| (lpft|probe|prompt|anchor)( \(chosen\))? \|/.test(l)).length, 8, md);
  const svg = readFileSync(join(out, 'label-efficiency.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.trimEnd().endsWith('</svg>'));
  assert.equal((svg.match(/<text\b/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 4, 'three curves and the stacked one');
  assert.ok(!existsSync(join(out, 'runs')), 'fine-tuning checkpoints are cleaned up');
  assert.ok(lines.some((l) => /scratch\/lpft +labels +16 seed 1: test/.test(l)), lines.join('\n'));
});

test('the experiment corpus: all built-in English text without the evaluation documents, plus the unlabelled train texts', () => {
  const genre = loadBuiltinTask('genre') as ClassificationTask;
  const dir = join(root, 'corpus-genre');
  const c = writeExperimentCorpus(dir, { heldOut: [...genre.val, ...genre.test], sources: ['brown'], domainTexts: genre.train.slice(0, 5).map((x) => x.text), domainCopies: 2 });
  const heldDocs = new Set([...genre.val, ...genre.test].map((x) => x.group));
  assert.equal(c.excludedDocuments, heldDocs.size);
  const brown = readdirSync(dir).filter((f) => f.startsWith('brown-'));
  assert.equal(brown.length, 500 - heldDocs.size);
  for (const f of brown) assert.ok(!heldDocs.has(f.replace(/^brown-\d+-/, '').replace(/\.txt$/, '')), f);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('domain-')).length, 2);
  const sentiment = loadBuiltinTask('sentiment') as ClassificationTask;
  const dir2 = join(root, 'corpus-sentiment');
  writeExperimentCorpus(dir2, { heldOut: [...sentiment.val, ...sentiment.test], sources: [], domainTexts: [...sentiment.train, ...sentiment.test.slice(0, 3)].map((x) => x.text) });
  const domain = readFileSync(join(dir2, 'domain-0.txt'), 'utf8').trimEnd().split('\n');
  assert.deepEqual([...domain].sort(), sentiment.train.map((x) => x.text).filter((t) => !sentiment.test.slice(0, 3).some((y) => y.text.trim() === t.trim())).sort(), 'evaluation texts never enter, even when passed as domain text');
});

test('`experiment corpus` for --data: the same split as the experiment, its val/test texts never in the domain text, --corpus arguments for pretrain', () => {
  const csv = join(root, 'reviews.csv');
  const rows = Array.from({ length: 40 }, (_, i) => `"review number ${i} was ${i % 2 ? 'fine' : 'awful'}",${i % 2 ? 'good' : 'bad'}`);
  writeFileSync(csv, `text,label\n${rows.join('\n')}\n`);
  const out = join(root, 'corpus-csv');
  const c = prepareExperimentCorpus({ data: csv, out, domainText: true });
  assert.deepEqual(c.corpusArgs, ['builtin', out]);
  assert.equal(c.task, 'reviews.csv');
  const genre = loadBuiltinTask('genre') as ClassificationTask;
  const heldBrown = new Set([...genre.val, ...genre.test].map((x) => x.group));
  assert.equal(readdirSync(out).filter((f) => f.startsWith('brown-')).length, 500 - heldBrown.size, 'the built-in tasks\' evaluation documents stay out too');
  const domain = readFileSync(join(out, 'domain-0.txt'), 'utf8').trimEnd().split('\n');
  assert.equal(domain.length, 28, '70 % of 40 rows: the train split only');
  assert.ok(domain.every((t) => /^review number \d+ was (fine|awful)$/.test(t)));
});

test('evaluation sets: early stopping, method selection and test are disjoint', () => {
  const task = loadBuiltinTask('sentiment') as ClassificationTask;
  const onTest = evaluationSets(task, 100, 'test');
  assert.equal(onTest.scored.length, task.test.length);
  assert.equal(onTest.earlyStopping.length, 100);
  assert.equal(onTest.selection.length, task.val.length - 100);
  const ids = (xs: readonly { id?: string }[]) => new Set(xs.map((x) => x.id));
  const sel = ids(onTest.selection);
  assert.equal([...ids(onTest.earlyStopping)].filter((id) => sel.has(id)).length, 0);
  assert.equal([...ids(task.test)].filter((id) => sel.has(id)).length, 0);
  const onVal = evaluationSets(task, 100, 'val');
  assert.deepEqual(onVal.scored, onVal.selection, 'scoring on val scores the selection set');
  assert.deepEqual(onVal.earlyStopping, onTest.earlyStopping, 'the same early-stopping examples either way');
  const limited = evaluationSets(task, 100, 'val', 50).scored;
  assert.equal(limited.length, 50);
  assert.equal(limited.filter((x) => x.label === 'positive').length, 25, 'a stratified subset');
  assert.equal(evaluationSets(task, task.val.length, 'val').earlyStopping.length, Math.floor(task.val.length / 2), 'at most half of val stops early');
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
  assert.equal(r.runs.length, 8);
  // 2 head-only epochs (patience 1 stops after the second at the latest), then 1 … 3 full epochs.
  assert.ok(r.runs.filter((x) => x.method === 'lpft').every((x) => x.epochs! >= 3 && x.epochs! <= 5 && x.bestEpoch! >= 1 && x.bestEpoch! <= x.epochs!), JSON.stringify(r.runs));
  assert.match(readFileSync(r.files.table, 'utf8'), /held-out validation accuracy/);
  assert.ok(!existsSync(join(out, 'runs')));
});

test('--backbone bert: the experiment pre-trains a BERT (MLM) and runs the methods a BERT supports', async () => {
  const out = join(root, 'bert-exp');
  const r = await labelEfficiency({
    task: 'sentiment', labels: [8], seeds: 1, out, testExamples: 20, backbone: 'bert', log: () => {},
    pretrain: { corpus: [join(root, 'corpus')], preset: 'tiny', layers: 1, dims: 32, heads: 2, vocabSize: 300, blockSize: 32, batchSize: 4, steps: 4, warmupSteps: 1, evalEvery: 0, checkpointEvery: 0 },
    recipe: { epochs: 1, minSteps: 2, maxEpochs: 1, batchSize: 8, maxLength: 32, valExamples: 20, headEpochs: 0 },
  });
  assert.equal(JSON.parse(readFileSync(join(out, 'pretrain', 'config.json'), 'utf8')).model_type, 'bert');
  assert.deepEqual(r.runs.map((x) => `${x.arm}/${x.method}`), ['tfidf/tfidf', 'scratch/lpft', 'pretrained/lpft', 'pretrained/probe', 'pretrained/anchor', 'stacked/anchor+tfidf', 'pretrained/ensemble']);
  // Cloze zero-shot through the MLM head ("{text} It was [MASK].").
  assert.ok(r.zeroShot && r.zeroShot.bias.length === 2 && r.zeroShot.calibrated.accuracy >= 0 && r.zeroShot.calibrated.accuracy <= 1);
});

test('experiment rejects token tasks and budgets larger than the train split', async () => {
  await assert.rejects(labelEfficiency({ task: 'pos', labels: [8], seeds: 1, out: join(root, 'x'), model: root }), /needs a text classification task/);
  await assert.rejects(labelEfficiency({ task: 'sentiment', labels: [999999], seeds: 1, out: join(root, 'x'), model: root }), /train split has only \d+/);
  await assert.rejects(labelEfficiency({ task: 'sentiment', labels: [8], seeds: 1, out: join(root, 'x'), model: root, domainText: true }), /cannot be combined with --model/);
});
