/**
 * The label-efficiency experiment: how much does pre-training help when labels are scarce?
 *
 * For every label budget N and seed s: N training examples drawn stratified from the task's train split
 * (stratifiedSample: for one seed a smaller budget is a subset of a larger one), then two fine-tunings
 * with the identical recipe —
 *   pretrained  the pre-trained body (a Primer run directory or any GPT/BERT model directory) + a new head
 *   scratch     an identically shaped body, randomly initialised exactly as pre-training starts, + a new head
 * — LP-FT: the new head alone on the frozen body, then everything; both early-stopped on a subset of
 * the validation split — and scored once on the test split (never used to choose anything; recipes are
 * compared with scoreSplit 'val', which scores the rest of the validation split instead). The best
 * weights of a run are kept in memory: nothing is written per epoch. Without --model, a `mini` GPT is
 * first pre-trained for 1000 steps on the built-in corpus with src/train/pretrain.ts (whose documents
 * never include the task's evaluation sentences), optionally plus the task's unlabelled train texts.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { GPT2Model } from '../models/gpt.ts';
import { createModel, readModelConfig } from '../models/load.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { resolveCorpus } from '../data/builtin.ts';
import { PRETRAIN_DEFAULTS, pretrain, type PretrainOptions } from '../train/pretrain.ts';
import type { TextExample } from './data.ts';
import { loadBuiltinTask, type ClassificationTask } from './builtin.ts';
import { shuffled, stratifiedSample } from './labels.ts';
import { SequenceClassifier, type Backbone, type Pooling } from '../models/heads.ts';
import { evaluateTask, finetune } from './finetune.ts';
import { loadBackbone } from '../models/model-dir.ts';
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
  /** Freeze the token and position embeddings (both inits alike). */
  freezeEmbeddings?: boolean;
  /** Dropout before the classifier (default: the head's default). */
  dropout?: number;
  /**
   * LP-FT: first up to this many epochs (early-stopped; like `epochs`, about minSteps steps, at least
   * 2 epochs) training only the new head on the frozen body at headLr, then the full fine-tuning;
   * 0 = off. The body's fine-tuning then starts from a head that already separates the classes
   * instead of back-propagating a random head's gradients into it.
   */
  headEpochs?: number;
  headLr?: number;
}

export const DEFAULT_RECIPE: FinetuneRecipe = {
  epochs: 6, minSteps: 40, maxEpochs: 30, lr: 3e-4, batchSize: 16, maxLength: 64, warmupRatio: 0.1, weightDecay: 0.01, patience: 4, valExamples: 100,
  headEpochs: 10, headLr: 3e-3,
};

