/**
 * WordPiece training as Hugging Face's WordPieceTrainer does it: a BPE trainer over characters in which
 * every non-initial character of a word carries the continuing prefix ("##"), whose merged tokens form
 * the vocabulary (the merges themselves are thrown away; WordPiece encodes by greedy longest match).
 *
 *   vocab  = special tokens (ids 0..) ++ alphabet (sorted by code point) ++ "##c" forms (first seen first)
 *            ++ one token per merge, in merge order, until vocabSize
 *   merge  = the adjacent pair (a, b) with the highest count Σ_words count(word)·occurrences(a b);
 *            ties go to the smallest (id(a), id(b)), as HF's Merge ordering;
 *            new token = a + b without b's "##" (so "##x" + "##y" = "##xy", "x" + "##y" = "xy")
 *   stop   when the vocabulary is full, no pair is left, or the best count < max(1, minFrequency);
 *          the alphabet and its "##" forms are kept even when they alone exceed vocabSize (with a warning)
 *   limitAlphabet keeps the most frequent characters; the others are dropped from the words (as HF).
 *
 * Speed: words are deduplicated with their frequency first; pair counts and pair → words indexes are
 * updated incrementally (only the words containing the merged pair are touched), and a max-heap with
 * lazy invalidation picks the best pair.
 */
import { readFileSync } from 'node:fs';
import { BertNormalizer, type BertNormalizerOptions } from './normalizer.ts';
import { bertPreTokenizeWords } from './bert-pretokenizer.ts';
import { WordPieceTokenizer } from './wordpiece.ts';

export const DEFAULT_WORDPIECE_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

export interface WordPieceTrainerOptions {
  /** Target vocabulary size, special tokens and alphabet included (default 30000). */
  vocabSize?: number;
  /** Pairs seen fewer times than this are never merged (default 0, as HF). */
  minFrequency?: number;
  /** Default [PAD] [UNK] [CLS] [SEP] [MASK], ids 0..4; the unk token is appended when missing. */
  specialTokens?: readonly string[];
  /** Keep at most this many distinct characters (the most frequent ones). */
  limitAlphabet?: number | null;
  /** Characters always in the alphabet, even when unseen or over limitAlphabet. */
  initialAlphabet?: readonly string[];
  continuingSubwordPrefix?: string;
  /** Never build a token longer than this many characters (prefix excluded). */
  maxTokenLength?: number | null;
  /** BertNormalizer options (default: lowercase, strip accents, clean text, split CJK). */
  normalizer?: BertNormalizerOptions;
  unkToken?: string;
  /** Called after every 1000 merges (and at the end) with the vocabulary size reached. */
  onProgress?: (vocabSize: number, targetSize: number) => void;
  /** Where the warning goes when the alphabet alone exceeds vocabSize (default console.warn). */
  warn?: (message: string) => void;
}

const PAIR_SHIFT = 2 ** 26; // ids < 2^26, so a*2^26 + b is an exact, order-preserving pair key

