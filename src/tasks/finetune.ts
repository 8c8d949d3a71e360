/**
 * Fine-tuning a sequence or token classifier with the shared trainer (src/train/trainer.ts): AdamW
 * (HF defaults β = (0.9, 0.999), weight decay 0.01 on ≥2-D weights), linear warmup then linear decay
 * to 0, gradient clipping at 1, one trainer call for all epochs; after each epoch the validation
 * metric is computed (from the batch source, between two steps); training stops when it has not
 * improved for `patience` epochs and the best epoch's weights, kept in memory, are restored.
 * Optional freezing of the embeddings and the first N layers (their parameters stop requiring
 * gradients, so AdamW leaves them untouched). An aborted `stop` signal (Ctrl-C in `primer finetune`)
 * ends training before the next step, with the best (or last) finished epoch's weights restored.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import type { Module } from '../nn/module.ts';
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';
import { train, type BatchSource, type TrainResult } from '../train/trainer.ts';
import { shuffled } from './labels.ts';
import { collate, encodeWords, alignLabels, padTokenId, type TokenBatch } from './encode.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, backbonePrefix, contextLength, type TaskModel } from '../models/heads.ts';
import type { ClassificationReport } from './metrics.ts';
import type { QAExample, TextExample, TokenExample } from './data.ts';
import { prepareQAFeatures } from './qa.ts';
import { mix32 } from '../util/random.ts';
import { defaultStride, evaluateQA, evaluateTask, type QAReport } from './task-eval.ts';
import { checkOptionValues } from '../train/option-checks.ts';

/** One pre-tokenized example: ids and token types, labels (one per example, per token, or a QA [start, end]). */
interface Encoded {
  ids: number[];
  typeIds: number[];
  label: number | Int32Array | [number, number];
}

type Batch = TokenBatch & { labels: Int32Array; startPositions: Int32Array; endPositions: Int32Array; tokens: number };

/** Epoch-wise shuffled mini-batches (a new seeded order every epoch); its position survives resume. */
class EpochBatches implements BatchSource<Batch> {
  private order: number[] = [];
  constructor(private readonly items: readonly Encoded[], private readonly batchSize: number, private readonly seed: number, private readonly padId: number, private epoch = 0, private pos = 0) {
    this.order = this.orderOf(epoch);
  }
  private orderOf(epoch: number): number[] {
    return shuffled(this.items.map((_, i) => i), mix32(this.seed ^ mix32(epoch + 1)));
  }
  get stepsPerEpoch(): number {
    return Math.ceil(this.items.length / this.batchSize);
  }
  /**
   * Called when a batch of the next epoch is asked for, i.e. after the last optimizer step of an
   * epoch (the trainer fetches a batch only after the previous update): validation happens here, so
   * one trainer call spans all epochs without a checkpoint per epoch. Throwing ends training.
   */
  onEpochEnd: ((epoch: number) => void) | null = null;
  /** Checked before every batch: the trainer asks for one per step, so training stops between steps. */
  stop: AbortSignal | undefined;
  next(): Batch {
    if (this.pos >= this.order.length) {
      this.onEpochEnd?.(this.epoch + 1);
      this.epoch++;
      this.pos = 0;
      this.order = this.orderOf(this.epoch);
    }
    // After the epoch-end hook: an epoch that has just finished is validated and counted first.
    if (this.stop?.aborted) throw new Interrupted();
    const rows = this.order.slice(this.pos, this.pos + this.batchSize).map((i) => this.items[i]!);
    this.pos += rows.length;
    return makeBatch(rows, this.padId);
  }
  state(): { epoch: number; pos: number } {
    return { epoch: this.epoch, pos: this.pos };
  }
  loadState(s: unknown): void {
    const st = s as { epoch: number; pos: number };
    this.epoch = st.epoch;
    this.pos = st.pos;
    this.order = this.orderOf(st.epoch);
  }
}

/** End the single trainer call of finetune() from inside the batch source (early stopping, `stop`). */
class EarlyStop extends Error {}
class Interrupted extends Error {}

function makeBatch(rows: readonly Encoded[], padId: number): Batch {
  const b = collate(rows, padId);
  let labels = new Int32Array(0);
  const startPositions = Int32Array.from(rows, (r) => (Array.isArray(r.label) ? r.label[0] : 0));
  const endPositions = Int32Array.from(rows, (r) => (Array.isArray(r.label) ? r.label[1] : 0));
  // QA batches keep `labels` empty: the positions are the labels.
  if (typeof rows[0]!.label === 'number') {
    labels = Int32Array.from(rows, (r) => r.label as number);
  } else if (!Array.isArray(rows[0]!.label)) {
    labels = new Int32Array(b.batch * b.length).fill(IGNORE_INDEX);
    rows.forEach((r, i) => labels.set(r.label as Int32Array, i * b.length));
  }
  return { ...b, labels, startPositions, endPositions, tokens: b.attentionMask.reduce((s, m) => s + m, 0) };
}

