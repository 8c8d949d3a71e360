/**
 * Fine-tuning a task end to end, as `primer finetune` does it: the task type (from a built-in task
 * or the data file), the train/val/test splits, the head on the pre-trained body, training, the
 * saved model directory and eval_results.json with the test scores.
 */
import { existsSync, rmSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Module } from '../nn/module.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { LabelMap } from '../models/labels.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, contextLength, type Backbone, type Pooling, type TaskModel } from '../models/heads.ts';
import { loadBackbone, saveTaskModelDir } from '../models/model-dir.ts';
import { loadBuiltinTask, BUILTIN_TASKS } from './builtin.ts';
import { readSquad, readTextExamples, readTokenTagged, type QAExample, type TextExample, type TokenExample } from './data.ts';
import { shuffled, splitDataset, stratifiedSample } from './labels.ts';
import { evaluateQA, evaluateTask, finetune, type EpochRecord, type FinetuneResult } from './finetune.ts';
import { padTokenId } from './encode.ts';
import type { ClassificationReport } from './metrics.ts';
import { catchStopSignals, type StopSignal } from '../train/signals.ts';
import { checkOptionValues, refuseUnknownOptions, type OptionKeys } from '../train/option-checks.ts';
import { FINETUNE_SETTING_SPECS } from './finetune.ts';

export type TaskType = 'classify' | 'tag' | 'qa';
export type TaskExamples = TextExample[] | TokenExample[] | QAExample[];
export type TaskReport = ClassificationReport | { exactMatch: number; f1: number; count: number };

/**
 * Where the examples come from: a built-in task, or files. `data` is split 80/10/10; a split given as
 * its own file (`valData`, `testData`) is not taken out of `data` (both given: all of `data` trains).
 */
export interface TaskDataSpec {
  task?: string;
  data?: string;
  valData?: string;
  testData?: string;
  /** Default: the built-in task's kind, or the file extension (.json QA, .conll… tags, else classification). */
  type?: TaskType;
  textColumn?: string;
  pairColumn?: string;
  labelColumn?: string;
}

export interface TaskSplits {
  type: TaskType;
  train: TaskExamples;
  val: TaskExamples;
  test: TaskExamples;
  /** The task or file name, for messages. */
  name: string;
}

/** The extensions each task's data files are read by (also listed in full when a name matches none). */
export const DATA_EXTENSIONS: Record<TaskType, { exts: readonly string[]; what: string }> = {
  classify: { exts: ['.csv', '.tsv', '.tab', '.jsonl', '.ndjson'], what: 'text classification' },
  tag: { exts: ['.conll', '.conllu', '.iob', '.bio', '.tags'], what: 'token tags' },
  qa: { exts: ['.json'], what: 'SQuAD QA' },
};

/** The task type a data file implies by its extension (classification for any other). */
export function taskTypeOfFile(path: string): TaskType {
  const ext = extname(path).toLowerCase();
  if (DATA_EXTENSIONS.qa.exts.includes(ext)) return 'qa';
  if (DATA_EXTENSIONS.tag.exts.includes(ext)) return 'tag';
  return 'classify';
}

function readData(path: string, type: TaskType, s: TaskDataSpec): TaskExamples {
  if (!existsSync(path)) throw new RangeError(`--data: ${path} does not exist`);
  if (type === 'qa') return readSquad(path);
  if (type === 'tag') return readTokenTagged(path);
  return readTextExamples(path, { textColumn: s.textColumn, textPairColumn: s.pairColumn, labelColumn: s.labelColumn });
}

/**
 * train/val/test: the built-in task's canonical split, or `data` with each of val and test from its
 * own file when given, else a seeded 10% of `data` (stratified by class), as `--help` promises.
 */
export function loadTaskSplits(s: TaskDataSpec): TaskSplits {
  if (s.task) {
    if (s.data) throw new RangeError('--task and --data are exclusive: a built-in task or your own file');
    const t = loadBuiltinTask(s.task);
    return { type: t.kind === 'classification' ? 'classify' : 'tag', train: t.train, val: t.val, test: t.test, name: s.task };
  }
  if (!s.data) throw new RangeError(`--task NAME (${BUILTIN_TASKS.join(', ')}) or --data FILE is required`);
  const type = s.type ?? taskTypeOfFile(s.data);
  const all = readData(s.data, type, s);
  const val = s.valData ? readData(s.valData, type, s) : null;
  const test = s.testData ? readData(s.testData, type, s) : null;
  if (val && test) return { type, train: all, val, test, name: s.data };
  const stratifyBy = type === 'classify' ? (x: TextExample) => x.label ?? '' : undefined;
  // With the same seed and per-class order, the held-out test 10% is the same whether or not --val-data is given.
  const split = splitDataset(all as TextExample[], { val: val ? 0 : 0.1, test: test ? 0 : 0.1, seed: 0, stratifyBy }) as { train: TaskExamples; val: TaskExamples; test: TaskExamples };
  return { type, train: split.train, val: val ?? split.val, test: test ?? split.test, name: s.data };
}

