/**
 * Label-word anchors in the pre-trained token-embedding space: a few-label method (and a zero-shot
 * classifier) that uses what pre-training put into the input embeddings and the verbalizer's words.
 *
 *   û_v   = (e_v − ē) / ‖e_v − ē‖                 each token's centred, unit embedding row
 *   ū(x)  = mean of û over the tokens of text x     (specials excluded)
 *   a_k   = mean of û over the first tokens of class k's label words (" great", " good")
 *   z_k(x) = ū(x)·a_k, standardised over the unlabelled pool (the task's train texts): the calibration
 *
 * Zero-shot: argmax_k z_k. Few labels: logistic regression on [α·z, β·standardised ū]: the anchor
 * scores are nearly free (α ≫ β, so the L2 penalty barely holds them back) and the embedding directions
 * correct them where the labels disagree; β (including 0, anchors only) and C are chosen on the
 * early-stopping validation examples. This is dataless classification with label-name embeddings
 * (Chang et al. 2008; Song & Roth 2014) as the prior of a linear model.
 *
 * It needs embeddings whose geometry reflects co-occurrence: `pretrain --embedding-init ppmi` (see
 * src/train/distributional.ts) starts them from the corpus's counts; a randomly initialised model
 * trained for minutes does not have it (its anchors score at chance).
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import type { TextExample } from './data.ts';
import type { LabelMap } from '../models/labels.ts';
import { GPT2Model } from '../models/gpt.ts';
import { LlamaModel } from '../models/llama.ts';
import type { Backbone } from '../models/heads.ts';
import { C_GRID, denseMatrix, fitLogistic, selectC, type CsrMatrix } from './logistic.ts';
import { TfidfVectorizer, exampleText } from './tfidf.ts';
import { methodScore, scorePredictions, type MethodScore } from './fewlabel.ts';
import { logSoftmaxInto } from './prompt.ts';
import { columnStats, standardize } from './probe.ts';

export interface AnchorBank {
  /** N × dim mean unit embeddings ū, standardised over the pool. */
  embedding: Float32Array;
  /** N × K anchor scores z, standardised over the pool. */
  anchors: Float32Array;
  dim: number;
  classes: number;
  index: Map<TextExample, number>;
}

/** The input (token) embedding table of a backbone: [vocab, dim]. */
export function tokenEmbeddings(body: Backbone): { data: Float32Array; vocab: number; dim: number } {
  const w = body instanceof GPT2Model ? body.wte.weight : body instanceof LlamaModel ? body.embed_tokens.weight : body.embeddings.word_embeddings.weight;
  return { data: w.data as Float32Array, vocab: w.shape[0]!, dim: w.shape[1]! };
}

function unitRows(e: { data: Float32Array; vocab: number; dim: number }): Float32Array {
  const { data, vocab, dim } = e;
  const mean = new Float64Array(dim);
  for (let v = 0; v < vocab; v++) for (let j = 0; j < dim; j++) mean[j]! += data[v * dim + j]! / vocab;
  const out = new Float32Array(vocab * dim);
  for (let v = 0; v < vocab; v++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) { const d = data[v * dim + j]! - mean[j]!; out[v * dim + j] = d; norm += d * d; }
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < dim; j++) out[v * dim + j]! /= norm;
  }
  return out;
}

/**
 * The tokens a label word is written as: " great", "great", " Great", "Great" — those the vocabulary
 * holds as one token (a byte-level BPE keeps them apart; a sentence starts capitalised). When none is
 * one token, the first token of " great".
 */
export function surfaceTokens(tokenizer: Tokenizer, word: string): number[] {
  const cap = word.charAt(0).toUpperCase() + word.slice(1);
  const forms = [...new Set([` ${word}`, word, ` ${cap}`, cap])];
  const single = forms.map((f) => tokenizer.encode(f, null, { addSpecialTokens: false }).ids).filter((ids) => ids.length === 1).map((ids) => ids[0]!);
  if (single.length) return [...new Set(single)];
  const first = tokenizer.encode(` ${word}`, null, { addSpecialTokens: false }).ids[0];
  return first === undefined ? [] : [first];
}

