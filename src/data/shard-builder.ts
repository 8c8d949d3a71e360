/** The documents of one split of `primer data prepare`, collected until they are written as a shard (shards.ts). */
import { writeShard, type ShardEntry } from './shards.ts';

/** A growable typed buffer. */
export class Grow {
  data: Int32Array;
  length = 0;
  constructor(capacity = 1 << 12) {
    this.data = new Int32Array(capacity);
  }
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    let cap = this.data.length;
    while (cap < this.length + extra) cap *= 2;
    const next = new Int32Array(cap);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number): void {
    this.reserve(1);
    this.data[this.length++] = v;
  }
  append(a: ArrayLike<number>): void {
    this.reserve(a.length);
    this.data.set(a, this.length);
    this.length += a.length;
  }
}

/** The documents of one split waiting for their shard. */
export class ShardBuilder {
  tokens = new Grow(1 << 16);
  docOffsets: number[] = [0];
  docSegments: number[] = [0];
  segOffsets: number[] = [0];
  hashes: number[] = [];
  add(tokens: Int32Array, segmentEnds: readonly number[], hash: number): void {
    const base = this.tokens.length;
    this.tokens.append(tokens);
    for (const e of segmentEnds) this.segOffsets.push(base + e);
    this.docOffsets.push(this.tokens.length);
    this.docSegments.push(this.segOffsets.length - 1);
    this.hashes.push(hash);
  }
  get documents(): number {
    return this.hashes.length;
  }
  write(dir: string, name: string, dtype: 'uint16' | 'uint32', durable: boolean): ShardEntry {
    const ids = this.tokens.data.subarray(0, this.tokens.length);
    const tokens = dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids);
    const bytes = writeShard(dir, name, {
      tokens, docOffsets: Uint32Array.from(this.docOffsets), docSegments: Uint32Array.from(this.docSegments), segOffsets: Uint32Array.from(this.segOffsets),
    }, Float64Array.from(this.hashes), durable);
    const entry: ShardEntry = { name, split: name.startsWith('val') ? 'val' : 'train', documents: this.documents, segments: this.segOffsets.length - 1, tokens: ids.length, bytes };
    this.tokens = new Grow(1 << 16);
    this.docOffsets = [0];
    this.docSegments = [0];
    this.segOffsets = [0];
    this.hashes = [];
    return entry;
  }
}
