/**
 * Key/value cache buffers for GPT decoding. The math that reads and appends them is the model's own
 * forward (GPT.forward with `cache`, src/models/gpt.ts); this file only allocates and sizes them.
 *
 * One KVCache holds one sequence: per layer a [H, capacity, D] buffer for K and one for V, with
 * columns [0, length) filled. A batch is an array of caches, so sequences of different lengths decode
 * together (continuous batching) and each keeps exactly what it would see alone.
 */
import { backend } from '../backend/index.ts';
import type { GPT, SequenceKV } from '../models/gpt.ts';

export class KVCache implements SequenceKV {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** Filled columns: the position the next token takes. */
  length = 0;

  constructor(readonly layers: number, readonly heads: number, readonly headDim: number, readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`KVCache: capacity must be a positive integer, got ${capacity}`);
    const n = heads * capacity * headDim;
    this.keys = Array.from({ length: layers }, () => new Float32Array(n));
    this.values = Array.from({ length: layers }, () => new Float32Array(n));
  }

  /** A cache for one sequence of up to `capacity` tokens (default: the model's context). */
  static forModel(model: GPT, capacity = model.config.n_positions): KVCache {
    const c = model.config;
    if (capacity > c.n_positions) throw new RangeError(`KVCache: capacity ${capacity} exceeds n_positions = ${c.n_positions}`);
    return new KVCache(c.n_layer, c.n_head, c.n_embd / c.n_head, capacity);
  }

  reset(): void {
    this.length = 0;
  }

  /** Bytes held by the K and V buffers. */
  get bytes(): number {
    return 2 * this.layers * this.keys[0]!.byteLength;
  }
}

/** wteᵀ (C×V) for the LM head of decoding steps (GPTForwardOptions.headT); make it once per generation. */
export function transposedEmbedding(model: GPT): Float32Array {
  const { vocab_size: v, n_embd: c } = model.config;
  const w = model.transformer.wte.weight.data;
  if (!(w instanceof Float32Array)) throw new TypeError('transposedEmbedding: cached inference needs float32 parameters');
  const out = new Float32Array(v * c);
  backend().permute(w, out, [v, c], [1, 0], false);
  return out;
}