/** Anchor features of every example in `examples`; the first `poolSize` (unlabelled train texts) standardise them. */
export function anchorBank(body: Backbone, tokenizer: Tokenizer, labels: LabelMap, verbalizer: Record<string, string[]>, examples: readonly TextExample[], poolSize: number, maxLength: number): AnchorBank {
  const emb = tokenEmbeddings(body);
  const unit = unitRows(emb);
  const { dim } = emb;
  const k = labels.size;
  const anchor = new Float64Array(k * dim);
  labels.labels.forEach((label, c) => {
    const ids = (verbalizer[label] ?? []).flatMap((w) => surfaceTokens(tokenizer, w));
    for (const id of ids) for (let j = 0; j < dim; j++) anchor[c * dim + j]! += unit[id * dim + j]! / ids.length;
  });
  const n = examples.length;
  const embedding = new Float32Array(n * dim);
  const anchors = new Float32Array(n * k);
  examples.forEach((x, r) => {
    const enc = tokenizer.encode(x.text, x.textPair ?? null, { maxLength });
    let count = 0;
    enc.ids.forEach((id, t) => {
      if (enc.specialTokensMask[t] || id >= emb.vocab) return;
      for (let j = 0; j < dim; j++) embedding[r * dim + j]! += unit[id * dim + j]!;
      count++;
    });
    for (let j = 0; j < dim; j++) embedding[r * dim + j]! /= Math.max(1, count);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += embedding[r * dim + j]! * anchor[c * dim + j]!;
      anchors[r * k + c] = s;
    }
  });
  const pool = Math.min(Math.max(poolSize, 2), n);
  standardize(anchors, k, columnStats(anchors.subarray(0, pool * k), k));
  standardize(embedding, dim, columnStats(embedding.subarray(0, pool * dim), dim));
  return { embedding, anchors, dim, classes: k, index: new Map(examples.map((x, i) => [x, i])) };
}

function rowsOf(bank: AnchorBank, xs: readonly TextExample[]): Int32Array {
  return Int32Array.from(xs, (x) => {
    const r = bank.index.get(x);
    if (r === undefined) throw new RangeError('anchor: an example is not in the anchor bank');
    return r;
  });
}

/** Zero-shot: the class whose label words' anchor is closest to the text's mean embedding. */
export function anchorPredict(bank: AnchorBank, xs: readonly TextExample[]): Int32Array {
  return argmaxAnchors(bank, rowsOf(bank, xs));
}

function argmaxAnchors(bank: AnchorBank, rows: Int32Array): Int32Array {
  const k = bank.classes;
  return Int32Array.from(rows, (r) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (bank.anchors[r * k + c]! > bank.anchors[r * k + best]!) best = c;
    return best;
  });
}

const ANCHOR_WEIGHT = 3;
/** β: how much the embedding directions may move the decision (0 = the anchors only). */
export const ANCHOR_BETA_GRID: readonly number[] = [0, 0.1, 0.3, 1];
export const ANCHOR_C_GRID: readonly number[] = [0.01, 0.1, 1];

export function anchorProbe(bank: AnchorBank, labels: LabelMap, train: readonly TextExample[], earlyStopping: readonly TextExample[], selection: readonly TextExample[], test: readonly TextExample[]): MethodScore {
  const { dim, classes: k } = bank;
  const weighted = Float64Array.from(bank.anchors, (a) => ANCHOR_WEIGHT * a);
  const matrix = (rows: Int32Array, beta: number) => {
    const width = k + (beta > 0 ? dim : 0);
    const x = new Float32Array(rows.length * width);
    rows.forEach((r, i) => {
      for (let c = 0; c < k; c++) x[i * width + c] = weighted[r * k + c]!;
      if (beta > 0) for (let j = 0; j < dim; j++) x[i * width + k + j] = beta * bank.embedding[r * dim + j]!;
    });
    return denseMatrix(x, rows.length, width);
  };
  const [tr, es, sel, te] = [train, earlyStopping, selection, test].map((xs) => rowsOf(bank, xs)) as [Int32Array, Int32Array, Int32Array, Int32Array];
  const ytr = labels.encode(train);
  const yes = labels.encode(earlyStopping);
  // Candidate 0 is the zero-shot classifier itself: a few labels may not beat it (its threshold is
  // calibrated on the whole unlabelled pool; a fitted intercept only on the labelled sample).
  const accuracyOn = (pred: Int32Array) => pred.reduce((right, p, i) => right + (p === yes[i] ? 1 : 0), 0) / Math.max(1, pred.length);
  const zeroShotPredict = (r: Int32Array) => argmaxAnchors(bank, r);
  // As probabilities, the zero-shot classifier is the softmax of the weighted anchor scores (same argmax).
  const zeroShotProba = (rows: Int32Array) => {
    const p = new Float64Array(rows.length * k);
    rows.forEach((r, i) => logSoftmaxInto(weighted, r * k, k, p, i * k));
    return p.map(Math.exp);
  };
  let best: { beta: number; C: number; acc: number; proba: (r: Int32Array) => Float64Array } = { beta: -1, C: 0, acc: accuracyOn(zeroShotPredict(es)), proba: zeroShotProba };
  for (const beta of ANCHOR_BETA_GRID) {
    const xtr = matrix(tr, beta), xes = matrix(es, beta);
    for (const C of ANCHOR_C_GRID) {
      const model = fitLogistic(xtr, ytr, k, { C, maxIter: 300 });
      const acc = accuracyOn(model.predict(xes));
      if (acc > best.acc) best = { beta, C, acc, proba: (r) => model.predictProba(matrix(r, beta)) };
    }
  }
  const b = best;
  return methodScore(labels, selection, test, b.proba(sel), b.proba(te), b.beta < 0 ? 'zero-shot' : `β=${b.beta} C=${b.C}`);
}

