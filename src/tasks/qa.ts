/**
 * Extractive QA pre/post-processing, as transformers' run_qa.py does it:
 *
 * Windows (HF `truncation="only_second", return_overflowing_tokens=True, stride=doc_stride`): the
 * question is kept whole, the context's tokens are cut into windows of at most
 *   room = maxLength − |question tokens| − |special tokens|
 * tokens, consecutive windows overlapping by `stride` tokens (each starts room − stride after the
 * previous one; the last one ends at the context's end):
 *
 *   [CLS] question [SEP] c_0 … c_{room−1} [SEP]
 *   [CLS] question [SEP] c_{room−stride} … [SEP]        …
 *
 * Training labels: the answer's first and last token when the answer lies wholly inside the window's
 * context, else both point at token 0 ([CLS]): "not in this window".
 *
 * Answers: over every window, every pair s ≤ e of context tokens with e − s + 1 ≤ maxAnswerLength,
 * the span with the highest start_logit[s] + end_logit[e] wins (an exact search; run_qa.py keeps the
 * n-best starts and ends first). It maps back to characters through the offsets: context[s.start, e.end).
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import type { QAExample } from './data.ts';
import { collate, padTokenId, type TokenBatch } from './encode.ts';

export interface QAFeature {
  /** Index of the example (question) this window belongs to. */
  exampleIndex: number;
  ids: number[];
  typeIds: number[];
  /** Per token: [start, end) character offsets into the context, or null (question, specials). */
  offsets: Array<[number, number] | null>;
  /** Token positions of the answer, or 0/0 when it is not (wholly) inside this window. */
  startPosition: number;
  endPosition: number;
}

export interface WindowOptions {
  /** Tokens per window, specials included (run_qa.py's max_seq_length, default 384). */
  maxLength: number;
  /** Tokens shared by consecutive windows (run_qa.py's doc_stride, default 128). */
  stride: number;
}

/** Splits every (question, context) into overlapping windows with training labels. */
export function prepareQAFeatures(tokenizer: Tokenizer, examples: readonly QAExample[], options: WindowOptions): QAFeature[] {
  const { maxLength, stride } = options;
  const features: QAFeature[] = [];
  examples.forEach((ex, exampleIndex) => {
    // The full encoding gives the special-token template around the two sequences; the windows
    // replace its context part with a slice, exactly as overflowing truncation does.
    const full = tokenizer.encode(ex.question, ex.context);
    const ctx: number[] = [];
    full.sequenceIds.forEach((s, k) => s === 1 && ctx.push(k));
    if (ctx.length === 0) throw new RangeError(`prepareQAFeatures: example ${ex.id}: the context has no tokens`);
    const first = ctx[0]!;
    const last = ctx[ctx.length - 1]!;
    const head = { ids: full.ids.slice(0, first), typeIds: full.typeIds.slice(0, first) };
    const tail = { ids: full.ids.slice(last + 1), typeIds: full.typeIds.slice(last + 1) };
    const room = maxLength - head.ids.length - tail.ids.length;
    if (room <= stride || room <= 0) {
      throw new RangeError(`prepareQAFeatures: example ${ex.id}: the question takes ${head.ids.length + tail.ids.length} of ${maxLength} tokens, leaving ${room} for the context — must be more than the stride ${stride}`);
    }
    const answer = ex.answers[0];
    const answerStart = answer?.start ?? -1;
    const answerEnd = answer ? answer.start + answer.text.length : -1;
    for (let w0 = 0; ; w0 += room - stride) {
      const w1 = Math.min(w0 + room, ctx.length);
      const span = ctx.slice(w0, w1);
      const offsets: QAFeature['offsets'] = [
        ...head.ids.map(() => null), ...span.map((k) => full.offsets[k]!), ...tail.ids.map(() => null),
      ];
      const f: QAFeature = {
        exampleIndex,
        ids: [...head.ids, ...span.map((k) => full.ids[k]!), ...tail.ids],
        typeIds: [...head.typeIds, ...span.map((k) => full.typeIds[k]!), ...tail.typeIds],
        offsets, startPosition: 0, endPosition: 0,
      };
      if (answer && answerEnd > answerStart) labelAnswer(f, head.ids.length, span.length, answerStart, answerEnd);
      features.push(f);
      if (w1 >= ctx.length) break;
    }
  });
  return features;
}

/** run_qa.py's labelling: first token whose span starts ≤ answer start … last token ending ≥ answer end. */
function labelAnswer(f: QAFeature, first: number, count: number, startChar: number, endChar: number): void {
  const lastTok = first + count - 1;
  if (f.offsets[first]![0] > startChar || f.offsets[lastTok]![1] < endChar) return; // not wholly inside
  let s = first;
  while (s <= lastTok && f.offsets[s]![0] <= startChar) s++;
  let e = lastTok;
  while (e >= first && f.offsets[e]![1] >= endChar) e--;
  f.startPosition = s - 1;
  f.endPosition = e + 1;
}

