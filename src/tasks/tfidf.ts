/**
 * The bag-of-words baseline of the label-efficiency experiment: scikit-learn's
 * TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression(C) with C chosen on
 * validation, as ../shared/bench/ref_tfidf.py runs it. The vectorizer follows scikit-learn's defaults:
 *
 *   analyse     lowercase, tokens = token_pattern (?u)\b\w\w+\b — maximal runs of ≥ 2 Unicode word
 *               characters (letters, numbers, underscore); word n-grams joined by one space, the
 *               unigrams first, then the bigrams
 *   vocabulary  every n-gram of the training texts (min_df = 1, no max_df cut), sorted
 *   tf          1 + ln(count) (sublinear), 0 for absent terms
 *   idf         ln((1 + n) / (1 + df)) + 1 over the n training texts (smooth_idf)
 *   row         tf·idf, divided by its Euclidean norm (an all-zero row stays zero)
 *
 * JavaScript's \b knows ASCII only, so the token pattern is written as runs of [\p{L}\p{N}_]{2,}, which
 * matches the same tokens: greedy \w\w+ between two \b is exactly a maximal run of length ≥ 2.
 */
import type { TextExample } from './data.ts';
import { classificationReport } from './metrics.ts';
import { C_GRID, accuracyOf, fitLogistic, selectC, type CsrMatrix, type LogisticModel } from './logistic.ts';

export interface TfidfOptions {
  /** Smallest and largest n of the word n-grams. Default [1, 2]. */
  ngramRange?: readonly [number, number];
  /** 1 + ln(tf) instead of tf. Default true (as ref_tfidf.py; scikit-learn's own default is false). */
  sublinearTf?: boolean;
  /** Default true. */
  lowercase?: boolean;
}

const TOKEN = /[\p{L}\p{N}_]{2,}/gu;

/** The n-grams of one text, in scikit-learn's order (all of n = lo, then n = lo + 1, …). */
export function analyze(text: string, options: TfidfOptions = {}): string[] {
  const [lo, hi] = options.ngramRange ?? [1, 2];
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && hi >= lo)) throw new RangeError(`tfidf: bad ngramRange [${lo}, ${hi}]`);
  const tokens = ((options.lowercase ?? true) ? text.toLowerCase() : text).match(TOKEN) ?? [];
  const out: string[] = [];
  for (let n = lo; n <= hi; n++) for (let i = 0; i + n <= tokens.length; i++) out.push(n === 1 ? tokens[i]! : tokens.slice(i, i + n).join(' '));
  return out;
}

function counts(text: string, options: TfidfOptions): Map<string, number> {
  const m = new Map<string, number>();
  for (const g of analyze(text, options)) m.set(g, (m.get(g) ?? 0) + 1);
  return m;
}

export class TfidfVectorizer {
  readonly options: TfidfOptions;
  /** n-gram → column, columns in sorted n-gram order. */
  vocabulary = new Map<string, number>();
  /** Per column. */
  idf = new Float64Array(0);

  constructor(options: TfidfOptions = {}) {
    this.options = options;
  }

