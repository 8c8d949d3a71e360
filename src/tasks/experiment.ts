/**
 * The label-efficiency experiment: how much does pre-training help when labels are scarce?
 *
 * For every label budget N and seed s: N training examples drawn stratified from the task's train split
 * (stratifiedSample: for one seed a smaller budget is a subset of a larger one), then two fine-tunings
 * with the identical recipe —
 *   pretrained  the pre-trained body (a Primer run directory or any GPT/BERT model directory) + a new head
 *   scratch     an identically shaped body, randomly initialised exactly as pre-training starts, + a new head
 * — early-stopped on the validation split and scored once on the test split (never used to choose
 * anything). Without --model, a `mini` GPT is first pre-trained on the built-in corpus with
 * src/train/pretrain.ts (whose documents never include the task's evaluation sentences).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTokenizer } from '../tokenizers/index.ts';
import { GPT2Model } from '../models/gpt.ts';
import { createModel, readModelConfig } from '../models/load.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { pretrain, type PretrainOptions } from '../train/pretrain.ts';
import type { TextExample } from './data.ts';
import { loadBuiltinTask, type ClassificationTask } from './builtin.ts';
import { stratifiedSample } from './labels.ts';
import { SequenceClassifier, type Backbone, type Pooling } from './heads.ts';
import { evaluateTask, finetune } from './finetune.ts';
import { loadBackbone } from './model-dir.ts';
import { markdownTable, meanStd, svgPlot, type Curve } from './experiment-report.ts';

export type Init = 'pretrained' | 'scratch';

export interface FinetuneRecipe {
  epochs: number;
  /** Small budgets get more epochs, so that every run takes at least this many optimizer steps. */
  minSteps: number;
  /** Upper bound on epochs after that stretch. */
  maxEpochs: number;
  lr: number;
  batchSize: number;
  maxLength: number;
  warmupRatio: number;
  weightDecay: number;
  /** Epochs without a better validation accuracy before stopping. */
  patience: number;
  /** GPT: 'mean' or 'last' token; BERT: 'pooler', 'cls' or 'mean'. */
  pooling?: Pooling;
  /** Validation examples used for early stopping (a stratified subset of the val split). */
  valExamples: number;
}

export const DEFAULT_RECIPE: FinetuneRecipe = {
  epochs: 6, minSteps: 40, maxEpochs: 30, lr: 3e-4, batchSize: 16, maxLength: 64, warmupRatio: 0.1, weightDecay: 0.01, patience: 4, valExamples: 100,
};

export interface LabelEfficiencyOptions {
  /** A built-in classification task (sentiment, spam, genre). */
  task: string;
  labels: readonly number[];
  /** Number of seeds (0 … seeds − 1). */
  seeds: number;
  /** Pre-trained model directory; without it a model is pre-trained first. */
  model?: string;
  out: string;
  /** Options of the pre-training run (default: the mini preset, PRETRAIN_DEFAULTS, its time limit). */
  pretrain?: PretrainOptions;
  recipe?: Partial<FinetuneRecipe>;
  /** Score on at most this many test examples (stratified; default all). */
  testExamples?: number;
  log?: (message: string) => void;
}

export interface RunRecord {
  init: Init;
  labels: number;
  seed: number;
  accuracy: number;
  macroF1: number;
  epochs: number;
  bestEpoch: number;
  seconds: number;
}

export interface LabelEfficiencyResult {
  task: string;
  model: string;
  /** False while the experiment runs (the files are rewritten after every fine-tuning run). */
  complete: boolean;
  pretrainSeconds: number | null;
  recipe: FinetuneRecipe;
  testExamples: number;
  majority: { label: string; accuracy: number };
  runs: RunRecord[];
  summary: Record<Init, Array<{ labels: number; mean: number; std: number; n: number }>>;
  seconds: number;
  files: { results: string; table: string; plot: string };
}

/** A freshly initialised body with the pre-trained one's exact config (and tokenizer vocabulary). */
function scratchBackbone(modelDir: string, seed: number): Backbone {
  const loaded = createModel(readModelConfig(modelDir), seed);
  return loaded.kind === 'gpt2' ? loaded.model.transformer : loaded.model.bert;
}

function majorityOf(train: readonly TextExample[], test: readonly TextExample[]): { label: string; accuracy: number } {
  const counts = new Map<string, number>();
  for (const x of train) counts.set(x.label!, (counts.get(x.label!) ?? 0) + 1);
  const label = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  return { label, accuracy: test.filter((x) => x.label === label).length / test.length };
}

