/**
 * Attention over a KV cache, shared by the decoding paths of gpt.ts and llama.ts. A cache
 * (SequenceKV) holds per layer a token-major [capacity, KV·D] buffer of keys and one of values, so
 * the new tokens' rows are appended as they come out of the projections and the fused attention
 * kernel reads every head straight from them (its rowStrides): one kernel call per sequence and
 * layer, no head-split copies.
 */
import { backend } from '../backend/index.ts';
import type { SequenceKV } from './gpt.ts';

/** Rows of a projection: row i's head h starts at data[offset + i·stride + h·D]. */
export interface HeadRows {
  data: Float32Array;
  offset: number;
  stride: number;
}

/** What one cached layer needs: the caches, their lengths before this forward, the layer index. */
export interface CachedLayer {
  cache: readonly SequenceKV[];
  starts: readonly number[];
  layer: number;
}

/**
 * For each of the b sequences (t new tokens each; q, k, v rows r·t … r·t + t − 1): appends the
 * keys and values to the sequence's cache at rows starts[r] …, then attends its t queries (h heads
 * of d) over rows 0 … starts[r] + t − 1, causal and aligned to the end; query head j reads
 * key/value head ⌊j/(h/kvHeads)⌋. Writes out [b, t, h·d].
 * One new token sees every cached row, so with grouped-query heads the h/kvHeads query heads of a
 * group go through the kernel together as that many query rows against their K/V (read once).
 */
export function attendCached(q: HeadRows, k: HeadRows, v: HeadRows, out: Float32Array, b: number, t: number, h: number, kvHeads: number, d: number, ctx: CachedLayer): void {
  const width = kvHeads * d;
  const group = h / kvHeads;
  const lse = new Float32Array(Math.max(t * h, group));
  const scale = 1 / Math.sqrt(d);
  const be = backend();
  for (let r = 0; r < b; r++) {
    const kv = ctx.cache[r]!;
    const start = ctx.starts[r]!;
    const tk = start + t;
    const K = kv.keys[ctx.layer]!, V = kv.values[ctx.layer]!;
    for (let i = 0; i < t; i++) {
      const row = r * t + i;
      K.set(k.data.subarray(k.offset + row * k.stride, k.offset + row * k.stride + width), (start + i) * width);
      V.set(v.data.subarray(v.offset + row * v.stride, v.offset + row * v.stride + width), (start + i) * width);
    }
    const qAt = q.offset + r * t * q.stride;
    const outAt = r * t * h * d;
    if (t === 1 && group > 1) {
      for (let j = 0; j < kvHeads; j++) {
        const at = j * group * d;
        be.attention(q.data.subarray(qAt + at), K.subarray(j * d), V.subarray(j * d), out.subarray(outAt + at), lse,
          1, 1, group, tk, d, scale, false, null, false, 1, [d, width, d]);
      }
      continue;
    }
    be.attention(q.data.subarray(qAt), K, V, out.subarray(outAt), lse, 1, h, t, tk, d, scale, true, null, false, kvHeads, [q.stride, width, h * d]);
  }
}