/** What the test score was measured on, for its heading (it is never the training file itself). */
export function testSplitName(s: { task?: string; data?: string; testData?: string }): string {
  if (s.task) return `${s.task}, test split`;
  if (s.testData) return s.testData;
  return `10% of ${s.data} held out from training`;
}

/** The distinct labels (classification) or tags (tagging) of examples; none for QA. */
function labelSet(type: TaskType, ex: TaskExamples): Set<string> {
  if (type === 'classify') return new Set((ex as TextExample[]).map((x) => x.label!));
  return new Set(type === 'tag' ? (ex as TokenExample[]).flatMap((x) => x.tags) : []);
}

/**
 * The examples to train on (only `labels` of them when given: stratified by class for classification),
 * checked before any model is loaded: a classifier or tagger that only ever sees one label learns
 * nothing, yet would report 100% accuracy on data of that label.
 */
export function selectTrainingExamples(splits: TaskSplits, o: { seed: number; labels?: number }): TaskExamples {
  const { type, train: all, name } = splits;
  if (all.length === 0) throw new RangeError(`${name}: no training examples`);
  if (type === 'qa') return o.labels ? shuffled(all as QAExample[], o.seed).slice(0, o.labels) : all;
  const [unit, what] = type === 'classify' ? ['example', 'label'] : ['token', 'tag'];
  if (type === 'classify') {
    const unlabelled = (all as TextExample[]).find((x) => x.label === undefined);
    if (unlabelled) throw new RangeError(`${name}: an example has no label${unlabelled.where ? ` (${unlabelled.where.file}:${unlabelled.where.line})` : ''}`);
  }
  const known = labelSet(type, all);
  if (known.size < 2) throw new RangeError(`${name}: every ${unit} has the ${what} ${JSON.stringify([...known][0])}; a ${type === 'classify' ? 'classifier' : 'tagger'} needs at least two ${what}s`);
  if (!o.labels) return all;
  const train = type === 'classify'
    ? stratifiedSample(all as TextExample[], o.labels, (x) => x.label!, o.seed)
    : shuffled(all as TokenExample[], o.seed).slice(0, o.labels);
  const seen = labelSet(type, train);
  if (seen.size < 2) {
    throw new RangeError(`--labels ${o.labels}: the ${train.length} training ${train.length === 1 ? 'example has' : 'examples have'} only the ${what} ${JSON.stringify([...seen][0])}; a model needs at least two ${what}s to learn from (${name} has ${known.size}: use a larger --labels)`);
  }
  return train;
}

/**
 * The head for the task on `backbone`, with its label set from all the training data, and the
 * training examples (selectTrainingExamples). Unknown labels in val/test fail here, naming file,
 * line and column, rather than after training.
 */
export function buildTaskModel(splits: TaskSplits, backbone: Backbone, o: { seed: number; pooling?: Pooling; labels?: number; padTokenId?: number }): { model: TaskModel; train: TaskExamples } {
  const { type, train: all, val, test } = splits;
  const train = selectTrainingExamples(splits, o);
  let model: TaskModel;
  if (type === 'classify') {
    model = new SequenceClassifier(backbone, LabelMap.fromLabels((all as TextExample[]).map((x) => x.label)), { seed: o.seed, pooling: o.pooling, padTokenId: o.padTokenId });
  } else if (type === 'tag') {
    model = new TokenClassifier(backbone, LabelMap.fromLabels((all as TokenExample[]).flatMap((x) => x.tags)), { seed: o.seed });
  } else {
    model = new QuestionAnswering(backbone, { seed: o.seed });
  }
  if (model instanceof SequenceClassifier) for (const split of [val, test]) model.labels.encode(split as TextExample[]);
  if (model instanceof TokenClassifier) for (const split of [val, test]) for (const ex of split as TokenExample[]) model.labels.encodeTags(ex);
  return { model, train };
}

