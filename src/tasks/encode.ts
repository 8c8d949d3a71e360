/**
 * Turning task examples into model batches: padded text (pair) batches for sequence classification,
 * and word-level tags aligned to subword tokens for token classification, HF style:
 *
 *   words      [ "The",  "unbelievable",              "cat" ]
 *   tokens     [CLS] the  un  ##bel  ##ie  ##vable   cat  [SEP]
 *   word ids   null  0    1   1      1     1        2    null
 *   labels     -100  DET  ADJ -100   -100  -100     NOUN -100     (first subword carries the label)
 *
 * Predictions come back per word from the first subword's logits (a word truncated away gets -1).
 */
import type { Encoding, Tokenizer } from '../tokenizers/types.ts';
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';

/** One padded batch (right padding), B×T row-major. */
export interface TokenBatch {
  inputIds: Int32Array;
  batch: number;
  length: number;
  /** 1 = real token, 0 = padding. */
  attentionMask: Uint8Array;
  tokenTypeIds: Int32Array;
}

/** The id used for padding: the pad token, else end-of-text (GPT-2 has no pad), else 0. Masked either way. */
export function padTokenId(tokenizer: Tokenizer): number {
  for (const t of [tokenizer.specialTokens.pad, tokenizer.specialTokens.eos]) {
    const id = t === undefined ? undefined : tokenizer.tokenToId(t);
    if (id !== undefined) return id;
  }
  return 0;
}

/** Right-pads encodings to the longest (or to `length`) into one batch. */
export function collate(encodings: readonly Pick<Encoding, 'ids' | 'typeIds'>[], padId: number, length?: number): TokenBatch {
  const b = encodings.length;
  if (b === 0) throw new RangeError('collate: empty batch');
  const t = length ?? Math.max(...encodings.map((e) => e.ids.length));
  const inputIds = new Int32Array(b * t).fill(padId);
  const attentionMask = new Uint8Array(b * t);
  const tokenTypeIds = new Int32Array(b * t);
  encodings.forEach((e, r) => {
    if (e.ids.length > t) throw new RangeError(`collate: row ${r} has ${e.ids.length} tokens, more than the batch length ${t}`);
    if (e.ids.length === 0) throw new RangeError(`collate: row ${r} has no tokens`);
    inputIds.set(e.ids, r * t);
    attentionMask.fill(1, r * t, r * t + e.ids.length);
    tokenTypeIds.set(e.typeIds, r * t);
  });
  return { inputIds, batch: b, length: t, attentionMask, tokenTypeIds };
}

/** Texts (or text pairs: [CLS] a [SEP] b [SEP] with token types 0/1 for BERT) truncated to maxLength and padded. */
export function encodeTexts(tokenizer: Tokenizer, examples: ReadonlyArray<{ text: string; textPair?: string }>, maxLength: number): TokenBatch {
  const encs = examples.map((e) => tokenizer.encode(e.text, e.textPair ?? null, { maxLength }));
  return collate(encs, padTokenId(tokenizer));
}

export interface WordEncoding {
  encoding: Encoding;
  /** Per token: the index of the word it belongs to, or null for special tokens and padding. */
  wordIds: Array<number | null>;
}

/**
 * Encodes pre-split words (joined by single spaces) and maps every token back to its word through the
 * offsets — HF's `word_ids()` for `is_split_into_words=True`, for any tokenizer.
 */
export function encodeWords(tokenizer: Tokenizer, words: readonly string[], maxLength?: number): WordEncoding {
  if (words.length === 0) throw new RangeError('encodeWords: no words');
  const starts: number[] = [];
  let text = '';
  words.forEach((w, i) => {
    // A word may hold spaces ("New York" from a tab-separated CoNLL line): its tokens all fall inside
    // its character span, so they map to it, as HF's word_ids() does for is_split_into_words.
    if (w.trim() === '') throw new RangeError(`encodeWords: word ${i} (${JSON.stringify(w)}) is empty or only whitespace`);
    if (i) text += ' ';
    starts.push(text.length);
    text += w;
  });
  const encoding = tokenizer.encode(text, null, { maxLength });
  const wordIds: Array<number | null> = [];
  let w = 0;
  encoding.offsets.forEach(([s, e], k) => {
    if (encoding.sequenceIds[k] === null || e <= s) return void wordIds.push(null);
    // Tokens come in text order, so the word pointer only moves forward.
    while (w < words.length && starts[w]! + words[w]!.length <= s) w++;
    const inWord = w < words.length && starts[w]! < e;
    wordIds.push(inWord ? w : null); // a token that is only the space between words (byte-level "Ġ")
  });
  return { encoding, wordIds };
}

/** Token labels: the word's label on its first token, -100 on later subwords, specials and padding. */
export function alignLabels(wordIds: ReadonlyArray<number | null>, wordLabels: ArrayLike<number>, length = wordIds.length): Int32Array {
  const out = new Int32Array(length).fill(IGNORE_INDEX);
  let previous: number | null = null;
  wordIds.forEach((w, k) => {
    if (w !== null && w !== previous) out[k] = wordLabels[w]!;
    if (w !== null) previous = w;
  });
  return out;
}

/** One prediction per word, read at the word's first token; words with no token (truncated) get -1. */
export function wordPredictions(wordIds: ReadonlyArray<number | null>, tokenPredictions: ArrayLike<number>, numWords: number): Int32Array {
  const out = new Int32Array(numWords).fill(-1);
  const seen = new Uint8Array(numWords);
  wordIds.forEach((w, k) => {
    if (w === null || seen[w]) return;
    seen[w] = 1;
    out[w] = tokenPredictions[k]!;
  });
  return out;
}

export interface TaggedBatch extends TokenBatch {
  /** B×T token labels (-100 = not scored). */
  labels: Int32Array;
  wordIds: Array<Array<number | null>>;
}

/** Tagged sentences (tag ids per word) → a padded batch with aligned labels. */
export function encodeTagged(tokenizer: Tokenizer, examples: ReadonlyArray<{ tokens: readonly string[]; tagIds: ArrayLike<number> }>, maxLength: number): TaggedBatch {
  const encoded = examples.map((ex) => encodeWords(tokenizer, ex.tokens, maxLength));
  const batch = collate(encoded.map((e) => e.encoding), padTokenId(tokenizer));
  const labels = new Int32Array(batch.batch * batch.length).fill(IGNORE_INDEX);
  encoded.forEach((e, r) => labels.set(alignLabels(e.wordIds, examples[r]!.tagIds), r * batch.length));
  return { ...batch, labels, wordIds: encoded.map((e) => e.wordIds) };
}