export interface LabelEfficiencyOptions {
  /** A built-in classification task (sentiment, spam, genre). */
  task: string;
  labels: readonly number[];
  /** Number of seeds (firstSeed … firstSeed + seeds − 1). */
  seeds: number;
  /** Default 0; another value splits one grid across processes or machines. */
  firstSeed?: number;
  /** Pre-trained model directory; without it a model is pre-trained first. */
  model?: string;
  out: string;
  /** Options of the pre-training run (default: the mini preset, PRETRAIN_DEFAULTS' 1000 steps, no time limit). */
  pretrain?: PretrainOptions;
  recipe?: Partial<FinetuneRecipe>;
  /**
   * Domain-adaptive pre-training, an option reported as such: the task's train-split texts (no labels;
   * never val or test) join the pre-training corpus, DOMAIN_TEXT_COPIES times.
   */
  domainText?: boolean;
  /** Score on at most this many test examples (stratified; default all). */
  testExamples?: number;
  /**
   * 'test' (default) scores the test split; 'val' scores the validation examples not used for early
   * stopping, for choosing a recipe without ever looking at test scores.
   */
  scoreSplit?: 'test' | 'val';
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
  domainText: boolean;
  /** False while the experiment runs (the files are rewritten after every fine-tuning run). */
  complete: boolean;
  pretrainSeconds: number | null;
  recipe: FinetuneRecipe;
  scoreSplit: 'test' | 'val';
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

/**
 * The examples that pick the best epoch (a stratified subset of val) and the ones scored: the test
 * split, or with scoreSplit 'val' the rest of val (disjoint from both early stopping and test).
 */
export function evaluationSets(task: ClassificationTask, valExamples: number, scoreSplit: 'test' | 'val', limit?: number): { earlyStopping: TextExample[]; scored: TextExample[] } {
  const labelOf = (x: TextExample) => x.label!;
  const earlyStopping = stratifiedSample(task.val, Math.min(valExamples, task.val.length), labelOf, 12345);
  const used = new Set(earlyStopping);
  const pool = scoreSplit === 'val' ? task.val.filter((x) => !used.has(x)) : task.test;
  if (pool.length === 0) throw new RangeError(`experiment: no validation examples left to score after the ${earlyStopping.length} used for early stopping (lower recipe.valExamples)`);
  const scored = limit !== undefined && limit < pool.length ? stratifiedSample(pool, limit, labelOf, 54321) : [...pool];
  return { earlyStopping, scored };
}

/**
 * Once, the train texts are under 1% of the built-in corpus's tokens: too few random blocks would
 * come from them in 1000 steps to adapt the model, hence several copies (each in its own order).
 */
export const DOMAIN_TEXT_COPIES = 10;

/** Writes the task's train texts (one per line, no labels) as DOMAIN_TEXT_COPIES files into dir. */
export function writeDomainText(task: ClassificationTask, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const texts = task.train.map((x) => (x.textPair ? `${x.text}\n${x.textPair}` : x.text));
  for (let copy = 0; copy < DOMAIN_TEXT_COPIES; copy++) writeFileSync(join(dir, `${task.name}-train-${copy}.txt`), `${shuffled(texts, copy).join('\n')}\n`);
  return dir;
}

interface RunSetup {
  tokenizer: Tokenizer;
  train: TextExample[];
  val: TextExample[];
  runDir: string;
  batchSize: number;
  epochs: number;
  headEpochs: number;
  recipe: FinetuneRecipe;
  seed: number;
}

/**
 * One fine-tuning run: the head alone on the frozen body (headEpochs > 0), then everything. Early
 * stopping spans both stages: when every full epoch is worse than the best head-only epoch on
 * validation, the head-only weights are kept. Epochs are counted over both stages.
 */
async function lpft(model: SequenceClassifier, s: RunSetup): Promise<{ epochs: number; bestEpoch: number }> {
  const common = { model, tokenizer: s.tokenizer, train: s.train, val: s.val, batchSize: s.batchSize, maxLength: s.recipe.maxLength, seed: s.seed, patience: s.recipe.patience, metric: 'accuracy' as const, weightDecay: s.recipe.weightDecay };
  let head: { epochs: number; bestEpoch: number; bestMetric: number; weights: Float32Array[] } | null = null;
  if (s.headEpochs > 0) {
    const bodyParams = model.backbone.parameters();
    for (const p of bodyParams) p.requiresGrad = false;
    const r = await finetune({ ...common, runDir: `${s.runDir}-head`, epochs: s.headEpochs, lr: s.recipe.headLr ?? 10 * s.recipe.lr, warmupRatio: 0 });
    for (const p of bodyParams) p.requiresGrad = true;
    rmSync(`${s.runDir}-head`, { recursive: true, force: true });
    head = { epochs: r.history.length, bestEpoch: r.bestEpoch, bestMetric: r.bestMetric ?? -Infinity, weights: model.parameters().map((p) => Float32Array.from(p.data)) };
  }
  const r = await finetune({
    ...common, runDir: s.runDir, epochs: s.epochs, lr: s.recipe.lr, warmupRatio: s.recipe.warmupRatio,
    freeze: s.recipe.freezeEmbeddings ? { embeddings: true } : undefined,
  });
  rmSync(s.runDir, { recursive: true, force: true });
  if (!head) return { epochs: r.history.length, bestEpoch: r.bestEpoch };
  const epochs = head.epochs + r.history.length;
  // A tie goes to the fully fine-tuned weights: this is a fine-tuning experiment.
  if (r.bestMetric !== null && r.bestMetric >= head.bestMetric) return { epochs, bestEpoch: head.epochs + r.bestEpoch };
  model.parameters().forEach((p, i) => p.data.set(head.weights[i]!));
  return { epochs, bestEpoch: head.bestEpoch };
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

  if (o.domainText && o.model) throw new RangeError('experiment: --domain-text changes the pre-training corpus; it cannot be combined with --model');
  let modelDir = o.model ? resolve(o.model) : '';
  let pretrainSeconds: number | null = null;
  if (!modelDir) {
    log(`pre-training a ${o.pretrain?.preset ?? 'mini'} GPT for the experiment…`);
    const given: PretrainOptions = Object.fromEntries(Object.entries(o.pretrain ?? {}).filter(([, v]) => v !== undefined));
    // An explicit step count: the default time limit would make the model depend on the machine's load.
    const steps = given.maxMinutes === undefined ? PRETRAIN_DEFAULTS.steps : undefined;
    if (o.domainText) given.corpus = [...resolveCorpus(given.corpus ?? []), writeDomainText(task, join(out, 'domain-text'))];
    const r = await pretrain({ preset: 'mini', steps, samplePrompts: [], progress: false, log, ...given, out: given.out ?? join(out, 'pretrain') });
    modelDir = r.runDir;
    pretrainSeconds = r.seconds.total;
  }
  const tokenizer = loadTokenizer(modelDir);
  const scoreSplit = o.scoreSplit ?? 'test';
  const { earlyStopping: val, scored: test } = evaluationSets(task, recipe.valExamples, scoreSplit, o.testExamples);
  const majority = majorityOf(task.train, test);
  log(`task ${o.task}: ${task.train.length} train / ${val.length} val (early stopping) / ${test.length} ${scoreSplit === 'val' ? 'held-out val' : 'test'} examples scored; majority class "${majority.label}" = ${(100 * majority.accuracy).toFixed(1)}%`);

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
    const result: LabelEfficiencyResult = { task: o.task, model: modelDir, domainText: o.domainText ?? false, complete, pretrainSeconds, recipe, scoreSplit, testExamples: test.length, majority, runs, summary, seconds: (performance.now() - t0) / 1000, files };
    writeJsonAtomic(files.results, result, { indent: 2 });
    if (done.length === 0) return result;
    const curves: [Curve, Curve] = [
      { name: 'pre-trained', color: '#1f77b4', points: summary.pretrained },
      { name: 'from scratch', color: '#d62728', points: summary.scratch },
    ];
    const seeds = Math.max(...summary.scratch.map((p) => p.n));
    const title = `Label efficiency on ${o.task}: ${scoreSplit === 'val' ? 'held-out validation' : 'test'} accuracy, mean ± std over ${seeds} seed${seeds > 1 ? 's' : ''}`;
    writeFileSync(files.table, `# ${title}\n\nModel: ${modelDir}${o.domainText ? ' (domain-adaptive: pre-trained with the task\'s unlabelled train texts)' : ''}${complete ? '' : ' (incomplete: the experiment is still running or was interrupted)'}\n\n${markdownTable(curves, majority)}`);
    writeFileSync(files.plot, svgPlot(curves, { title, baseline: majority.accuracy }));
    return result;
  };
  for (const n of budgets) {
    const firstSeed = o.firstSeed ?? 0;
    for (let seed = firstSeed; seed < firstSeed + o.seeds; seed++) {
      const train = stratifiedSample(task.train, n, labelOf, seed);
      // Small budgets: smaller batches (at least 4 steps an epoch) and more epochs (at least minSteps steps).
      const batchSize = Math.min(recipe.batchSize, Math.max(4, Math.floor(train.length / 4)));
      const steps = Math.ceil(train.length / batchSize);
      const epochs = Math.min(recipe.maxEpochs, Math.max(recipe.epochs, Math.ceil(recipe.minSteps / steps)));
      // A linear head needs about minSteps steps too: large budgets get 2 head epochs, not headEpochs.
      const headEpochs = Math.min(recipe.headEpochs ?? 0, Math.max(2, Math.ceil(recipe.minSteps / steps)));
      for (const init of ['pretrained', 'scratch'] as const) {
        const t = performance.now();
        const body = init === 'pretrained' ? loadBackbone(modelDir) : scratchBackbone(modelDir, 1000 + seed);
        const model = new SequenceClassifier(body, task.labels, { seed, dropout: recipe.dropout, pooling: recipe.pooling ?? (body instanceof GPT2Model ? 'mean' : 'pooler') });
        const runDir = join(scratchDir, `${init}-${n}-${seed}`);
        const r = await lpft(model, { tokenizer, train, val, runDir, batchSize, epochs, headEpochs, recipe, seed });
        const report = evaluateTask(model, tokenizer, test, { maxLength: recipe.maxLength, batchSize: 64 });
        const rec: RunRecord = { init, labels: n, seed, accuracy: report.accuracy, macroF1: report.macroF1, epochs: r.epochs, bestEpoch: r.bestEpoch, seconds: (performance.now() - t) / 1000 };
        runs.push(rec);
        log(`  ${init.padEnd(10)} labels ${String(n).padStart(5)} seed ${seed}: ${scoreSplit} accuracy ${(100 * rec.accuracy).toFixed(1)}%, macro-F1 ${(100 * rec.macroF1).toFixed(1)}% (${rec.epochs} epochs of batch ${batchSize}, best ${rec.bestEpoch}, ${rec.seconds.toFixed(1)}s)`);
        writeOutputs(false);
      }
    }
  }
  rmSync(scratchDir, { recursive: true, force: true });
  const result = writeOutputs(true);
  return result;
}