/** Test (or validation) scores: accuracy/F1 report for classification and tagging, EM/F1 for QA. */
export function evaluateSplit(model: TaskModel, tokenizer: Tokenizer, examples: TaskExamples, o: { maxLength?: number; stride?: number } = {}): TaskReport {
  if (model instanceof QuestionAnswering) {
    const r = evaluateQA(model, tokenizer, examples as QAExample[], o);
    return { exactMatch: r.exactMatch, f1: r.f1, count: r.count };
  }
  return evaluateTask(model, tokenizer, examples as TextExample[], { maxLength: o.maxLength });
}

/** Parameter-efficient training of the task model (LoRA: src/adapt/lora-task.ts's taskLoraAdapter). */
export interface TaskAdapter {
  /** Wraps the model; the returned module's parameters are the ones trained. */
  attach(model: TaskModel): Module;
  /** One line for the log, after attach. */
  describe(): string;
  /** Writes the adapter (instead of the full model) into dir. */
  save(dir: string, model: TaskModel, tokenizer: Tokenizer): void;
}

export interface TaskFinetuneOptions extends TaskDataSpec {
  /** Pre-trained model directory (config.json, model.safetensors, tokenizer). */
  model: string;
  out: string;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  /** Tokens per example (QA: per window); default 128, QA 384, at most the model's context. */
  maxLength?: number;
  stride?: number;
  /** Train on only this many labelled examples (drawn with `seed`). */
  labels?: number;
  freezeLayers?: number;
  freezeEmbeddings?: boolean;
  patience?: number;
  pooling?: Pooling;
  seed?: number;
  adapter?: TaskAdapter;
  log?: (message: string) => void;
  onEpoch?: (e: EpochRecord) => void;
  /** Ends training before the next step, like a signal: the best finished epoch is still saved. */
  stop?: AbortSignal;
  /** SIGINT/SIGTERM end training the same way (default true); a second signal exits at once. */
  handleSignals?: boolean;
}

export interface TaskFinetuneResult {
  type: TaskType;
  name: string;
  model: TaskModel;
  tokenizer: Tokenizer;
  training: FinetuneResult;
  trainExamples: number;
  /** Null without test data, and when interrupted (the run then stops as soon as the model is saved). */
  test: TaskReport | null;
  /** What was written to eval_results.json (nothing when saved is false). */
  results: Record<string, unknown>;
  /** Stopped by a signal or `stop`: the best (or last) finished epoch was saved, if one had finished. */
  interrupted: boolean;
  signal?: StopSignal;
  /** Whether a model (or adapter) was written to `out`: false only when interrupted before the first epoch ended. */
  saved: boolean;
}

/**
 * Runs `fn` with the first SIGINT/SIGTERM turned into `stop.abort()` (train/signals.ts: a second one
 * exits at once). The handlers stay until `fn` has saved: the save is synchronous, so no handler runs
 * (and no default action kills the process) in the middle of it; each file is also replaced
 * atomically (src/io/atomic.ts), so even SIGKILL leaves the old file or the new one.
 */
async function withStopSignals<T>(listen: boolean, stop: AbortController, log: (m: string) => void, fn: (received: () => StopSignal | undefined) => Promise<T>): Promise<T> {
  const stops = catchStopSignals(listen, (s) => {
    stop.abort();
    log(`${s} received: stopping after this step and saving the best finished epoch (send it again to quit at once, without saving)`);
  });
  try {
    return await fn(stops.received);
  } finally {
    stops.release();
  }
}

/**
 * Fine-tunes, saves the best epoch's model (or adapter) into `out` with eval_results.json, and scores
 * the test split. Interrupted (see `stop`), it saves the best finished epoch and skips the test split.
 */
export const TASK_FINETUNE_KEYS: OptionKeys<TaskFinetuneOptions> = {
  task: true, data: true, valData: true, testData: true, type: true, textColumn: true, pairColumn: true, labelColumn: true,
  model: true, out: true, epochs: true, lr: true, batchSize: true, maxLength: true, stride: true, labels: true, freezeLayers: true,
  freezeEmbeddings: true, patience: true, pooling: true, seed: true, adapter: true, log: true, onEpoch: true, stop: true, handleSignals: true,
};

/** finetuneTask's options checked before the data or the model is read (see train/option-checks.ts). */
function checkTaskFinetuneOptions(o: TaskFinetuneOptions): void {
  refuseUnknownOptions('finetuneTask', o, TASK_FINETUNE_KEYS);
  for (const key of ['model', 'out'] as const) {
    if (typeof o[key] !== 'string' || o[key] === '') throw new TypeError(`finetuneTask: ${key} (a directory path) is required, got ${JSON.stringify(o[key])}`);
  }
  checkOptionValues('finetuneTask', o as unknown as Record<string, unknown>, {
    ...FINETUNE_SETTING_SPECS, labels: { int: 1 }, freezeLayers: { int: 0 }, freezeEmbeddings: { type: 'boolean' },
    pooling: { oneOf: ['pooler', 'cls', 'last', 'mean'] }, type: { oneOf: ['classify', 'tag', 'qa'] }, task: { type: 'string' },
    data: { type: 'string' }, valData: { type: 'string' }, testData: { type: 'string' }, log: { type: 'function' }, handleSignals: { type: 'boolean' },
  });
}

