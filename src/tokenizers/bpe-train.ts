/**
 * Byte-level BPE training, the algorithm of Hugging Face's BpeTrainer (same vocabulary order, same
 * tie-breaking), made fast by working on distinct pre-tokens only:
 *
 *   1. Count pre-tokens ("words"): the text is split on special tokens, then with GPT-2's pre-tokenizer;
 *      a 20 MB English corpus has ~4M pre-tokens but only ~10⁵ distinct words.
 *   2. Vocabulary = special tokens, then the 256 byte symbols (code-point order of their characters,
 *      which is GPT-2's order), then one token per merge.
 *   3. Every distinct word becomes a linked list of symbol ids in one flat array. For each adjacent pair
 *      we keep count(pair) = Σ freq(word) over its occurrences, and the positions where it occurs.
 *   4. Repeat until the vocabulary is full: take the pair with the highest count (ties: the smaller
 *      (left id, right id), as HF), stop if count < minFrequency, append the merge, and rewrite only the
 *      positions where the pair occurs. At each merged position p (A B → Z, neighbours x … y):
 *          count(x A) -= f, count(B y) -= f, count(x Z) += f, count(Z y) += f
 *      A max-heap holds (count, pair) entries; entries go stale when a count drops and are re-pushed with
 *      the current count when popped (lazy deletion), so each merge costs O(occurrences · log #pairs).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { AddedVocabulary } from './added-tokens.ts';
import { BYTE_TO_CHAR, preTokenEnd, safeCutAfter, safeCutBefore, utf8Encode } from './bytelevel.ts';
import { BpeTokenizer } from './bpe.ts';

export interface BpeTrainerOptions {
  /** Final vocabulary size: special tokens + 256 bytes + merges. */
  vocabSize: number;
  /** A pair must occur at least this often (counting word frequencies) to be merged. Default 2. */
  minFrequency?: number;
  /** Added first, with ids 0, 1, …; atomic in the training text. Default ['<|endoftext|>']. */
  specialTokens?: string[];
  /** Called after counting and every 1000 merges with (merges done, merges wanted). */
  onProgress?: (done: number, total: number) => void;
}

/** Counts GPT-2 pre-tokens across many texts (step 1). */
export class WordCounter {
  readonly counts = new Map<string, number>();
  private readonly specials: AddedVocabulary;

  constructor(specialTokens: readonly string[] = []) {
    this.specials = new AddedVocabulary(specialTokens.map((content, id) => ({ id, content, special: true, normalized: false })));
  }

  add(text: string): void {
    const counts = this.counts;
    for (const piece of this.specials.split(text)) {
      if (piece.id >= 0) continue;
      for (let i = piece.start; i < piece.end; ) {
        const j = preTokenEnd(text, i, piece.end);
        const word = text.slice(i, j);
        counts.set(word, (counts.get(word) ?? 0) + 1);
        i = j;
      }
    }
  }

  /** Adds a long text in ~1 MB chunks cut where pre-tokenization cannot change (keeps slices small). */
  addLong(text: string, chunk = 1 << 20): void {
    for (let s = 0; s < text.length; ) {
      const e = safeCutAfter(text, s + chunk);
      this.add(s === 0 && e === text.length ? text : text.slice(s, e));
      s = e;
    }
  }
}

/** (left, right) → dense pair index, open addressing over Int32Arrays. */
class PairTable {
  private keys = new Int32Array(2 << 16).fill(-1);
  private values = new Int32Array(1 << 16);
  private bits = 16;
  size = 0;

  get(a: number, b: number): number {
    const slot = this.slot(a, b);
    return this.keys[2 * slot] === -1 ? -1 : this.values[slot];
  }

  /** Index of (a, b), inserting it as `fresh` if absent. */
  intern(a: number, b: number, fresh: number): number {
    const slot = this.slot(a, b);
    if (this.keys[2 * slot] !== -1) return this.values[slot];
    this.keys[2 * slot] = a;
    this.keys[2 * slot + 1] = b;
    this.values[slot] = fresh;
    if (++this.size * 2 > 1 << this.bits) this.grow();
    return fresh;
  }