function encodeAll(model: TaskModel, tokenizer: Tokenizer, examples: ReadonlyArray<TextExample | TokenExample | QAExample>, maxLength: number, stride: number): Encoded[] {
  if (model instanceof QuestionAnswering) {
    return prepareQAFeatures(tokenizer, examples as QAExample[], { maxLength, stride }).map((f) => ({ ids: f.ids, typeIds: f.typeIds, label: [f.startPosition, f.endPosition] }));
  }
  if (model instanceof SequenceClassifier) {
    return (examples as TextExample[]).map((ex) => {
      const e = tokenizer.encode(ex.text, ex.textPair ?? null, { maxLength });
      return { ids: e.ids, typeIds: e.typeIds, label: ex.label === undefined ? IGNORE_INDEX : model.labels.id(ex.label, ex.where) };
    });
  }
  if (model instanceof TokenClassifier) {
    return (examples as TokenExample[]).map((ex) => {
      const { encoding, wordIds } = encodeWords(tokenizer, ex.tokens, maxLength);
      return { ids: encoding.ids, typeIds: encoding.typeIds, label: alignLabels(wordIds, model.labels.encodeTags(ex)) };
    });
  }
  throw new TypeError('finetune: the model must be a SequenceClassifier, TokenClassifier or QuestionAnswering');
}

export interface FreezeOptions {
  embeddings?: boolean;
  /** Freeze the first N transformer layers. */
  layers?: number;
}

/** The body's embedding tables and numbered layers (names after the body's prefix), per family. */
const BODY_PARTS = {
  gpt2: { embed: /^(wte|wpe)\./, layer: /^h\.(\d+)\./ },
  bert: { embed: /^embeddings\./, layer: /^encoder\.layer\.(\d+)\./ },
  llama: { embed: /^embed_tokens\./, layer: /^layers\.(\d+)\./ },
} as const;

/** Stops gradients into the embeddings and/or the first N layers of the body. */
export function freezeBackbone(model: TaskModel, freeze: FreezeOptions): number {
  const prefix = `${backbonePrefix(model.kind)}.`;
  const { embed, layer } = BODY_PARTS[model.kind];
  let frozen = 0;
  for (const [name, p] of model.namedParameters()) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    const m = layer.exec(rest);
    if ((freeze.embeddings && embed.test(rest)) || (m && Number(m[1]) < (freeze.layers ?? 0))) {
      p.requiresGrad = false;
      frozen += p.size;
    }
  }
  return frozen;
}

export { predictClasses, predictProbabilities, predictTags, evaluateTask, qaWindowLogits, evaluateQA, type EvalOptions, type QAEvalOptions, type QAReport } from './task-eval.ts';

type Examples = ReadonlyArray<TextExample> | ReadonlyArray<TokenExample> | ReadonlyArray<QAExample>;

export interface FinetuneOptions {
  model: SequenceClassifier | TokenClassifier | QuestionAnswering;
  tokenizer: Tokenizer;
  train: Examples;
  val?: Examples;
  runDir: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Fraction of the steps spent warming up (default 0.1). */
  warmupRatio?: number;
  weightDecay?: number;
  maxLength?: number;
  /** QA: tokens shared by consecutive context windows (default maxLength / 4). */
  stride?: number;
  seed?: number;
  /** Stop after this many epochs without a better validation metric (default: never). */
  patience?: number;
  /** Which validation metric picks the best epoch (default 'accuracy', QA 'f1'). */
  metric?: 'accuracy' | 'macroF1' | 'exactMatch' | 'f1';
  freeze?: FreezeOptions;
  /** Train (and keep the best epoch of) this module's parameters instead of the model's: e.g. a LoraModel (adapters + head, body frozen). */
  trainable?: Module;
  onEpoch?: (r: EpochRecord) => void;
  /** Once aborted, training ends before the next step (see FinetuneResult.interrupted). */
  stop?: AbortSignal;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  val: ClassificationReport | QAReport | null;
}

export interface FinetuneResult {
  history: EpochRecord[];
  bestEpoch: number;
  bestMetric: number | null;
  stoppedEarly: boolean;
  /** The trainer's final checkpoint (null when stopped early: nothing is written then). */
  lastCheckpoint: string | null;
  /** `stop` ended training: the model holds the best (no validation: last) finished epoch, or partly trained weights when bestEpoch is 0. */
  interrupted: boolean;
}