/** Features → one padded batch (token types kept: BERT's question 0 / context 1). */
export function collateFeatures(tokenizer: Tokenizer, features: readonly QAFeature[]): TokenBatch & { startPositions: Int32Array; endPositions: Int32Array } {
  return {
    ...collate(features, padTokenId(tokenizer)),
    startPositions: Int32Array.from(features, (f) => f.startPosition),
    endPositions: Int32Array.from(features, (f) => f.endPosition),
  };
}

export interface Span {
  text: string;
  /** Character span [start, end) in the context. */
  start: number;
  end: number;
  /** start + end logit (run_qa.py's postprocessing), or p_start·p_end with bestSpans' `probability` (the pipeline's). */
  score: number;
  /** Which feature (window) it came from. */
  featureIndex: number;
}

/**
 * The best answer of each example. startLogits/endLogits[f] are feature f's logits (length ≥ its
 * tokens; padding is never a context token so it is never chosen).
 */
export function bestSpans(
  examples: readonly QAExample[], features: readonly QAFeature[],
  startLogits: ReadonlyArray<ArrayLike<number>>, endLogits: ReadonlyArray<ArrayLike<number>>,
  options: { maxAnswerLength?: number; probability?: { clsId: number | null } } = {},
): Array<Span | null> {
  const maxLen = options.maxAnswerLength ?? 30;
  if (startLogits.length !== features.length || endLogits.length !== features.length) {
    throw new RangeError(`bestSpans: ${features.length} features but ${startLogits.length} start / ${endLogits.length} end logit rows`);
  }
  const best: Array<{ fi: number; s: number; e: number; score: number } | null> = examples.map(() => null);
  features.forEach((f, fi) => {
    let sl = startLogits[fi]!;
    let el = endLogits[fi]!;
    const n = f.offsets.length;
    if (options.probability) {
      // The question-answering pipeline's score: softmax of the start and of the end logits over the
      // window's context tokens and [CLS] (the other positions masked), so span scores are
      // p_start·p_end — comparable across windows, and the sum of log-probabilities picks the same spans.
      const allowed = (i: number) => f.offsets[i] !== null || f.ids[i] === options.probability!.clsId;
      sl = logSoftmaxOver(sl, n, allowed);
      el = logSoftmaxOver(el, n, allowed);
    }
    for (let s = 0; s < n; s++) {
      if (!f.offsets[s]) continue;
      for (let e = s; e < Math.min(n, s + maxLen); e++) {
        if (!f.offsets[e]) break; // the context is contiguous: past its end
        const score = sl[s]! + el[e]!;
        const cur = best[f.exampleIndex];
        if (!cur || score > cur.score) best[f.exampleIndex] = { fi, s, e, score };
      }
    }
  });
  return best.map((b, i) => {
    if (!b) return null;
    const ctx = examples[i]!.context;
    const f = features[b.fi]!;
    // Byte-level BPE offsets include the space before a word ("Ġpark"); answers do not.
    let start = f.offsets[b.s]![0];
    let end = f.offsets[b.e]![1];
    while (start < end && /\s/.test(ctx[start]!)) start++;
    while (end > start && /\s/.test(ctx[end - 1]!)) end--;
    return { text: ctx.slice(start, end), start, end, score: options.probability ? Math.exp(b.score) : b.score, featureIndex: b.fi };
  });
}

/**
 * Question id → predicted answer text ('' when no window had a context token). With `nullAnswer`
 * (SQuAD 2.0, run_qa.py's --version_2_with_negative), '' also when the "no answer" score — token 0's
 * start + end logit, the position unanswerable windows are trained to, at its lowest over the windows —
 * beats the best span: otherwise an unanswerable question could never be scored right.
 */
export function predictAnswers(
  examples: readonly QAExample[], features: readonly QAFeature[],
  startLogits: ReadonlyArray<ArrayLike<number>>, endLogits: ReadonlyArray<ArrayLike<number>>,
  options: { maxAnswerLength?: number; nullAnswer?: boolean } = {},
): Map<string, string> {
  const spans = bestSpans(examples, features, startLogits, endLogits, options);
  const nullScore = examples.map(() => Infinity);
  if (options.nullAnswer) features.forEach((f, fi) => (nullScore[f.exampleIndex] = Math.min(nullScore[f.exampleIndex]!, startLogits[fi]![0]! + endLogits[fi]![0]!)));
  return new Map(examples.map((ex, i) => {
    const span = spans[i];
    return [ex.id, span && !(options.nullAnswer && nullScore[i]! > span.score) ? span.text : ''];
  }));
}

/** log-softmax of the first n logits over the positions `allowed` keeps (the others −∞). */
function logSoftmaxOver(logits: ArrayLike<number>, n: number, allowed: (i: number) => boolean): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (allowed(i)) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) if (allowed(i)) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = allowed(i) ? logits[i]! - logZ : -Infinity;
  return out;
}