  private slot(a: number, b: number): number {
    const mask = (1 << this.bits) - 1;
    let s = Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1) >>> (32 - this.bits);
    while (this.keys[2 * s] !== -1 && (this.keys[2 * s] !== a || this.keys[2 * s + 1] !== b)) s = (s + 1) & mask;
    return s;
  }

  private grow(): void {
    const [keys, values] = [this.keys, this.values];
    this.bits++;
    this.keys = new Int32Array(2 << this.bits).fill(-1);
    this.values = new Int32Array(1 << this.bits);
    for (let s = 0; s < values.length; s++) {
      if (keys[2 * s] === -1) continue;
      const t = this.slot(keys[2 * s], keys[2 * s + 1]);
      this.keys[2 * t] = keys[2 * s];
      this.keys[2 * t + 1] = keys[2 * s + 1];
      this.values[t] = values[s];
    }
  }
}

/** Pair statistics: per pair index its ids, count and occurrence positions. */
class Pairs {
  readonly table = new PairTable();
  left: number[] = [];
  right: number[] = [];
  count: number[] = [];
  where: number[][] = [];

  /** count(a b) += delta; a positive delta also records position p. */
  change(a: number, b: number, delta: number, p: number): number {
    const idx = this.table.intern(a, b, this.left.length);
    if (idx === this.left.length) {
      this.left.push(a);
      this.right.push(b);
      this.count.push(0);
      this.where.push([]);
    }
    this.count[idx] += delta;
    if (delta > 0) this.where[idx].push(p);
    return idx;
  }
}

/** Max-heap of (count, pair) with HF's order: higher count first, then smaller (left, right). */
class PairHeap {
  private counts: number[] = [];
  private ids: number[] = [];
  constructor(private readonly pairs: Pairs) {}

  get size(): number {
    return this.ids.length;
  }

  private before(i: number, j: number): boolean {
    const [ci, cj] = [this.counts[i], this.counts[j]];
    if (ci !== cj) return ci > cj;
    const [pi, pj] = [this.ids[i], this.ids[j]];
    const { left, right } = this.pairs;
    return left[pi] !== left[pj] ? left[pi] < left[pj] : right[pi] < right[pj];
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.ids[i], this.ids[j]] = [this.ids[j], this.ids[i]];
  }

  push(count: number, pair: number): void {
    this.counts.push(count);
    this.ids.push(pair);
    for (let i = this.ids.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top; returns [count, pair]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.ids[0]];
    const lastCount = this.counts.pop()!;
    const lastId = this.ids.pop()!;
    if (this.ids.length > 0) {
      this.counts[0] = lastCount;
      this.ids[0] = lastId;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.ids.length && this.before(l, best)) best = l;
        if (r < this.ids.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Steps 2–4 on counted words. */
export function trainBpeFromCounts(counts: Map<string, number>, options: BpeTrainerOptions): BpeTokenizer {
  const specials = options.specialTokens ?? ['<|endoftext|>'];
  const minFrequency = options.minFrequency ?? 2;
  const alphabetStart = specials.length;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < alphabetStart + 256) {
    throw new RangeError(`trainBpe: vocabSize must be an integer ≥ 256 + ${alphabetStart} special tokens, got ${options.vocabSize}`);
  }
  if (options.vocabSize >= 1 << 30) throw new RangeError(`trainBpe: vocabSize ${options.vocabSize} is too large`);

  // Vocabulary: specials, then the byte alphabet in code-point order.
  const tokens: string[] = [...specials];
  const byteChars = [...BYTE_TO_CHAR].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0));
  tokens.push(...byteChars);
  const vocab = new Map<string, number>(tokens.map((t, i) => [t, i]));
  if (vocab.size !== tokens.length) throw new RangeError('trainBpe: special tokens must be distinct and not single byte characters');
  const byteId = new Int32Array(256);
  BYTE_TO_CHAR.forEach((ch, b) => (byteId[b] = vocab.get(ch)!));

  // Flat linked words.
  let total = 0;
  for (const w of counts.keys()) total += w.length * 3;
  const sym = new Int32Array(total);
  const next = new Int32Array(total);
  const prev = new Int32Array(total);
  const freq = new Float64Array(total); // freq of the word each position belongs to
  const buf = new Uint8Array(4096);
  let n = 0;
  for (const [word, f] of counts) {
    const bytes = word.length * 3 <= buf.length ? buf : new Uint8Array(word.length * 3);
    const len = utf8Encode(word, 0, word.length, bytes);
    for (let k = 0; k < len; k++) {
      sym[n + k] = byteId[bytes[k]];
      prev[n + k] = k === 0 ? -1 : n + k - 1;
      next[n + k] = k === len - 1 ? -1 : n + k + 1;
      freq[n + k] = f;
    }
    n += len;
  }

  const pairs = new Pairs();
  for (let p = 0; p < n; p++) if (next[p] >= 0) pairs.change(sym[p], sym[next[p]], freq[p], p);
  const heap = new PairHeap(pairs);
  pairs.count.forEach((c, idx) => c > 0 && heap.push(c, idx));

  const merges: Array<[string, string]> = [];
  const wanted = options.vocabSize - tokens.length;
  options.onProgress?.(0, wanted);
  const touched = new Set<number>();
  while (vocab.size < options.vocabSize && heap.size > 0) {
    const [count, idx] = heap.pop();
    if (count !== pairs.count[idx]) {
      if (pairs.count[idx] > 0) heap.push(pairs.count[idx], idx);
      continue;
    }
    if (count < 1 || count < minFrequency) break;
    const a = pairs.left[idx];
    const b = pairs.right[idx];
    const merged = tokens[a] + tokens[b];
    let z = vocab.get(merged);
    if (z === undefined) {
      z = tokens.length;
      tokens.push(merged);
      vocab.set(merged, z);
    }
    merges.push([tokens[a], tokens[b]]);

    // Left to right within each word, so overlapping occurrences (a a a) merge as the model will.
    const where = Int32Array.from(pairs.where[idx]).sort();
    pairs.where[idx] = [];
    touched.clear();
    for (const p of where) {
      const q = next[p];
      if (sym[p] !== a || q < 0 || sym[q] !== b) continue; // stale: already rewritten
      const f = freq[p];
      const x = prev[p];
      const y = next[q];
      if (x >= 0) pairs.change(sym[x], a, -f, -1);
      if (y >= 0) pairs.change(b, sym[y], -f, -1);
      sym[p] = z;
      sym[q] = -1;
      next[p] = y;
      if (y >= 0) prev[y] = p;
      if (x >= 0) touched.add(pairs.change(sym[x], z, f, x));
      if (y >= 0) touched.add(pairs.change(z, sym[y], f, p));
    }
    pairs.count[idx] = 0;
    for (const t of touched) if (pairs.count[t] > 0) heap.push(pairs.count[t], t);
    if (merges.length % 1000 === 0) options.onProgress?.(merges.length, wanted);
  }
  options.onProgress?.(merges.length, merges.length);

  return BpeTokenizer.fromVocabAndMerges(vocab, merges, { specialTokens: specials });
}

