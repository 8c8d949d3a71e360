/**
 * Evaluation metrics for fine-tuned tasks, with scikit-learn / seqeval / SQuAD conventions:
 *
 *   precision_c = TP_c / (TP_c + FP_c)     0 when the class is never predicted (zero_division=0)
 *   recall_c    = TP_c / (TP_c + FN_c)     0 when the class never occurs
 *   F1_c        = 2·P·R / (P + R)          0 when P + R = 0, so a never-predicted class scores 0, not NaN
 *   macro-F1    = mean_c F1_c              over every class in the label set (support 0 included, as
 *                                          sklearn does when `labels` is given)
 *   confusion[t][p] = #(true t, predicted p)
 *
 * All scores are fractions in [0, 1]; the official SQuAD script prints them ×100.
 */
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';

export interface ClassScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** How many examples truly have this label. */
  support: number;
}

export interface ClassificationReport {
  accuracy: number;
  macroF1: number;
  /** Support-weighted mean of the per-class F1 (sklearn's 'weighted'). */
  weightedF1: number;
  perClass: ClassScores[];
  /** Rows: true label, columns: predicted label, in `labels` order. */
  confusion: number[][];
  /** Examples counted (predictions of -1 / out-of-range count as wrong, never as a class). */
  count: number;
}

function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

function harmonic(p: number, r: number): number {
  return p + r === 0 ? 0 : (2 * p * r) / (p + r);
}

/**
 * Report for single-label classification. yTrue/yPred hold label ids (indices into `labels`); a
 * prediction outside [0, labels.length) (e.g. -1 for "no prediction") counts as wrong.
 */
export function classificationReport(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, labels: readonly string[]): ClassificationReport {
  if (yTrue.length !== yPred.length) throw new RangeError(`classificationReport: ${yTrue.length} true labels but ${yPred.length} predictions`);
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const predictedCount = new Array<number>(k).fill(0);
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= k) throw new RangeError(`classificationReport: true label ${t} at index ${i} is not in 0..${k - 1}`);
    if (p === t) correct++;
    if (Number.isInteger(p) && p >= 0 && p < k) {
      confusion[t]![p]!++;
      predictedCount[p]!++;
    }
  }
  const perClass = labels.map((label, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0) + missedOf(yTrue, yPred, c, k);
    const precision = ratio(tp, predictedCount[c]!);
    const recall = ratio(tp, support);
    return { label, precision, recall, f1: harmonic(precision, recall), support };
  });
  const n = yTrue.length;
  return {
    accuracy: ratio(correct, n),
    macroF1: ratio(perClass.reduce((s, c) => s + c.f1, 0), k),
    weightedF1: ratio(perClass.reduce((s, c) => s + c.f1 * c.support, 0), n),
    perClass,
    confusion,
    count: n,
  };
}

/** Examples of class c whose prediction fell outside the label set (absent from the confusion matrix). */
function missedOf(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, c: number, k: number): number {
  let n = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const p = yPred[i]!;
    if (yTrue[i] === c && !(Number.isInteger(p) && p >= 0 && p < k)) n++;
  }
  return n;
}

export interface TokenClassificationReport extends ClassificationReport {
  /** Fraction of labelled tokens (words) tagged correctly; equals `accuracy`. */
  tokenAccuracy: number;
}

/**
 * Per-token (per-word) tagging report: sentences of true and predicted tag ids, flattened. Positions
 * whose true tag is -100 are skipped (HF's ignore index); per-tag P/R/F1 are over tokens, which is
 * what POS tagging needs (seqeval's entity-span F1 is for BIO chunking, not used here).
 */
export function tokenClassificationReport(
  trueTags: ReadonlyArray<ArrayLike<number>>, predTags: ReadonlyArray<ArrayLike<number>>, labels: readonly string[],
): TokenClassificationReport {
  if (trueTags.length !== predTags.length) throw new RangeError(`tokenClassificationReport: ${trueTags.length} true sentences but ${predTags.length} predicted`);
  const yTrue: number[] = [];
  const yPred: number[] = [];
  for (let s = 0; s < trueTags.length; s++) {
    const t = trueTags[s]!;
    const p = predTags[s]!;
    if (t.length !== p.length) throw new RangeError(`tokenClassificationReport: sentence ${s} has ${t.length} true tags but ${p.length} predicted`);
    for (let i = 0; i < t.length; i++) {
      if (t[i] === IGNORE_INDEX) continue;
      yTrue.push(t[i]!);
      yPred.push(p[i]!);
    }
  }
  const report = classificationReport(yTrue, yPred, labels);
  return { ...report, tokenAccuracy: report.accuracy };
}

// ---- SQuAD ------------------------------------------------------------------------------------

// Python's string.punctuation, which the official script strips.
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

/** The official SQuAD normalisation: lower case, drop punctuation, drop a/an/the, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  const lower = s.toLowerCase();
  let noPunct = '';
  for (const ch of lower) if (!PUNCTUATION.has(ch)) noPunct += ch;
  const noArticles = noPunct.replace(/\b(a|an|the)\b/g, ' ');
  return noArticles.split(/\s+/).filter((w) => w.length > 0).join(' ');
}

export function exactMatch(prediction: string, truth: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(truth) ? 1 : 0;
}

/**
 * Token-overlap F1 of the normalised answers:
 *   common = |bag(pred) ∩ bag(truth)|,  P = common/|pred|,  R = common/|truth|,  F1 = 2PR/(P+R).
 * When either side is empty (no-answer), F1 = 1 if both are empty else 0 (the SQuAD 2.0 script).
 */
export function f1Score(prediction: string, truth: string): number {
  const p = normalizeAnswer(prediction).split(' ').filter(Boolean);
  const t = normalizeAnswer(truth).split(' ').filter(Boolean);
  if (p.length === 0 || t.length === 0) return p.length === t.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of t) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of p) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  return harmonic(common / p.length, common / t.length);
}

/** Best score over the reference answers (SQuAD's metric_max_over_ground_truths). */
export function maxOverTruths(metric: (p: string, t: string) => number, prediction: string, truths: readonly string[]): number {
  if (truths.length === 0) return metric(prediction, '');
  return Math.max(...truths.map((t) => metric(prediction, t)));
}

/** Mean exact-match and F1 over questions; `predictions` maps question id → answer text. */
export function squadMetrics(
  predictions: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  references: ReadonlyArray<{ id: string; answers: ReadonlyArray<{ text: string }> }>,
): { exactMatch: number; f1: number; count: number } {
  const get = (id: string) => (predictions instanceof Map ? predictions.get(id) : (predictions as Record<string, string>)[id]);
  let em = 0;
  let f1 = 0;
  for (const ref of references) {
    const pred = get(ref.id) ?? ''; // an unanswered question scores 0, as in the official script
    const truths = ref.answers.map((a) => a.text);
    em += maxOverTruths(exactMatch, pred, truths);
    f1 += maxOverTruths(f1Score, pred, truths);
  }
  const n = references.length;
  return { exactMatch: ratio(em, n), f1: ratio(f1, n), count: n };
}
