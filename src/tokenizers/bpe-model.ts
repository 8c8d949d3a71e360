/**
 * The BPE model proper: vocabulary, merge table and the merge loop for one pre-token ("word").
 *
 * A word starts as the ids of its UTF-8 bytes (the byte-level alphabet). Then, repeatedly, the adjacent
 * pair with the lowest merge rank is replaced by the merged token, the leftmost one on ties, until no
 * adjacent pair is in the merge list:
 *     while ∃ i: rank(w[i], w[i+1]) < ∞:  p = argmin_i rank(w[i], w[i+1]);  w = w[..p] + merged(w[p], w[p+1]) + w[p+2..]
 * This is Hugging Face's order (a heap of (rank, position)); GPT-2's Python merges every occurrence of the
 * best pair at once, which gives the same result whenever a merged token's pairs rank after the merge
 * that made it, as in every trained merge list.
 *
 * Short words (all of natural text) use arrays and a linear argmin (O(n²), tiny n); long ones (e.g. a
 * 10,000-character run of one letter) use a binary heap over a linked list, O(n log n). Results are cached
 * per pre-token string, so a word seen before costs one Map lookup.
 */
import { utf8Encode } from './bytelevel.ts';

/** Words up to this many bytes use the array algorithm. */
export const SHORT_WORD_BYTES = 64;
const NO_RANK = 0x7fffffff;
/** Cache entries before the cache is cleared (bounds memory on huge, diverse corpora). */
const CACHE_LIMIT = 400_000;

export class BpeModel {
  /** token → id */
  readonly vocab: Map<string, number>;
  /** id → token (undefined for holes in the id range) */
  readonly tokens: Array<string | undefined>;
  readonly merges: ReadonlyArray<readonly [string, string]>;
  readonly unkId: number;
  readonly ignoreMerges: boolean;
  /** Open-addressing table, 4 ints per slot: left id, right id, rank, merged id (left = -1: empty). */
  private readonly table: Int32Array;
  private readonly tableBits: number;
  /** Id of each byte's character, -1 when the vocabulary lacks it. */
  readonly byteIds = new Int32Array(256).fill(-1);
  private readonly cache = new Map<string, number | Int32Array>();
  private bytes = new Uint8Array(3 * 256);
  private syms = new Int32Array(SHORT_WORD_BYTES);
  private ranks = new Int32Array(SHORT_WORD_BYTES);
  private slots = new Int32Array(SHORT_WORD_BYTES);

  /**
   * `merges[r]` is the merge of rank r. Each merge's parts and result must be in the vocabulary; the
   * caller validates with field names (see bpe.ts) and this constructor throws RangeError as a backstop.
   */
  constructor(vocab: Map<string, number>, merges: ReadonlyArray<readonly [string, string]>, options: { unkToken?: string | null; ignoreMerges?: boolean; byteChars: readonly string[] }) {
    this.vocab = vocab;
    this.merges = merges;
    this.tokens = [];
    for (const [token, id] of vocab) this.tokens[id] = token;
    const unk = options.unkToken ?? null;
    this.unkId = unk === null ? -1 : vocab.get(unk) ?? -1;
    if (unk !== null && this.unkId < 0) throw new RangeError(`BPE: unk token ${JSON.stringify(unk)} is not in the vocabulary`);
    this.ignoreMerges = options.ignoreMerges ?? false;
    options.byteChars.forEach((ch, b) => (this.byteIds[b] = vocab.get(ch) ?? -1));
    this.tableBits = Math.max(4, Math.ceil(Math.log2(merges.length * 2 + 2)));
    this.table = new Int32Array(4 << this.tableBits).fill(-1);
    merges.forEach(([left, right], rank) => {
      const a = vocab.get(left);
      const b = vocab.get(right);
      const merged = vocab.get(left + right);
      if (a === undefined || b === undefined || merged === undefined) {
        throw new RangeError(`BPE: merge ${rank} (${JSON.stringify(left)} ${JSON.stringify(right)}) uses a token missing from the vocabulary`);
      }
      const slot = this.findSlot(a, b);
      if (this.table[slot] === -1) {
        this.table[slot] = a;
        this.table[slot + 1] = b;
        this.table[slot + 2] = rank;
        this.table[slot + 3] = merged;
      } // a repeated merge keeps its first (lowest) rank, as HF does
    });
  }

  get size(): number {
    return this.tokens.length;
  }