/** Trains on texts (an array, a generator, …): counts words, then merges. */
export function trainBpe(texts: Iterable<string>, options: BpeTrainerOptions): BpeTokenizer {
  const counter = new WordCounter(options.specialTokens ?? ['<|endoftext|>']);
  for (const t of texts) counter.addLong(t);
  return trainBpeFromCounts(counter.counts, options);
}

/** Same, from async sources (streams of chunks must be cut at safe points by the caller, see safeCutAfter). */
export async function trainBpeAsync(texts: AsyncIterable<string> | Iterable<string>, options: BpeTrainerOptions): Promise<BpeTokenizer> {
  const counter = new WordCounter(options.specialTokens ?? ['<|endoftext|>']);
  for await (const t of texts) counter.addLong(t);
  return trainBpeFromCounts(counter.counts, options);
}

/**
 * The text of a UTF-8 file in pieces of about `chunkBytes`, each cut where GPT-2 pre-tokenization cannot
 * change, so files larger than memory can be counted. Invalid bytes are read as U+FFFD.
 */
export function* readTextChunks(path: string, chunkBytes = 16 << 20): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const decoder = new TextDecoder('utf-8', { fatal: false });
    const buf = new Uint8Array(chunkBytes);
    let carry = '';
    for (;;) {
      const got = readSync(fd, buf, 0, buf.length, null);
      const text = carry + decoder.decode(buf.subarray(0, got), { stream: got > 0 });
      if (got === 0) {
        if (text) yield text;
        return;
      }
      const cut = safeCutBefore(text);
      if (cut > 0) yield text.slice(0, cut);
      carry = text.slice(cut);
    }
  } finally {
    closeSync(fd);
  }
}

/** Trains on UTF-8 text files, streamed (invalid bytes are read as U+FFFD). */
export function trainBpeFromFiles(paths: readonly string[], options: BpeTrainerOptions): BpeTokenizer {
  return trainBpe((function* () {
    for (const p of paths) yield* readTextChunks(p);
  })(), options);
}
