/**
 * Named model sizes. Parameter counts are for the default vocabulary of 8192 BPE tokens
 * (the embedding table is a large share of small models, so counts shift with the vocabulary).
 *
 *   GPT   tiny  ~1.3M  (4 layers, 128 dims, 4 heads, context 128)
 *         mini  ~5.3M  (4 layers, 256 dims, 4 heads, context 256)
 *         small ~23M   (6 layers, 512 dims, 8 heads, context 256)
 *   BERT  tiny  ~1.8M, mini ~5.9M, small ~24M (same body sizes, intermediate 4×hidden)
 *   Llama tiny  ~1.3M, mini ~5.3M, small ~23M (same body sizes; SwiGLU width ≈ 8/3·hidden, so its three
 *         matrices hold as many weights as GPT's two 4×hidden ones; no position table, RoPE instead)
 */
import type { GPTConfig } from './gpt.ts';
import type { BertConfig } from './bert.ts';
import type { LlamaConfig } from './llama.ts';

export type PresetName = 'tiny' | 'mini' | 'small';
export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'mini', 'small'];

interface Dims {
  layers: number;
  dims: number;
  heads: number;
  context: number;
}

const DIMS: Record<PresetName, Dims> = {
  tiny: { layers: 4, dims: 128, heads: 4, context: 128 },
  mini: { layers: 4, dims: 256, heads: 4, context: 256 },
  small: { layers: 6, dims: 512, heads: 8, context: 256 },
};

/** Overrides on top of a preset ("custom dims"); any field left out keeps the preset's value. */
export interface ModelOverrides {
  vocabSize?: number;
  layers?: number;
  dims?: number;
  heads?: number;
  context?: number;
  dropout?: number;
}

function resolveDims(preset: PresetName, o: ModelOverrides): Dims {
  const base = DIMS[preset];
  if (!base) throw new RangeError(`unknown preset "${String(preset)}" (expected one of ${PRESET_NAMES.join(', ')})`);
  const d: Dims = {
    layers: o.layers ?? base.layers,
    dims: o.dims ?? base.dims,
    heads: o.heads ?? base.heads,
    context: o.context ?? base.context,
  };
  for (const [k, v] of Object.entries(d)) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`model ${k} must be a positive integer, got ${v}`);
  }
  if (d.dims % d.heads !== 0) throw new RangeError(`model dims (${d.dims}) must be divisible by heads (${d.heads})`);
  return d;
}

/** A GPT-2 config (HF keys) for a preset, with optional overrides. */
export function gptPreset(preset: PresetName, o: ModelOverrides = {}): GPTConfig {
  const d = resolveDims(preset, o);
  const vocab = o.vocabSize ?? 8192;
  const p = o.dropout ?? 0;
  return {
    model_type: 'gpt2',
    vocab_size: vocab,
    n_positions: d.context,
    n_embd: d.dims,
    n_layer: d.layers,
    n_head: d.heads,
    n_inner: null,
    activation_function: 'gelu_new',
    resid_pdrop: p,
    embd_pdrop: p,
    attn_pdrop: 0,
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    bos_token_id: vocab - 1,
    eos_token_id: vocab - 1,
    tie_word_embeddings: true,
  };
}

/** A BERT config (HF keys) for a preset, with optional overrides. */
export function bertPreset(preset: PresetName, o: ModelOverrides = {}): BertConfig {
  const d = resolveDims(preset, o);
  const p = o.dropout ?? 0.1;
  return {
    model_type: 'bert',
    vocab_size: o.vocabSize ?? 8192,
    hidden_size: d.dims,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    intermediate_size: 4 * d.dims,
    hidden_act: 'gelu',
    hidden_dropout_prob: p,
    attention_probs_dropout_prob: 0,
    max_position_embeddings: Math.max(d.context, 512),
    type_vocab_size: 2,
    initializer_range: 0.02,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
  };
}

/**
 * A Llama config (HF LlamaConfig keys) for a preset: the same layers, width, heads and context as
 * GPT's, full multi-head attention (num_key_value_heads = heads), tied embeddings, rope_theta 10000.
 * Llama has no dropout; `dropout` overrides are not used.
 */
export function llamaPreset(preset: PresetName, o: ModelOverrides = {}): LlamaConfig {
  const d = resolveDims(preset, o);
  const vocab = o.vocabSize ?? 8192;
  return {
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: d.dims,
    // 8/3·hidden rounded up to a multiple of 32 (Llama rounds to 256; small models need finer steps).
    intermediate_size: Math.ceil((8 * d.dims) / 3 / 32) * 32,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.heads,
    hidden_act: 'silu',
    max_position_embeddings: d.context,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: true,
    attention_bias: false,
    mlp_bias: false,
    initializer_range: 0.02,
    bos_token_id: vocab - 1,
    eos_token_id: vocab - 1,
  };
}

/** Parameter count of a GPT config without building it (tied head counted once). */
export function gptParameterCount(c: GPTConfig): number {
  const e = c.n_embd;
  const inner = c.n_inner ?? 4 * e;
  const block = 2 * 2 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * inner + inner) + (inner * e + e);
  return c.vocab_size * e + c.n_positions * e + c.n_layer * block + 2 * e;
}