/** The bounds of the settings finetune and finetuneTask share (as `primer finetune` parses them). */
export const FINETUNE_SETTING_SPECS = {
  epochs: { int: 1 }, batchSize: { int: 1 }, lr: { min: 0 }, warmupRatio: { min: 0 }, weightDecay: { min: 0 }, maxLength: { int: 1 },
  stride: { int: 1 }, seed: { int: 0 }, patience: { int: 1 },
} as const;

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  checkOptionValues('finetune', o as unknown as Record<string, unknown>, {
    ...FINETUNE_SETTING_SPECS, metric: { oneOf: ['accuracy', 'macroF1', 'exactMatch', 'f1'] }, runDir: { type: 'string' },
  });
  if (o.freeze?.layers !== undefined) checkOptionValues('finetune', o.freeze as Record<string, unknown>, { layers: { int: 0 } });
  const body = o.model.backbone;
  const maxLength = o.maxLength ?? Math.min(o.model instanceof QuestionAnswering ? 384 : 128, contextLength(body));
  const stride = o.stride ?? defaultStride(maxLength);
  const items = encodeAll(o.model, o.tokenizer, o.train, maxLength, stride);
  if (items.length === 0) throw new RangeError('finetune: no training examples');
  if (o.freeze) freezeBackbone(o.model, o.freeze);
  const seed = o.seed ?? 0;
  const data = new EpochBatches(items, o.batchSize ?? 16, seed, padTokenId(o.tokenizer));
  const epochs = o.epochs ?? 3;
  const steps = epochs * data.stepsPerEpoch;
  const qa = o.model instanceof QuestionAnswering;
  const metric = o.metric ?? (qa ? 'f1' : 'accuracy');
  const model = o.model;
  // Only the parameters that train can change: the best epoch's copy leaves frozen ones (a LoRA base) out.
  const tuned = (o.trainable ?? model).parameters().filter((p) => p.requiresGrad);
  const lossFn = (b: Batch) => (model instanceof QuestionAnswering ? model.forward(b, b.startPositions, b.endPositions) : model.forward(b, b.labels)).loss!;
  const validate = (): ClassificationReport | QAReport | null => {
    if (!o.val?.length) return null;
    return model instanceof QuestionAnswering
      ? evaluateQA(model, o.tokenizer, o.val as QAExample[], { maxLength, stride })
      : evaluateTask(model, o.tokenizer, o.val as ReadonlyArray<TextExample | TokenExample>, { maxLength });
  };
  const history: EpochRecord[] = [];
  let best: { epoch: number; value: number; weights: Float32Array[] | null } = { epoch: 0, value: -Infinity, weights: null };
  // Without validation there is no best epoch; an interrupted run then keeps the last finished one.
  let lastFinished: Float32Array[] | null = null;
  let stoppedEarly = false;
  let epochLoss = 0;
  let epochBatches = 0;
  const countedLossFn = (b: Batch) => {
    const loss = lossFn(b);
    epochLoss += loss.item();
    epochBatches++;
    return loss;
  };
  // The best weights are copied in memory: no checkpoint per epoch (only the trainer's final one).
  const endEpoch = (epoch: number): void => {
    const val = validate();
    const rec = { epoch, trainLoss: epochLoss / Math.max(1, epochBatches), val };
    epochLoss = 0;
    epochBatches = 0;
    history.push(rec);
    o.onEpoch?.(rec);
    if (!val) {
      if (o.stop) lastFinished = tuned.map((p) => Float32Array.from(p.data));
      return;
    }
    const value = (val as unknown as Record<string, number>)[metric];
    if (typeof value !== 'number') throw new RangeError(`finetune: metric "${metric}" does not apply to this task`);
    if (value > best.value) {
      best = { epoch, value, weights: tuned.map((p) => Float32Array.from(p.data)) };
    } else if (o.patience !== undefined && epoch - best.epoch >= o.patience) {
      stoppedEarly = true;
      throw new EarlyStop();
    }
  };
  data.onEpochEnd = endEpoch;
  data.stop = o.stop;
  let last = null as TrainResult | null;
  let interrupted = false;
  try {
    last = await train({
      model: o.trainable ?? model, lossFn: countedLossFn, data, runDir: o.runDir, steps,
      lr: o.lr ?? 5e-5, minLr: 0, warmupSteps: Math.round((o.warmupRatio ?? 0.1) * steps), decay: 'linear',
      weightDecay: o.weightDecay ?? 0.01, betas: [0.9, 0.999], eps: 1e-8, gradClip: 1,
      rngs: { dropout: model.rng }, keepCheckpoints: 1,
      run: { task: 'finetune', epochs, seed }, progress: false, handleSignals: false,
    });
    endEpoch(epochs);
  } catch (e) {
    if (e instanceof Interrupted) interrupted = true;
    else if (!(e instanceof EarlyStop)) throw e;
  }
  const keep = best.weights ?? (interrupted ? lastFinished : null);
  if (keep) tuned.forEach((p, i) => p.data.set(keep[i]!));
  return { history, bestEpoch: best.weights ? best.epoch : history.length, bestMetric: best.weights ? best.value : null, stoppedEarly, lastCheckpoint: last?.lastCheckpoint ?? null, interrupted };
}
