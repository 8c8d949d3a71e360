/**
 * Key/value cache buffers for decoding a GPT or a Llama-family model. The math that reads and
 * appends them is the model's own forward (GPT.forward / Llama.forward with `cache`); this file only
 * allocates and sizes them.
 *
 * One KVCache holds one sequence: per layer a [capacity, H·D] buffer for K and one for V (H = the
 * key/value heads: a grouped-query Llama caches each of them once), rows [0, length) filled. Token-major
 * rows are what the projections produce and what the attention kernel reads (its rowStrides), so a
 * decoding step appends one row per layer and attends over all heads in one call.
 * A batch is an array of caches, so sequences of different lengths decode together (continuous
 * batching) and each keeps exactly what it would see alone. The buffers may start small and grow
 * (reserve) up to maxCapacity: a Llama's context is often 8k–128k tokens, far more than a chat needs.
 */
import { backend } from '../backend/index.ts';
import type { GPT, SequenceKV } from '../models/gpt.ts';
import { Llama, headDimOf, kvHeadsOf } from '../models/llama.ts';
import { contextLength } from '../models/heads.ts';

/** The causal LMs the decoder runs: both take `cache`, `lastOnly` and `headT` in forward. */
export type CausalDecoder = GPT | Llama;

/** The longest sequence a decoder takes: GPT-2's n_positions, a Llama's max_position_embeddings. */
export function decoderContext(model: CausalDecoder): number {
  return contextLength(model.config);
}

export class KVCache implements SequenceKV {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** Filled columns: the position the next token takes. */
  length = 0;
  private allocated: number;

  /** Buffers of `initial` columns (default: all of `maxCapacity`), grown by reserve() up to maxCapacity. */
  constructor(readonly layers: number, readonly heads: number, readonly headDim: number, readonly maxCapacity: number, initial = maxCapacity) {
    if (!(Number.isInteger(maxCapacity) && maxCapacity > 0)) throw new RangeError(`KVCache: capacity must be a positive integer, got ${maxCapacity}`);
    if (!(Number.isInteger(initial) && initial > 0 && initial <= maxCapacity)) throw new RangeError(`KVCache: initial capacity must be an integer in [1, ${maxCapacity}], got ${initial}`);
    this.allocated = initial;
    const n = heads * initial * headDim;
    this.keys = Array.from({ length: layers }, () => new Float32Array(n));
    this.values = Array.from({ length: layers }, () => new Float32Array(n));
  }

  /**
   * A cache for one sequence of up to `capacity` tokens (default: the model's context), allocated
   * `initial` columns at first (default: all of them).
   */
  static forModel(model: CausalDecoder, capacity = decoderContext(model), initial = capacity): KVCache {
    const context = decoderContext(model);
    if (capacity > context) throw new RangeError(`KVCache: capacity ${capacity} exceeds the model's context of ${context} tokens`);
    if (model instanceof Llama) return new KVCache(model.config.num_hidden_layers, kvHeadsOf(model.config), headDimOf(model.config), capacity, Math.min(initial, capacity));
    const c = model.config;
    return new KVCache(c.n_layer, c.n_head, c.n_embd / c.n_head, capacity, Math.min(initial, capacity));
  }

  /** Rows (tokens) the buffers hold now. */
  get capacity(): number {
    return this.allocated;
  }

  /**
   * Makes room for `tokens` rows: the buffers grow to max(tokens, 2 × now), at most maxCapacity,
   * keeping the filled rows. Doubling keeps the copying linear in the sequence length.
   */
  reserve(tokens: number): void {
    if (tokens <= this.allocated) return;
    if (tokens > this.maxCapacity) throw new RangeError(`KVCache: ${tokens} tokens exceed its capacity ${this.maxCapacity}`);
    const next = Math.min(this.maxCapacity, Math.max(tokens, 2 * this.allocated));
    const width = this.heads * this.headDim;
    const grow = (old: Float32Array): Float32Array => {
      const out = new Float32Array(next * width);
      out.set(old.subarray(0, this.length * width));
      return out;
    };
    for (let l = 0; l < this.layers; l++) {
      this.keys[l] = grow(this.keys[l]!);
      this.values[l] = grow(this.values[l]!);
    }
    this.allocated = next;
  }

  reset(): void {
    this.length = 0;
  }

  /** Bytes held by the K and V buffers. */
  get bytes(): number {
    return 2 * this.layers * this.keys[0]!.byteLength;
  }
}

/**
 * The LM head's matrix transposed, C×V, for decoding steps (the forward options' headT): lm_headᵀ,
 * or the token embedding's transpose when the head is tied (GPT-2's wte, a Llama's embed_tokens).
 * Make it once per generation.
 */
export function transposedHead(model: CausalDecoder): Float32Array {
  const v = model.config.vocab_size;
  const weight = model instanceof Llama ? (model.lm_head ?? model.model.embed_tokens).weight : model.outputEmbedding;
  const c = weight.shape[1]!;
  const w = weight.data;
  if (!(w instanceof Float32Array)) throw new TypeError('transposedHead: cached inference needs float32 parameters');
  const out = new Float32Array(v * c);
  backend().permute(w, out, [v, c], [1, 0], false);
  return out;
}