/** Max-heap of (count, pair key): highest count first, then the smallest pair. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private before(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci !== cj ? ci > cj : this.keys[i] < this.keys[j];
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i];
    this.counts[i] = this.counts[j];
    this.counts[j] = c;
    const k = this.keys[i];
    this.keys[i] = this.keys[j];
    this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.counts.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      const n = this.counts.length;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < n && this.before(l, best)) best = l;
        if (r < n && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

export class WordPieceTrainer {
  readonly options: Required<Omit<WordPieceTrainerOptions, 'onProgress' | 'limitAlphabet' | 'maxTokenLength' | 'normalizer' | 'warn'>> & {
    limitAlphabet: number | null;
    maxTokenLength: number | null;
  };
  readonly normalizer: BertNormalizer;
  private readonly onProgress?: (vocabSize: number, targetSize: number) => void;
  private readonly warn: (message: string) => void;
  /** Distinct pre-tokenized words and how often each was seen, in first-seen order. */
  readonly wordCounts = new Map<string, number>();

  constructor(options: WordPieceTrainerOptions = {}) {
    const vocabSize = options.vocabSize ?? 30000;
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 1 || vocabSize >= PAIR_SHIFT) {
      throw new RangeError(`WordPieceTrainer: vocabSize must be an integer in [1, 2^26), got ${vocabSize}`);
    }
    const prefix = options.continuingSubwordPrefix ?? '##';
    if (prefix.length === 0) throw new RangeError('WordPieceTrainer: continuingSubwordPrefix must not be empty');
    const unkToken = options.unkToken ?? '[UNK]';
    const specialTokens = [...(options.specialTokens ?? DEFAULT_WORDPIECE_SPECIAL_TOKENS)];
    // WordPiece cannot encode without its unk token: append it when the list lacks it.
    if (!specialTokens.includes(unkToken)) specialTokens.push(unkToken);
    this.options = {
      vocabSize,
      minFrequency: options.minFrequency ?? 0,
      specialTokens,
      limitAlphabet: options.limitAlphabet ?? null,
      initialAlphabet: [...(options.initialAlphabet ?? [])],
      continuingSubwordPrefix: prefix,
      maxTokenLength: options.maxTokenLength ?? null,
      unkToken,
    };
    this.normalizer = new BertNormalizer(options.normalizer);
    this.onProgress = options.onProgress;
    this.warn = options.warn ?? ((m) => console.warn(`warning: ${m}`));
  }

  /** Normalizes, pre-tokenizes and counts the words of one text (any length; a line, a document, a file). */
  feed(text: string): void {
    const counts = this.wordCounts;
    for (const word of bertPreTokenizeWords(this.normalizer.normalize(text))) {
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }

  /** Reads files as UTF-8 in ~4 MB pieces cut at line ends (bounded memory for the regex passes). */
  feedFiles(paths: readonly string[]): void {
    for (const path of paths) {
      const text = readFileSync(path, 'utf8');
      const PIECE = 4 << 20;
      for (let start = 0; start < text.length; ) {
        let end = Math.min(text.length, start + PIECE);
        if (end < text.length) {
          const nl = text.indexOf('\n', end);
          end = nl < 0 ? text.length : nl + 1;
        }
        this.feed(text.slice(start, end));
        start = end;
      }
    }
  }

  /** Runs the merges and returns the vocabulary, index = id. */
  trainVocab(): string[] {
    const { vocabSize, specialTokens, continuingSubwordPrefix: prefix } = this.options;
    const idOf = new Map<string, number>();
    const tokens: string[] = [];
    // Token lengths in characters, prefix excluded (for maxTokenLength).
    const charLength: number[] = [];
    const add = (token: string, length: number): number => {
      let id = idOf.get(token);
      if (id === undefined) {
        id = tokens.length;
        tokens.push(token);
        charLength.push(length);
        idOf.set(token, id);
      }
      return id;
    };
    for (const special of specialTokens) add(special, [...special].length);
    const alphabet = new Set(this.alphabet());
    for (const ch of alphabet) add(ch, 1);

    // Words as id sequences; characters outside the alphabet are dropped, as HF does.
    const words: Int32Array[] = [];
    const lengths: number[] = [];
    const counts: number[] = [];
    for (const [word, count] of this.wordCounts) {
      const ids: number[] = [];
      let first = true;
      for (const ch of word) {
        if (alphabet.has(ch)) ids.push(add(first ? ch : prefix + ch, 1));
        first = false;
      }
      if (ids.length === 0) continue;
      words.push(Int32Array.from(ids));
      lengths.push(ids.length);
      counts.push(count);
    }
    // HF keeps every character and its "##" form whatever vocabSize is (an unknown character would cost
    // a whole word as [UNK]), so the vocabulary can be larger than asked: say so rather than silently.
    if (tokens.length > vocabSize) {
      const n = tokens.length.toLocaleString('en-US');
      this.warn(`wordpiece: the alphabet alone has ${n} tokens (special tokens, every character and its "##" form), more than --vocab-size ${vocabSize}; the vocabulary has ${n}`);
    }

    const maxLen = this.options.maxTokenLength ?? Infinity;
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, number[]>();
    const countPairs = (w: number, sign: 1 | -1, indexWordOf: number): void => {
      const ids = words[w];
      const c = counts[w] * sign;
      for (let i = 0; i + 1 < lengths[w]; i++) {
        const a = ids[i];
        const b = ids[i + 1];
        if (charLength[a] + charLength[b] > maxLen) continue;
        const key = a * PAIR_SHIFT + b;
        pairCount.set(key, (pairCount.get(key) ?? 0) + c);
        // Only pairs that are new to this word need the word in their index (-1: all pairs, initial pass).
        if (sign > 0 && (indexWordOf < 0 || a === indexWordOf || b === indexWordOf)) {
          const list = pairWords.get(key);
          if (list === undefined) pairWords.set(key, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    };
    for (let w = 0; w < words.length; w++) countPairs(w, 1, -1);

    const heap = new PairHeap();
    for (const [key, count] of pairCount) if (count > 0) heap.push(count, key);
    const minCount = Math.max(1, this.options.minFrequency);
    let merges = 0;
    while (tokens.length < vocabSize && heap.size > 0) {
      const top = heap.pop();
      const current = pairCount.get(top.key) ?? 0;
      if (current !== top.count) {
        if (current > 0) heap.push(current, top.key);
        continue;
      }
      if (current < minCount) break;
      const a = Math.floor(top.key / PAIR_SHIFT);
      const b = top.key - a * PAIR_SHIFT;
      const partB = tokens[b].startsWith(prefix) ? tokens[b].slice(prefix.length) : tokens[b];
      const merged = add(tokens[a] + partB, charLength[a] + charLength[b]);
      const touched = pairWords.get(top.key) ?? [];
      pairWords.delete(top.key);
      for (const w of touched) {
        if (!containsPair(words[w], lengths[w], a, b)) continue;
        countPairs(w, -1, -1);
        lengths[w] = mergeInPlace(words[w], lengths[w], a, b, merged);
        countPairs(w, 1, merged);
      }
      // Pairs with the new token only grew: queue each once with its final count.
      const grown = new Set<number>();
      for (const w of touched) {
        const ids = words[w];
        for (let i = 0; i + 1 < lengths[w]; i++) {
          if (ids[i] === merged || ids[i + 1] === merged) grown.add(ids[i] * PAIR_SHIFT + ids[i + 1]);
        }
      }
      for (const key of grown) {
        const count = pairCount.get(key) ?? 0;
        if (count > 0) heap.push(count, key);
      }
      pairCount.delete(top.key);
      merges++;
      if (this.onProgress && merges % 1000 === 0) this.onProgress(tokens.length, vocabSize);
    }
    this.onProgress?.(tokens.length, vocabSize);
    return tokens;
  }

  /** Trains and wraps the vocabulary in a BERT-style WordPieceTokenizer with the same normalizer. */
  train(): WordPieceTokenizer {
    const vocab = this.trainVocab();
    const { specialTokens, unkToken, continuingSubwordPrefix } = this.options;
    return new WordPieceTokenizer({
      vocab,
      unkToken,
      continuingSubwordPrefix,
      normalizer: this.normalizer,
      specialTokens: specialTokens.filter((t) => vocab.includes(t)),
    });
  }

  /** Characters by weighted frequency, cut to limitAlphabet, initial alphabet always kept; sorted by code point. */
  private alphabet(): string[] {
    const freq = new Map<string, number>();
    for (const [word, count] of this.wordCounts) for (const ch of word) freq.set(ch, (freq.get(ch) ?? 0) + count);
    // As HF, only the first character of each initial-alphabet string counts.
    for (const s of this.options.initialAlphabet) if (s.length > 0) freq.set(String.fromCodePoint(s.codePointAt(0)!), Infinity);
    let kept = [...freq.entries()];
    const limit = this.options.limitAlphabet;
    if (limit !== null && kept.length > limit) {
      // Least frequent go first; among equals, the higher code point (deterministic, HF leaves it open).
      kept.sort((x, y) => (x[1] !== y[1] ? x[1] - y[1] : y[0].codePointAt(0)! - x[0].codePointAt(0)!));
      // Initial-alphabet characters (count ∞) sort last, so they go only if there are more than `limit`.
      kept = kept.slice(kept.length - Math.max(limit, 0));
    }
    return kept.map(([ch]) => ch).sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
  }
}

function containsPair(ids: Int32Array, length: number, a: number, b: number): boolean {
  for (let i = 0; i + 1 < length; i++) if (ids[i] === a && ids[i + 1] === b) return true;
  return false;
}

/** Left-to-right, non-overlapping: "a a a" with pair (a, a) becomes "aa a". Returns the new length. */
function mergeInPlace(ids: Int32Array, length: number, a: number, b: number, merged: number): number {
  let out = 0;
  for (let i = 0; i < length; ) {
    if (i + 1 < length && ids[i] === a && ids[i + 1] === b) {
      ids[out++] = merged;
      i += 2;
    } else {
      ids[out++] = ids[i++];
    }
  }
  return out;
}

/** One call: feed every text (or file with `files`), train, wrap. */
export function trainWordPiece(texts: Iterable<string>, options: WordPieceTrainerOptions = {}): WordPieceTokenizer {
  const trainer = new WordPieceTrainer(options);
  for (const text of texts) trainer.feed(text);
  return trainer.train();
}
