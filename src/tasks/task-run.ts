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

export type TaskType = 'classify' | 'tag' | 'qa';
export type TaskExamples = TextExample[] | TokenExample[] | QAExample[];
export type TaskReport = ClassificationReport | { exactMatch: number; f1: number; count: number };

/** Where the examples come from: a built-in task, or files (split 80/10/10 when only `data` is given). */
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

/** The task type a data file implies by its extension. */
export function taskTypeOfFile(path: string): TaskType {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'qa';
  if (['.conll', '.conllu', '.iob', '.bio', '.tags'].includes(ext)) return 'tag';
  return 'classify';
}

function readData(path: string, type: TaskType, s: TaskDataSpec): TaskExamples {
  if (!existsSync(path)) throw new RangeError(`--data: ${path} does not exist`);
  if (type === 'qa') return readSquad(path);
  if (type === 'tag') return readTokenTagged(path);
  return readTextExamples(path, { textColumn: s.textColumn, textPairColumn: s.pairColumn, labelColumn: s.labelColumn });
}

/** train/val/test: the built-in task's canonical split, given files, or a seeded 80/10/10 split of `data`. */
export function loadTaskSplits(s: TaskDataSpec): TaskSplits {
  if (s.task) {
    if (s.data) throw new RangeError('--task and --data are exclusive: a built-in task or your own file');
    const t = loadBuiltinTask(s.task);
    return { type: t.kind === 'classification' ? 'classify' : 'tag', train: t.train, val: t.val, test: t.test, name: s.task };
  }
  if (!s.data) throw new RangeError(`--task NAME (${BUILTIN_TASKS.join(', ')}) or --data FILE is required`);
  const type = s.type ?? taskTypeOfFile(s.data);
  const all = readData(s.data, type, s);
  if (s.valData || s.testData) {
    return { type, train: all, val: s.valData ? readData(s.valData, type, s) : [], test: s.testData ? readData(s.testData, type, s) : [], name: s.data };
  }
  const stratifyBy = type === 'classify' ? (x: TextExample) => x.label ?? '' : undefined;
  const split = splitDataset(all as TextExample[], { val: 0.1, test: 0.1, seed: 0, stratifyBy });
  return { type, ...(split as { train: TaskExamples; val: TaskExamples; test: TaskExamples }), name: s.data };
}

/** What the test score was measured on, for its heading (it is never the training file itself). */
export function testSplitName(s: { task?: string; data?: string; testData?: string }): string {
  if (s.task) return `${s.task}, test split`;
  if (s.testData) return s.testData;
  return `10% of ${s.data} held out from training`;
}

/**
 * The head for the task on `backbone`, with its label set from the training data, and the training
 * examples (only `labels` of them when given: stratified by class for classification). Unknown labels
 * in val/test fail here, naming file, line and column, rather than after training.
 */
export function buildTaskModel(splits: TaskSplits, backbone: Backbone, o: { seed: number; pooling?: Pooling; labels?: number; padTokenId?: number }): { model: TaskModel; train: TaskExamples } {
  const { type, train: all, val, test, name } = splits;
  if (all.length === 0) throw new RangeError(`${name}: no training examples`);
  let model: TaskModel;
  let train: TaskExamples;
  if (type === 'classify') {
    const ex = all as TextExample[];
    const unlabelled = ex.find((x) => x.label === undefined);
    if (unlabelled) throw new RangeError(`${name}: an example has no label${unlabelled.where ? ` (${unlabelled.where.file}:${unlabelled.where.line})` : ''}`);
    model = new SequenceClassifier(backbone, LabelMap.fromLabels(ex.map((x) => x.label)), { seed: o.seed, pooling: o.pooling, padTokenId: o.padTokenId });
    train = o.labels ? stratifiedSample(ex, o.labels, (x) => x.label!, o.seed) : ex;
  } else if (type === 'tag') {
    const ex = all as TokenExample[];
    model = new TokenClassifier(backbone, LabelMap.fromLabels(ex.flatMap((x) => x.tags)), { seed: o.seed });
    train = o.labels ? shuffled(ex, o.seed).slice(0, o.labels) : ex;
  } else {
    model = new QuestionAnswering(backbone, { seed: o.seed });
    train = o.labels ? shuffled(all as QAExample[], o.seed).slice(0, o.labels) : (all as QAExample[]);
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
}

export interface TaskFinetuneResult {
  type: TaskType;
  name: string;
  model: TaskModel;
  tokenizer: Tokenizer;
  training: FinetuneResult;
  trainExamples: number;
  test: TaskReport | null;
  /** What was written to eval_results.json. */
  results: Record<string, unknown>;
}

/** Fine-tunes, saves the best epoch's model (or adapter) into `out` with eval_results.json, and scores the test split. */
export async function finetuneTask(o: TaskFinetuneOptions): Promise<TaskFinetuneResult> {
  const log = o.log ?? ((m: string) => console.log(m));
  const seed = o.seed ?? 0;
  const splits = loadTaskSplits(o);
  const { type, val, test, name } = splits;
  if (splits.train.length === 0) throw new RangeError(`${name}: no training examples`);
  const backbone = loadBackbone(o.model);
  const tokenizer = loadTokenizer(o.model);
  const maxLength = Math.min(o.maxLength ?? (type === 'qa' ? 384 : 128), contextLength(backbone));
  // A Llama classifier reads the last token before the padding: its pad_token_id is the id batches are padded with.
  const { model, train } = buildTaskModel(splits, backbone, { seed, pooling: o.pooling, labels: o.labels, padTokenId: padTokenId(tokenizer) });
  log(`fine-tuning ${model.architecture} (${o.model}) on ${name}: ${train.length} training examples${o.labels ? ` (--labels ${o.labels}, seed ${seed})` : ''}, ${val.length} validation, ${test.length} test`);
  const trainable = o.adapter?.attach(model);
  if (o.adapter) log(o.adapter.describe());
  const training = await finetune({
    model: model as SequenceClassifier, tokenizer, train: train as TextExample[], val: val as TextExample[], runDir: o.out,
    epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, maxLength, stride: o.stride, seed, patience: o.patience,
    freeze: o.freezeLayers || o.freezeEmbeddings ? { layers: o.freezeLayers, embeddings: o.freezeEmbeddings } : undefined,
    trainable, onEpoch: o.onEpoch,
  });
  if (training.stoppedEarly) log(`stopped early: no better validation score for ${o.patience} epochs`);
  if (training.bestMetric !== null) log(`best epoch ${training.bestEpoch} (its weights are kept)`);
  // The per-epoch checkpoint only served the epoch loop; the saved model is the best epoch.
  rmSync(join(o.out, 'checkpoints'), { recursive: true, force: true });
  if (o.adapter) o.adapter.save(o.out, model, tokenizer);
  else saveTaskModelDir(o.out, model, tokenizer);
  const results: Record<string, unknown> = {
    task: name, type, trainExamples: train.length, bestEpoch: training.bestEpoch, history: training.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss })),
  };
  const report = test.length ? evaluateSplit(model, tokenizer, test, { maxLength, stride: o.stride }) : null;
  if (report) results.test = report;
  writeJsonAtomic(join(o.out, 'eval_results.json'), results);
  return { type, name, model, tokenizer, training, trainExamples: train.length, test: report, results };
}
