/**
 * The few-label methods the label-efficiency experiment compares on a pre-trained body (each is one
 * function from a labelled sample to predictions on the selection and test sets):
 *
 *   lpft    a new head on the frozen body, then everything (LP-FT; experiment.ts's `lpft`)
 *   probe   frozen-feature logistic regression (probe.ts): the view (layers × pooling) and C are
 *           chosen on the early-stopping validation examples
 *   prompt  prompt-based fine-tuning through the LM head (prompt.ts): the verbalizer's output vectors
 *           as the head, the texts inside the template, the experiment's fine-tuning recipe
 *   anchor  logistic regression whose main features are the texts' similarity to the label words in
 *           the token-embedding space (anchor.ts), corrected by the embedding directions
 *
 * and, without any label, zero-shot prompting with and without contextual calibration. Which method
 * the "pre-trained" curve reports at a budget is decided by the mean Brier score on the selection set
 * (the validation examples not used for early stopping; experiment-summary.ts chooseMethod), never by
 * test scores.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import type { TextExample } from './data.ts';
import type { LabelMap } from '../models/labels.ts';
import { classificationReport } from './metrics.ts';
import { denseMatrix, selectC } from './logistic.ts';
import { PROBE_VIEWS, columnStats, featureMatrix, standardize, type LayerFeatures, type ProbeView } from './probe.ts';
import { applyTemplate, argmaxRows, calibrationBias, promptClassifier, promptLogProbs, type PromptSpec } from './prompt.ts';
import { GPT2Model } from '../models/gpt.ts';
import type { Backbone } from '../models/heads.ts';

export type FewLabelMethod = 'lpft' | 'probe' | 'prompt' | 'anchor';
export const FEW_LABEL_METHODS: readonly FewLabelMethod[] = ['lpft', 'probe', 'prompt', 'anchor'];

export interface MethodScore {
  /** Accuracy on the selection set (validation examples not used for early stopping). */
  selection: number;
  /** Brier score on the selection set (brierScore), when the method has probabilities. */
  selectionBrier?: number;
  accuracy: number;
  macroF1: number;
  detail?: string;
  /** Class probabilities on the selection and test examples (rows × classes), for the ensemble. */
  probabilities?: { selection: Float64Array; test: Float64Array };
}

/** Row-wise argmax of rows × k scores (the first of equal maxima). */
export function argmaxProbabilities(p: Float64Array, k: number): Int32Array {
  const out = new Int32Array(p.length / k);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (p[r * k + c]! > p[r * k + best]!) best = c;
    out[r] = best;
  }
  return out;
}

/**
 * The ensemble of the few-label methods that ran on one sample: the mean of their class
 * probabilities (soft voting). It is one more candidate for the selection set, so it is reported
 * only where it beats every single method there.
 */
export function ensembleScore(labels: LabelMap, selection: readonly TextExample[], test: readonly TextExample[], members: readonly MethodScore[]): MethodScore | null {
  const probs = members.flatMap((m) => (m.probabilities ? [m.probabilities] : []));
  if (probs.length < 2) return null;
  const mean = (which: 'selection' | 'test') => {
    const out = new Float64Array(probs[0]![which].length);
    for (const p of probs) for (let i = 0; i < out.length; i++) out[i]! += p[which][i]! / probs.length;
    return out;
  };
  const [sel, te] = [mean('selection'), mean('test')];
  return methodScore(labels, selection, test, sel, te, `mean of ${probs.length} methods' probabilities`);
}

/** Accuracy and macro-F1 of predicted class ids against examples' labels. */
export function scorePredictions(labels: LabelMap, examples: readonly TextExample[], pred: Int32Array): { accuracy: number; macroF1: number } {
  const r = classificationReport(labels.encode(examples), pred, labels.labels);
  return { accuracy: r.accuracy, macroF1: r.macroF1 };
}

export const PROBE_C_GRID: readonly number[] = [0.001, 0.01, 0.1, 1, 10];

/**
 * Frozen features of every text of the task, computed once per model: `index` maps an example object
 * to its row, `pool` are the rows whose statistics standardise the features (the unlabelled train texts).
 */
export interface FeatureBank {
  features: LayerFeatures;
  index: Map<TextExample, number>;
  poolRows: Int32Array;
}

