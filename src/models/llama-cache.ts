/**
 * The KV-cache decoding path of Llama-family models (src/models/llama.ts): checking the caches
 * and taking the last positions; the attention over them is cached-attention.ts's. A cache holds
 * keys with RoPE already applied, and the key/value heads once, not repeated per query head, so a
 * grouped-query model caches H/KV times less.
 */
import { Tensor } from '../tensor/tensor.ts';
import type { SequenceKV } from './gpt.ts';

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

/** hidden [B, T, C] → [B, 1, C]: each row's last position (all that decoding needs logits for). */
export function lastPositions(hidden: Tensor): Tensor {
  const [b, t, c] = hidden.shape as [number, number, number];
  const last = Tensor.empty([b, 1, c], hidden.dtype);
  for (let r = 0; r < b; r++) last.data.set(hidden.data.subarray((r * t + t - 1) * c, (r * t + t) * c), r * c);
  return last;
}