export async function finetuneTask(o: TaskFinetuneOptions): Promise<TaskFinetuneResult> {
  checkTaskFinetuneOptions(o);
  const log = o.log ?? ((m: string) => console.log(m));
  const seed = o.seed ?? 0;
  const splits = loadTaskSplits(o);
  const { type, val, test, name } = splits;
  // The data's own problems (one label, an empty sample) fail before a large model is read.
  selectTrainingExamples(splits, { seed, labels: o.labels });
  const backbone = loadBackbone(o.model);
  const tokenizer = loadTokenizer(o.model);
  const maxLength = Math.min(o.maxLength ?? (type === 'qa' ? 384 : 128), contextLength(backbone));
  // A Llama classifier reads the last token before the padding: its pad_token_id is the id batches are padded with.
  const { model, train } = buildTaskModel(splits, backbone, { seed, pooling: o.pooling, labels: o.labels, padTokenId: padTokenId(tokenizer) });
  log(`fine-tuning ${model.architecture} (${o.model}) on ${name}: ${train.length} training examples${o.labels ? ` (--labels ${o.labels}, seed ${seed})` : ''}, ${val.length} validation, ${test.length} test`);
  const sampled = labelSet(type, train);
  const unseen = [...labelSet(type, splits.train)].filter((l) => !sampled.has(l));
  if (unseen.length) log(`warning: --labels ${o.labels} leaves ${unseen.length} of the ${type === 'tag' ? 'tags' : 'labels'} without a training example (${unseen.join(', ')}): the model will not learn to predict them`);
  const trainable = o.adapter?.attach(model);
  if (o.adapter) log(o.adapter.describe());
  const stop = new AbortController();
  if (o.stop?.aborted) stop.abort();
  o.stop?.addEventListener('abort', () => stop.abort(), { once: true });
  return withStopSignals(o.handleSignals ?? true, stop, log, async (received) => {
    const training = await finetune({
      model: model as SequenceClassifier, tokenizer, train: train as TextExample[], val: val as TextExample[], runDir: o.out,
      epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, maxLength, stride: o.stride, seed, patience: o.patience,
      freeze: o.freezeLayers || o.freezeEmbeddings ? { layers: o.freezeLayers, embeddings: o.freezeEmbeddings } : undefined,
      trainable, onEpoch: o.onEpoch, stop: stop.signal,
    });
    const interrupted = stop.signal.aborted;
    const signal = received();
    const base = { type, name, model, tokenizer, training, trainExamples: train.length, test: null, interrupted, signal };
    // The per-epoch checkpoint only served the epoch loop; the saved model is the best epoch.
    rmSync(join(o.out, 'checkpoints'), { recursive: true, force: true });
    const why = `interrupted${signal ? ` (${signal})` : ''}`;
    if (interrupted && training.history.length === 0) {
      log(`${why} before the first epoch ended: nothing was saved to ${o.out}`);
      return { ...base, results: {}, saved: false };
    }
    if (training.stoppedEarly) log(`stopped early: no better validation score for ${o.patience} epochs`);
    if (training.bestMetric !== null) log(`best epoch ${training.bestEpoch} (its weights are kept)`);
    if (o.adapter) o.adapter.save(o.out, model, tokenizer);
    else saveTaskModelDir(o.out, model, tokenizer);
    const results: Record<string, unknown> = {
      task: name, type, trainExamples: train.length, bestEpoch: training.bestEpoch, history: training.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss })),
    };
    if (interrupted) results.interrupted = true;
    const report = test.length && !interrupted ? evaluateSplit(model, tokenizer, test, { maxLength, stride: o.stride }) : null;
    if (report) results.test = report;
    writeJsonAtomic(join(o.out, 'eval_results.json'), results);
    if (interrupted) {
      log(`${why} after ${training.history.length} of ${o.epochs ?? 3} epochs: saved the ${o.adapter ? 'LoRA adapter' : 'model'} of epoch ${training.bestEpoch} to ${o.out} (no test scores for an interrupted run)`);
    }
    return { ...base, test: report, results, saved: true };
  });
}