export function linearProbe(bank: FeatureBank, labels: LabelMap, train: readonly TextExample[], earlyStopping: readonly TextExample[], selection: readonly TextExample[], test: readonly TextExample[]): MethodScore {
  const rows = (xs: readonly TextExample[]) => Int32Array.from(xs, (x) => {
    const r = bank.index.get(x);
    if (r === undefined) throw new RangeError('linearProbe: an example is not in the feature bank');
    return r;
  });
  const [tr, es, sel, te] = [rows(train), rows(earlyStopping), rows(selection), rows(test)];
  const ytr = labels.encode(train);
  const yes = labels.encode(earlyStopping);
  let best: { view: ProbeView; C: number; acc: number; proba: (r: Int32Array) => Float64Array } | null = null;
  for (const view of PROBE_VIEWS) {
    const pool = featureMatrix(bank.features, bank.poolRows, view);
    const stats = columnStats(pool.x, pool.dim);
    const matrix = (r: Int32Array) => {
      const f = featureMatrix(bank.features, r, view);
      return denseMatrix(standardize(f.x, f.dim, stats), r.length, f.dim);
    };
    const s = selectC(matrix(tr), ytr, matrix(es), yes, labels.size, { grid: PROBE_C_GRID, maxIter: 300 });
    if (!best || s.valAccuracy > best.acc) best = { view, C: s.C, acc: s.valAccuracy, proba: (r) => s.model.predictProba(matrix(r)) };
  }
  const b = best!;
  return methodScore(labels, selection, test, b.proba(sel), b.proba(te), `${b.view.layers}/${b.view.pooling} C=${b.C}`);
}

/**
 * Brier score of class probabilities p (rows × k) against labels y: mean over rows of Σ_c (p_c − [y = c])².
 * The experiment picks methods by it on the selection set: unlike accuracy it uses every example's
 * margin, so on a few hundred examples it ranks methods with less noise, and unlike log-loss one
 * confidently wrong example costs at most 2. It also charges overconfidence, which at a few labels
 * comes with overfitting (BENCHMARKS.md, "Label efficiency", session 9).
 */
export function brierScore(p: Float64Array, y: Int32Array, k: number): number {
  let sum = 0;
  for (let r = 0; r < y.length; r++) {
    for (let c = 0; c < k; c++) sum += (p[r * k + c]! - (c === y[r] ? 1 : 0)) ** 2;
  }
  return sum / y.length;
}

/** A method's scores from its class probabilities on the selection and test examples. */
export function methodScore(labels: LabelMap, selection: readonly TextExample[], test: readonly TextExample[], pSel: Float64Array, pTest: Float64Array, detail?: string): MethodScore {
  const k = labels.size;
  return {
    selection: scorePredictions(labels, selection, argmaxProbabilities(pSel, k)).accuracy,
    selectionBrier: brierScore(pSel, labels.encode(selection), k),
    ...scorePredictions(labels, test, argmaxProbabilities(pTest, k)),
    ...(detail !== undefined ? { detail } : {}),
    probabilities: { selection: pSel, test: pTest },
  };
}

export interface ZeroShotResult {
  uncalibrated: { selection: number; accuracy: number; macroF1: number };
  calibrated: { selection: number; accuracy: number; macroF1: number };
  bias: number[];
}

/** Zero-shot prompting of a GPT body, with and without contextual calibration (no labels used). */
export function zeroShot(body: Backbone, tokenizer: Tokenizer, labels: LabelMap, spec: PromptSpec, selection: readonly TextExample[], test: readonly TextExample[], maxLength: number): ZeroShotResult {
  if (!(body instanceof GPT2Model)) throw new RangeError('zero-shot prompting needs a GPT (verbalizer likelihood); BERT cloze prompting is not implemented yet');
  const model = promptClassifier(body, tokenizer, labels, spec, 0);
  const bias = calibrationBias(model, tokenizer, spec.template, maxLength);
  const k = labels.size;
  const run = (xs: readonly TextExample[]) => promptLogProbs(model, tokenizer, applyTemplate(tokenizer, xs, spec.template, maxLength), maxLength);
  const [lpSel, lpTest] = [run(selection), run(test)];
  const score = (b?: Float64Array) => ({
    selection: scorePredictions(labels, selection, argmaxRows(lpSel, k, b)).accuracy,
    ...scorePredictions(labels, test, argmaxRows(lpTest, k, b)),
  });
  return { uncalibrated: score(), calibrated: score(bias), bias: [...bias] };
}