/** Appends k dense columns (rows × k) to a CSR matrix. */
function withDenseColumns(x: CsrMatrix, dense: Float32Array, k: number): CsrMatrix {
  const nnz = x.indptr[x.rows]! + x.rows * k;
  const indptr = new Int32Array(x.rows + 1), indices = new Int32Array(nnz), values = new Float64Array(nnz);
  let at = 0;
  for (let r = 0; r < x.rows; r++) {
    for (let e = x.indptr[r]!; e < x.indptr[r + 1]!; e++) { indices[at] = x.indices[e]!; values[at++] = x.values[e]!; }
    for (let c = 0; c < k; c++) { indices[at] = x.cols + c; values[at++] = dense[r * k + c]!; }
    indptr[r + 1] = at;
  }
  return { rows: x.rows, cols: x.cols + k, indptr, indices, values };
}

const STACK_WEIGHT_GRID: readonly number[] = [0.3, 1, 3];

/**
 * Stacked: TF-IDF 1–2-grams of the labelled texts plus the anchor scores as extra columns, one logistic
 * regression (C and the anchors' weight chosen on the early-stopping examples). Reported beside the
 * curves, never as the pre-trained curve: it answers whether what pre-training put into the embeddings
 * adds to a bag of words, not whether it replaces one.
 */
export function anchorStacked(bank: AnchorBank, labels: LabelMap, train: readonly TextExample[], earlyStopping: readonly TextExample[], selection: readonly TextExample[], test: readonly TextExample[]): MethodScore {
  const k = bank.classes;
  const vec = new TfidfVectorizer();
  const tfTrain = vec.fitTransform(train.map(exampleText));
  const anchorsOf = (xs: readonly TextExample[], weight: number) => {
    const rows = rowsOf(bank, xs);
    const out = new Float32Array(rows.length * k);
    rows.forEach((r, i) => { for (let c = 0; c < k; c++) out[i * k + c] = weight * bank.anchors[r * k + c]!; });
    return out;
  };
  const features = (xs: readonly TextExample[], tf: CsrMatrix, weight: number) => withDenseColumns(tf, anchorsOf(xs, weight), k);
  const ytr = labels.encode(train), yes = labels.encode(earlyStopping);
  const tfEs = vec.transform(earlyStopping.map(exampleText));
  let best: { weight: number; C: number; acc: number; model: ReturnType<typeof fitLogistic> } | null = null;
  for (const weight of STACK_WEIGHT_GRID) {
    const s = selectC(features(train, tfTrain, weight), ytr, features(earlyStopping, tfEs, weight), yes, k, { grid: C_GRID, maxIter: 300 });
    if (!best || s.valAccuracy > best.acc) best = { weight, C: s.C, acc: s.valAccuracy, model: s.model };
  }
  const b = best!;
  const predict = (xs: readonly TextExample[]) => b.model.predict(features(xs, vec.transform(xs.map(exampleText)), b.weight));
  return { selection: scorePredictions(labels, selection, predict(selection)).accuracy, ...scorePredictions(labels, test, predict(test)), detail: `weight=${b.weight} C=${b.C}` };
}
