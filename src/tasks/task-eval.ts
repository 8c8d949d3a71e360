/**
 * Predictions and metrics of task models (eval mode, no gradients): class ids and probabilities,
 * per-word tags, QA spans over overlapping windows, and the reports finetune() selects epochs by.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import type { TextExample, TokenExample, QAExample } from './data.ts';
import { collate, encodeWords, padTokenId, wordPredictions } from './encode.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, type TaskModel } from '../models/heads.ts';
import { classificationReport, squadMetrics, tokenClassificationReport, type ClassificationReport } from './metrics.ts';
import { collateFeatures, predictAnswers, prepareQAFeatures, type QAFeature } from './qa.ts';

export interface EvalOptions {
  batchSize?: number;
  maxLength?: number;
}

/** Calls `row(i, logits, offset)` with every example's class logits (eval mode, no gradients). */
function forEachClassLogits(model: SequenceClassifier, tokenizer: Tokenizer, examples: ReadonlyArray<{ text: string; textPair?: string }>, o: EvalOptions, row: (i: number, logits: ArrayLike<number>, offset: number) => void): void {
  const bs = o.batchSize ?? 32;
  const was = model.training;
  model.eval();
  try {
    for (let i = 0; i < examples.length; i += bs) {
      const encs = examples.slice(i, i + bs).map((ex) => tokenizer.encode(ex.text, ex.textPair ?? null, { maxLength: o.maxLength ?? 128 }));
      const batch = collate(encs, padTokenId(tokenizer));
      noGrad(() => withScope(() => {
        const logits = model.forward(batch).logits;
        for (let r = 0; r < batch.batch; r++) row(i + r, logits.data, r * model.labels.size);
      }));
    }
  } finally {
    model.train(was);
  }
}

/** Predicted class ids for texts (eval mode, no gradients). */
export function predictClasses(model: SequenceClassifier, tokenizer: Tokenizer, examples: ReadonlyArray<{ text: string; textPair?: string }>, o: EvalOptions = {}): Int32Array {
  const out = new Int32Array(examples.length);
  forEachClassLogits(model, tokenizer, examples, o, (i, logits, off) => { out[i] = argmax(logits, off, model.labels.size); });
  return out;
}

/** Class probabilities softmax(logits), examples × classes row-major. */
export function predictProbabilities(model: SequenceClassifier, tokenizer: Tokenizer, examples: ReadonlyArray<{ text: string; textPair?: string }>, o: EvalOptions = {}): Float64Array {
  const k = model.labels.size;
  const out = new Float64Array(examples.length * k);
  forEachClassLogits(model, tokenizer, examples, o, (i, logits, off) => {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[off + j]!);
    let z = 0;
    for (let j = 0; j < k; j++) z += (out[i * k + j] = Math.exp(logits[off + j]! - max));
    for (let j = 0; j < k; j++) out[i * k + j]! /= z;
  });
  return out;
}

/** Per-word predicted tag ids (-1 for words truncated away). */
export function predictTags(model: TokenClassifier, tokenizer: Tokenizer, sentences: ReadonlyArray<readonly string[]>, o: EvalOptions = {}): Int32Array[] {
  const bs = o.batchSize ?? 32;
  const out: Int32Array[] = [];
  const was = model.training;
  model.eval();
  try {
    for (let i = 0; i < sentences.length; i += bs) {
      const enc = sentences.slice(i, i + bs).map((words) => encodeWords(tokenizer, words, o.maxLength ?? 128));
      const batch = collate(enc.map((e) => e.encoding), padTokenId(tokenizer));
      noGrad(() => withScope(() => {
        const logits = model.forward(batch).logits;
        const k = model.labels.size;
        enc.forEach((e, r) => {
          const preds = Array.from({ length: batch.length }, (_, t) => argmax(logits.data, (r * batch.length + t) * k, k));
          out.push(wordPredictions(e.wordIds, preds, sentences[i + r]!.length));
        });
      }));
    }
  } finally {
    model.train(was);
  }
  return out;
}

function argmax(data: ArrayLike<number>, offset: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (data[offset + j]! > data[offset + best]!) best = j;
  return best;
}

/** Accuracy, macro-F1, per-class scores and confusion matrix on labelled examples. */
export function evaluateTask(model: TaskModel, tokenizer: Tokenizer, examples: ReadonlyArray<TextExample | TokenExample>, o: EvalOptions = {}): ClassificationReport {
  if (model instanceof SequenceClassifier) {
    const ex = examples as TextExample[];
    return classificationReport(model.labels.encode(ex), predictClasses(model, tokenizer, ex, o), model.labels.labels);
  }
  if (model instanceof TokenClassifier) {
    const ex = examples as TokenExample[];
    return tokenClassificationReport(ex.map((e) => model.labels.encodeTags(e)), predictTags(model, tokenizer, ex.map((e) => e.tokens), o), model.labels.labels);
  }
  throw new TypeError('evaluateTask: the model must be a SequenceClassifier or a TokenClassifier (QA: evaluateQA)');
}

export interface QAEvalOptions extends EvalOptions {
  stride?: number;
  maxAnswerLength?: number;
}

export interface QAReport {
  exactMatch: number;
  f1: number;
  count: number;
  predictions: Map<string, string>;
}

/**
 * The QA windows of each question (maxLength tokens, default 384, overlapping by `stride`, default a
 * quarter) and the model's start/end logits on every window, for bestSpans / predictAnswers.
 */
export function qaWindowLogits(model: QuestionAnswering, tokenizer: Tokenizer, examples: readonly QAExample[], o: QAEvalOptions = {}): { features: QAFeature[]; starts: Float64Array[]; ends: Float64Array[] } {
  const maxLength = o.maxLength ?? 384;
  const features = prepareQAFeatures(tokenizer, examples, { maxLength, stride: o.stride ?? defaultStride(maxLength) });
  const starts: Float64Array[] = [];
  const ends: Float64Array[] = [];
  const bs = o.batchSize ?? 32;
  const was = model.training;
  model.eval();
  try {
    for (let i = 0; i < features.length; i += bs) {
      const batch = collateFeatures(tokenizer, features.slice(i, i + bs));
      noGrad(() => withScope(() => {
        const out = model.forward(batch);
        for (let r = 0; r < batch.batch; r++) {
          starts.push(Float64Array.from(out.startLogits.data.subarray(r * batch.length, (r + 1) * batch.length)));
          ends.push(Float64Array.from(out.endLogits.data.subarray(r * batch.length, (r + 1) * batch.length)));
        }
      }));
    }
  } finally {
    model.train(was);
  }
  return { features, starts, ends };
}

/** SQuAD exact match and F1 of the best spans over all windows of each question. */
export function evaluateQA(model: QuestionAnswering, tokenizer: Tokenizer, examples: readonly QAExample[], o: QAEvalOptions = {}): QAReport {
  const { features, starts, ends } = qaWindowLogits(model, tokenizer, examples, o);
  // Questions without an answer make it SQuAD 2.0 data, where "no answer" is a prediction too.
  const nullAnswer = examples.some((ex) => ex.answers.length === 0);
  const predictions = predictAnswers(examples, features, starts, ends, { maxAnswerLength: o.maxAnswerLength, nullAnswer });
  return { ...squadMetrics(predictions, examples), predictions };
}

/** A quarter of the window (run_qa.py: 128 of 384), leaving room for the question. */
export function defaultStride(maxLength: number): number {
  return Math.max(1, Math.floor(maxLength / 4));
}