export async function labelEfficiency(o: LabelEfficiencyOptions): Promise<LabelEfficiencyResult> {
  const log = o.log ?? ((m: string) => console.log(m));
  const t0 = performance.now();
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const loaded = loadBuiltinTask(o.task);
  if (loaded.kind !== 'classification') throw new RangeError(`experiment: task "${o.task}" is ${loaded.kind}; label efficiency needs a text classification task (sentiment, spam, genre)`);
  const task: ClassificationTask = loaded;
  const budgets = [...new Set(o.labels)].sort((a, b) => a - b);
  if (budgets.length === 0 || budgets.some((n) => !Number.isInteger(n) || n <= 0)) throw new RangeError(`experiment: --labels must be positive integers, got ${o.labels.join(',')}`);
  if (budgets[budgets.length - 1]! > task.train.length) throw new RangeError(`experiment: ${budgets[budgets.length - 1]} labels requested but the ${o.task} train split has ${task.train.length}`);
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new RangeError(`experiment: --seeds must be a positive integer, got ${o.seeds}`);
  const recipe: FinetuneRecipe = { ...DEFAULT_RECIPE, ...Object.fromEntries(Object.entries(o.recipe ?? {}).filter(([, v]) => v !== undefined)) };
  const labelOf = (x: TextExample) => x.label!;

  let modelDir = o.model ? resolve(o.model) : '';
  let pretrainSeconds: number | null = null;
  if (!modelDir) {
    log(`pre-training a ${o.pretrain?.preset ?? 'mini'} GPT for the experiment…`);
    const r = await pretrain({ preset: 'mini', samplePrompts: [], progress: false, log, ...o.pretrain, out: o.pretrain?.out ?? join(out, 'pretrain') });
    modelDir = r.runDir;
    pretrainSeconds = r.seconds.total;
  }
  const tokenizer = loadTokenizer(modelDir);
  const val = stratifiedSample(task.val, Math.min(recipe.valExamples, task.val.length), labelOf, 12345);
  const test = o.testExamples !== undefined && o.testExamples < task.test.length ? stratifiedSample(task.test, o.testExamples, labelOf, 54321) : task.test;
  const majority = majorityOf(task.train, test);
  log(`task ${o.task}: ${task.train.length} train / ${val.length} val (early stopping) / ${test.length} test examples; majority class "${majority.label}" = ${(100 * majority.accuracy).toFixed(1)}%`);

  const runs: RunRecord[] = [];
  const scratchDir = join(out, 'runs');
  const files = { results: join(out, 'results.json'), table: join(out, 'results.md'), plot: join(out, 'label-efficiency.svg') };
  // Rewritten after every run, so an interrupted experiment still leaves its numbers so far.
  const writeOutputs = (complete: boolean): LabelEfficiencyResult => {
    const done = budgets.filter((n) => runs.some((r) => r.labels === n && r.init === 'scratch'));
    const summarize = (init: Init) => done.map((n) => {
      const accs = runs.filter((r) => r.init === init && r.labels === n).map((r) => r.accuracy);
      return { labels: n, ...meanStd(accs), n: accs.length };
    });
    const summary = { pretrained: summarize('pretrained'), scratch: summarize('scratch') };
    const result: LabelEfficiencyResult = { task: o.task, model: modelDir, complete, pretrainSeconds, recipe, testExamples: test.length, majority, runs, summary, seconds: (performance.now() - t0) / 1000, files };
    writeJsonAtomic(files.results, result, { indent: 2 });
    if (done.length === 0) return result;
    const curves: [Curve, Curve] = [
      { name: 'pre-trained', color: '#1f77b4', points: summary.pretrained },
      { name: 'from scratch', color: '#d62728', points: summary.scratch },
    ];
    const seeds = Math.max(...summary.scratch.map((p) => p.n));
    const title = `Label efficiency on ${o.task}: test accuracy, mean ± std over ${seeds} seed${seeds > 1 ? 's' : ''}`;
    writeFileSync(files.table, `# ${title}\n\nModel: ${modelDir}${complete ? '' : ' (incomplete: the experiment is still running or was interrupted)'}\n\n${markdownTable(curves, majority)}`);
    writeFileSync(files.plot, svgPlot(curves, { title, baseline: majority.accuracy }));
    return result;
  };
  for (const n of budgets) {
    for (let seed = 0; seed < o.seeds; seed++) {
      const train = stratifiedSample(task.train, n, labelOf, seed);
      // Small budgets: smaller batches (at least 4 steps an epoch) and more epochs (at least minSteps steps).
      const batchSize = Math.min(recipe.batchSize, Math.max(4, Math.floor(train.length / 4)));
      const steps = Math.ceil(train.length / batchSize);
      const epochs = Math.min(recipe.maxEpochs, Math.max(recipe.epochs, Math.ceil(recipe.minSteps / steps)));
      for (const init of ['pretrained', 'scratch'] as const) {
        const t = performance.now();
        const body = init === 'pretrained' ? loadBackbone(modelDir) : scratchBackbone(modelDir, 1000 + seed);
        const model = new SequenceClassifier(body, task.labels, { seed, pooling: recipe.pooling ?? (body instanceof GPT2Model ? 'mean' : 'pooler') });
        const runDir = join(scratchDir, `${init}-${n}-${seed}`);
        const r = await finetune({
          model, tokenizer, train, val, runDir, epochs, batchSize, lr: recipe.lr, warmupRatio: recipe.warmupRatio,
          weightDecay: recipe.weightDecay, maxLength: recipe.maxLength, seed, patience: recipe.patience, metric: 'accuracy',
        });
        rmSync(runDir, { recursive: true, force: true });
        const report = evaluateTask(model, tokenizer, test, { maxLength: recipe.maxLength });
        const rec: RunRecord = { init, labels: n, seed, accuracy: report.accuracy, macroF1: report.macroF1, epochs: r.history.length, bestEpoch: r.bestEpoch, seconds: (performance.now() - t) / 1000 };
        runs.push(rec);
        log(`  ${init.padEnd(10)} labels ${String(n).padStart(5)} seed ${seed}: test accuracy ${(100 * rec.accuracy).toFixed(1)}%, macro-F1 ${(100 * rec.macroF1).toFixed(1)}% (${rec.epochs} epochs of batch ${batchSize}, best ${rec.bestEpoch}, ${rec.seconds.toFixed(1)}s)`);
        writeOutputs(false);
      }
    }
  }
  rmSync(scratchDir, { recursive: true, force: true });
  const result = writeOutputs(true);
  return result;
}