  fit(texts: readonly string[]): this {
    if (texts.length === 0) throw new RangeError('TfidfVectorizer.fit: no texts');
    const df = new Map<string, number>();
    for (const t of texts) for (const g of counts(t, this.options).keys()) df.set(g, (df.get(g) ?? 0) + 1);
    if (df.size === 0) throw new RangeError('TfidfVectorizer.fit: the texts contain no words of two or more letters or digits (empty vocabulary)');
    // Code-point order like Python's sorted(); only the column order depends on it, never a score.
    const terms = [...df.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.vocabulary = new Map(terms.map((g, i) => [g, i]));
    const n = texts.length;
    this.idf = Float64Array.from(terms, (g) => Math.log((1 + n) / (1 + df.get(g)!)) + 1);
    return this;
  }

  /** L2-normalised tf-idf rows over the fitted vocabulary (n-grams not in it are dropped). */
  transform(texts: readonly string[]): CsrMatrix {
    if (this.idf.length === 0) throw new RangeError('TfidfVectorizer.transform: call fit first');
    const sublinear = this.options.sublinearTf ?? true;
    const indptr = new Int32Array(texts.length + 1);
    const indices: number[] = [];
    const values: number[] = [];
    texts.forEach((t, r) => {
      const row: Array<[number, number]> = [];
      for (const [g, c] of counts(t, this.options)) {
        const j = this.vocabulary.get(g);
        if (j !== undefined) row.push([j, (sublinear ? 1 + Math.log(c) : c) * this.idf[j]!]);
      }
      row.sort((a, b) => a[0] - b[0]);
      const norm = Math.sqrt(row.reduce((s, [, v]) => s + v * v, 0));
      for (const [j, v] of row) {
        indices.push(j);
        values.push(norm > 0 ? v / norm : 0);
      }
      indptr[r + 1] = indices.length;
    });
    return { rows: texts.length, cols: this.idf.length, indptr, indices: Int32Array.from(indices), values: Float64Array.from(values) };
  }

  fitTransform(texts: readonly string[]): CsrMatrix {
    return this.fit(texts).transform(texts);
  }
}

/** The text a classifier sees: a pair is joined by a newline (so bigrams span the join, as within one text). */
export function exampleText(x: TextExample): string {
  return x.textPair === undefined ? x.text : `${x.text}\n${x.textPair}`;
}

export interface TfidfBaselineOptions extends TfidfOptions {
  /** C values tried on validation, in order; the first best wins. Default [0.1, 1, 10, 100]. */
  grid?: readonly number[];
  /** C when there is no validation set (ref_tfidf.py's 10). */
  defaultC?: number;
  maxIter?: number;
  tol?: number;
}

export interface TfidfBaselineResult {
  accuracy: number;
  /** Macro-F1 over the labels of test and predictions (scikit-learn's f1_score(average='macro')). */
  macroF1: number;
  C: number;
  /** null without a validation set. */
  valAccuracy: number | null;
  /** Validation accuracy per C tried. */
  scores: Array<{ C: number; accuracy: number }>;
  /** Predicted label per test example. */
  predictions: string[];
  vocabularySize: number;
}

/**
 * TF-IDF + logistic regression trained on `train` (vocabulary and idf from its texts only), C chosen on
 * `val` (every C fitted on train, scored on val), scored once on `test`. Classes are the labels present
 * in train, as scikit-learn's classes_.
 */
export function tfidfBaseline(train: readonly TextExample[], val: readonly TextExample[], test: readonly TextExample[], options: TfidfBaselineOptions = {}): TfidfBaselineResult {
  const labelOf = (x: TextExample, split: string, i: number): string => {
    if (x.label === undefined) throw new RangeError(`tfidfBaseline: ${split} example ${i} has no label`);
    return x.label;
  };
  const trainLabels = train.map((x, i) => labelOf(x, 'train', i));
  const classes = [...new Set(trainLabels)].sort();
  if (classes.length < 2) throw new RangeError(`tfidfBaseline: the training examples have ${classes.length} class${classes.length === 1 ? ` (${JSON.stringify(classes[0])})` : 'es'}; logistic regression needs at least 2`);
  if (test.length === 0) throw new RangeError('tfidfBaseline: no test examples');
  const id = new Map(classes.map((c, i) => [c, i]));
  // Labels unseen in train get id −1: never predicted, always wrong (as scikit-learn scores them).
  const ids = (xs: readonly TextExample[], split: string) => Int32Array.from(xs, (x, i) => id.get(labelOf(x, split, i)) ?? -1);
  const vec = new TfidfVectorizer(options);
  const Xtr = vec.fitTransform(train.map(exampleText));
  const ytr = ids(train, 'train');
  const fitOptions = { maxIter: options.maxIter, tol: options.tol };
  let C = options.defaultC ?? 10;
  let valAccuracy: number | null = null;
  let scores: TfidfBaselineResult['scores'] = [];
  let model: LogisticModel;
  if (val.length > 0) {
    const sel = selectC(Xtr, ytr, vec.transform(val.map(exampleText)), ids(val, 'val'), classes.length, { ...fitOptions, grid: options.grid ?? C_GRID });
    ({ C, valAccuracy, scores, model } = sel);
  } else {
    model = fitLogistic(Xtr, ytr, classes.length, { ...fitOptions, C });
  }
  const pred = model.predict(vec.transform(test.map(exampleText)));
  const yte = ids(test, 'test');
  const predictions = Array.from(pred, (k) => classes[k]!);
  // f1_score's labels: the union of true and predicted labels.
  const testLabels = test.map((x, i) => labelOf(x, 'test', i));
  const union = [...new Set([...testLabels, ...predictions])].sort();
  const u = new Map(union.map((l, i) => [l, i]));
  const report = classificationReport(testLabels.map((l) => u.get(l)!), predictions.map((l) => u.get(l)!), union);
  return { accuracy: accuracyOf(pred, yte), macroF1: report.macroF1, C, valAccuracy, scores, predictions, vocabularySize: vec.vocabulary.size };
}