  /** Index into `table` of pair (a, b), or of the empty slot where it would go. */
  private findSlot(a: number, b: number): number {
    const mask = (1 << this.tableBits) - 1;
    let slot = Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1) >>> (32 - this.tableBits);
    const t = this.table;
    while (t[slot << 2] !== -1 && (t[slot << 2] !== a || t[(slot << 2) + 1] !== b)) slot = (slot + 1) & mask;
    return slot << 2;
  }

  /** Rank of merging (a, b), or NO_RANK. */
  rankOf(a: number, b: number): number {
    const slot = this.findSlot(a, b);
    return this.table[slot] === -1 ? NO_RANK : this.table[slot + 2];
  }

  /** Ids of the pre-token text[start, end): one id as a number, several as an Int32Array. Cached. */
  encodeWord(text: string, start: number, end: number): number | Int32Array {
    const key = text.slice(start, end);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    if (this.bytes.length < 3 * (end - start)) this.bytes = new Uint8Array(3 * (end - start));
    const n = utf8Encode(text, start, end, this.bytes);
    const ids = this.mergeBytes(this.bytes, n);
    const value = ids.length === 1 ? ids[0] : ids;
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, value);
    return value;
  }

  /** Same as encodeWord with the cache looked up by the caller (the hot loop avoids a second slice). */
  cached(key: string): number | Int32Array | undefined {
    return this.cache.get(key);
  }

  clearCache(): void {
    this.cache.clear();
  }

  /** BPE of a byte string: the merge loop described at the top of the file. */
  mergeBytes(bytes: Uint8Array, n: number, shortLimit = SHORT_WORD_BYTES): Int32Array {
    if (this.ignoreMerges) {
      let whole = '';
      for (let i = 0; i < n; i++) whole += this.tokens[this.byteIds[bytes[i]]] ?? '\0';
      const id = this.vocab.get(whole);
      if (id !== undefined) return Int32Array.of(id);
    }
    // Bytes missing from the vocabulary become unk (consecutive ones fused, as HF's fuse_unk does for
    // byte-level models) or, without an unk token, are dropped, as HF does.
    let m = 0;
    if (this.syms.length < n) {
      this.syms = new Int32Array(n);
      this.ranks = new Int32Array(n);
      this.slots = new Int32Array(n);
    }
    const syms = this.syms;
    for (let i = 0; i < n; i++) {
      const id = this.byteIds[bytes[i]];
      if (id >= 0) syms[m++] = id;
      else if (this.unkId >= 0 && (m === 0 || syms[m - 1] !== this.unkId)) syms[m++] = this.unkId;
    }
    return m <= shortLimit ? this.mergeShort(syms, m) : this.mergeLong(syms, m);
  }

  /** BPE of a word given as symbol ids (character-level models: ids of characters, byte-fallback tokens, unk). */
  mergeIds(ids: ArrayLike<number>): Int32Array {
    const n = ids.length;
    if (this.syms.length < n) {
      this.syms = new Int32Array(n);
      this.ranks = new Int32Array(n);
      this.slots = new Int32Array(n);
    }
    for (let i = 0; i < n; i++) this.syms[i] = ids[i]!;
    return n <= SHORT_WORD_BYTES ? this.mergeShort(this.syms, n) : this.mergeLong(this.syms, n);
  }

  private mergeShort(syms: Int32Array, n: number): Int32Array {
    const ranks = this.ranks;
    const slots = this.slots;
    const t = this.table;
    for (let i = 0; i + 1 < n; i++) {
      const s = this.findSlot(syms[i], syms[i + 1]);
      slots[i] = s;
      ranks[i] = t[s] === -1 ? NO_RANK : t[s + 2];
    }
    while (n > 1) {
      let best = NO_RANK;
      let p = -1;
      for (let i = 0; i + 1 < n; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          p = i;
        }
      }
      if (p < 0) break;
      syms[p] = t[slots[p] + 3];
      // Drop symbol p+1 and pair p+1: shift the tails left by one.
      syms.copyWithin(p + 1, p + 2, n);
      ranks.copyWithin(p + 1, p + 2, n - 1);
      slots.copyWithin(p + 1, p + 2, n - 1);
      n--;
      if (p > 0) {
        const s = this.findSlot(syms[p - 1], syms[p]);
        slots[p - 1] = s;
        ranks[p - 1] = t[s] === -1 ? NO_RANK : t[s + 2];
      }
      if (p + 1 < n) {
        const s = this.findSlot(syms[p], syms[p + 1]);
        slots[p] = s;
        ranks[p] = t[s] === -1 ? NO_RANK : t[s + 2];
      }
    }
    return syms.slice(0, n);
  }

  /** Heap of rank·2³¹ + position (exact in a double), popped lowest first: lowest rank, then leftmost. */
  private mergeLong(syms: Int32Array, n: number): Int32Array {
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new MinHeap(n);
    const POS = 2 ** 31;
    for (let i = 0; i + 1 < n; i++) {
      const r = this.rankOf(syms[i], syms[i + 1]);
      if (r !== NO_RANK) heap.push(r * POS + i);
    }
    while (heap.size > 0) {
      const top = heap.pop();
      const pos = top % POS;
      const rank = (top - pos) / POS;
      const q = next[pos];
      if (syms[pos] < 0 || q < 0) continue;
      const slot = this.findSlot(syms[pos], syms[q]);
      if (this.table[slot] === -1 || this.table[slot + 2] !== rank) continue; // stale: a neighbour merged
      syms[pos] = this.table[slot + 3];
      syms[q] = -1;
      next[pos] = next[q];
      if (next[q] >= 0) prev[next[q]] = pos;
      const before = prev[pos];
      if (before >= 0) {
        const r = this.rankOf(syms[before], syms[pos]);
        if (r !== NO_RANK) heap.push(r * POS + before);
      }
      if (next[pos] >= 0) {
        const r = this.rankOf(syms[pos], syms[next[pos]]);
        if (r !== NO_RANK) heap.push(r * POS + pos);
      }
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push(syms[i]);
    return Int32Array.from(out);
  }
}

/** Binary min-heap of doubles. */
export class MinHeap {
  private data: Float64Array;
  size = 0;
  constructor(capacity = 16) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.size === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    const d = this.data;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (d[parent] <= v) break;
      d[i] = d[parent];
      i = parent;
    }
    d[i] = v;
  }
  pop(): number {
    const d = this.data;
    const top = d[0];
    const last = d[--this.size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.size) break;
      if (c + 1 < this.size && d[c + 1] < d[c]) c++;
      if (d[c] >= last) break;
      d[i] = d[c];
      i = c;
    }
    d[i] = last;
    return top;
  }
}
