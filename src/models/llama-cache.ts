/**
 * The KV-cache decoding path of Llama-family models (src/models/llama.ts): checking the caches,
 * and grouped-query attention over them. A cache (SequenceKV, src/models/gpt.ts) holds per layer a
 * [KV, capacity, D] buffer for keys (RoPE already applied) and one for values: the key/value heads
 * are stored once, not repeated per query head, so a grouped-query model caches H/KV times less.
 */
import { Tensor } from '../tensor/tensor.ts';
import { backend } from '../backend/index.ts';
import type { SequenceKV } from './gpt.ts';

/** Per-forward state the cached layers share: the caches, their lengths before this call, the layer. */
export interface LlamaLayerContext {
  cache: readonly SequenceKV[];
  starts: readonly number[];
  layer: number;
}

/**
 * Checks one cache per row (distinct, with the model's layer count and room for t more tokens,
 * float32 weights) and returns each row's first new position: its cached length.
 */
export function ropePositions(cache: readonly SequenceKV[], b: number, t: number, layers: number, weight: Tensor): number[] {
  if (cache.length !== b) throw new RangeError(`LlamaModel: ${cache.length} caches for a batch of ${b}`);
  if (new Set(cache).size !== b) throw new RangeError('LlamaModel: a cache appears twice in one batch');
  if (!(weight.data instanceof Float32Array)) throw new TypeError('LlamaModel: the KV-cache path needs float32 parameters');
  return cache.map((c, r) => {
    if (c.keys.length !== layers) throw new RangeError(`LlamaModel: cache ${r} has ${c.keys.length} layers, the model ${layers}`);
    if (c.length + t > c.capacity) throw new RangeError(`LlamaModel: cache ${r} holds ${c.length} tokens; ${t} more exceed its capacity ${c.capacity}`);
    return c.length;
  });
}

/**
 * Appends k, v [B, KV, T, D] to each row's cache, then attends q [B, H, T, D] over the cached
 * columns (causal, aligned to the end), query head j reading key/value head ⌊j/(H/KV)⌋.
 * One new token (T = 1) sees every cached column, so the H/KV query heads of a group go through the
 * kernel together as H/KV query rows against their shared K/V (read once); a prefill goes head by head.
 */
export function cachedGroupedAttention(q: Tensor, k: Tensor, v: Tensor, ctx: LlamaLayerContext): Tensor {
  const [b, h, t, d] = q.shape as [number, number, number, number];
  const kvh = k.shape[1]!;
  const group = h / kvh;
  const y = Tensor.empty(q.shape, q.dtype);
  const lse = new Float32Array(Math.max(t, group));
  const scale = 1 / Math.sqrt(d);
  const be = backend();
  for (let r = 0; r < b; r++) {
    const kv = ctx.cache[r]!;
    const start = ctx.starts[r]!;
    const tk = start + t;
    const K = kv.keys[ctx.layer]!, V = kv.values[ctx.layer]!;
    for (let j = 0; j < kvh; j++) {
      const src = (r * kvh + j) * t * d;
      const base = j * kv.capacity * d;
      K.set(k.data.subarray(src, src + t * d), base + start * d);
      V.set(v.data.subarray(src, src + t * d), base + start * d);
      const kj = K.subarray(base, base + tk * d), vj = V.subarray(base, base + tk * d);
      if (t === 1) {
        const at = (r * h + j * group) * d;
        be.attention(q.data.subarray(at, at + group * d), kj, vj, y.data.subarray(at, at + group * d), lse, 1, 1, group, tk, d, scale, false, null, false);
        continue;
      }
      for (let hh = j * group; hh < (j + 1) * group; hh++) {
        const at = (r * h + hh) * t * d;
        be.attention(q.data.subarray(at, at + t * d), kj, vj, y.data.subarray(at, at + t * d), lse, 1, 1, t, tk, d, scale, true, null, false);
      }
    }
  }
  return y;
}

/** hidden [B, T, C] → [B, 1, C]: each row's last position (all that decoding needs logits for). */
export function lastPositions(hidden: Tensor): Tensor {
  const [b, t, c] = hidden.shape as [number, number, number];
  const last = Tensor.empty([b, 1, c], hidden.dtype);
  for (let r = 0; r < b; r++) last.data.set(hidden.data.subarray((r * t + t - 1) * c, (r * t + t) * c), r * c);
  return last;
}
