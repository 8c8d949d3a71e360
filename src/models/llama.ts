/**
 * Llama-family decoders (LlamaForCausalLM, Qwen2ForCausalLM) in one file, read top to bottom like
 * Hugging Face's modeling_llama.py: RMSNorm, rotary position embeddings (rotate_half convention,
 * optional llama3 frequency scaling), grouped-query attention, SwiGLU MLP, tied or untied head.
 * Parameter names and config keys are HF's, so checkpoints load and save without renaming.
 *
 * RMSNorm, RoPE and the SwiGLU gate are fused kernels (src/tensor/llama-ops.ts) and grouped-query
 * attention is the attention kernel reading shared K/V heads, on both backends, each with its backward.
 * Cached decoding (KV cache per sequence, src/infer) is the `cache` option; its helpers are in llama-cache.ts.
 */
import { z } from 'zod';
import { Tensor, formatShape, noGrad, type DType } from '../tensor/tensor.ts';
import { add, reshape } from '../tensor/ops.ts';
import { attentionHeads, crossEntropy, matmul } from '../tensor/nn-ops.ts';
import { rmsNorm, rope, rotaryTables, siluMul, type RotaryTables } from '../tensor/llama-ops.ts';
import { Rng } from '../util/random.ts';
import { Module, constantInit } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import { fewRows, shiftLabels, type CausalLMOutput, type SequenceKV } from './gpt.ts';
import { lastPositions, ropePositions } from './llama-cache.ts';
import { attendCached, type CachedLayer, type HeadRows } from './cached-attention.ts';

/** HF rope_scaling of type llama3 (Llama 3.1/3.2); `type` is the older spelling of `rope_type`. */
export interface Llama3RopeScaling {
  rope_type?: 'llama3';
  type?: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** Hugging Face LlamaConfig / Qwen2Config keys (the ones that change the computation). */
export interface LlamaConfig {
  model_type: 'llama' | 'qwen2';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Fewer than num_attention_heads: grouped-query attention (1: multi-query). Default: num_attention_heads. */
  num_key_value_heads?: number;
  /** Per-head width; real checkpoints may set it ≠ hidden_size / num_attention_heads. */
  head_dim?: number | null;
  hidden_act?: 'silu';
  max_position_embeddings: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  rope_scaling?: Llama3RopeScaling | null;
  tie_word_embeddings?: boolean;
  /** Llama: biases on q, k, v and o (Qwen2 always has q/k/v biases and never an o bias). */
  attention_bias?: boolean;
  mlp_bias?: boolean;
  initializer_range?: number;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
}

const positiveInt = z.number().int().positive();

const llama3RopeScalingSchema = z.looseObject({
  rope_type: z.literal('llama3').optional(),
  type: z.literal('llama3').optional(),
  factor: z.number().positive(),
  low_freq_factor: z.number().positive(),
  high_freq_factor: z.number().positive(),
  original_max_position_embeddings: positiveInt,
}).refine((s) => s.rope_type !== undefined || s.type !== undefined, { message: 'rope_type must be "llama3" (the only rope scaling supported)', path: ['rope_type'] })
  .refine((s) => s.high_freq_factor > s.low_freq_factor, { message: 'high_freq_factor must exceed low_freq_factor', path: ['high_freq_factor'] });

/** Validation of a LlamaConfig / Qwen2Config config.json (load.ts's parseAnyModelConfig); errors name the field. */
export const llamaConfigSchema = z.looseObject({
  model_type: z.enum(['llama', 'qwen2']),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullable().optional().transform((v) => v ?? undefined),
  head_dim: positiveInt.nullable().optional(),
  hidden_act: z.literal('silu', { error: 'only "silu" (SwiGLU) is supported' }).optional(),
  max_position_embeddings: positiveInt,
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.preprocess((v) => (v && typeof v === 'object' && (v as { rope_type?: unknown }).rope_type === 'default' ? null : v),
    llama3RopeScalingSchema.nullable().optional()),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  use_sliding_window: z.literal(false, { error: 'sliding-window attention is not supported' }).optional(),
  pretraining_tp: z.literal(1, { error: 'only pretraining_tp 1 is supported' }).optional(),
  initializer_range: z.number().positive().optional(),
  bos_token_id: z.number().int().nonnegative().nullable().optional(),
  eos_token_id: z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullable().optional(),
}).refine((c) => c.head_dim != null || c.hidden_size % c.num_attention_heads === 0, {
  message: 'hidden_size must be divisible by num_attention_heads (or head_dim given)', path: ['num_attention_heads'],
}).refine((c) => c.num_attention_heads % (c.num_key_value_heads ?? c.num_attention_heads) === 0, {
  message: 'num_attention_heads must be a multiple of num_key_value_heads', path: ['num_key_value_heads'],
}).refine((c) => (c.head_dim ?? c.hidden_size / c.num_attention_heads) % 2 === 0, {
  message: 'the head dimension must be even (rotary embeddings rotate pairs)', path: ['head_dim'],
});

export const headDimOf = (c: LlamaConfig): number => c.head_dim ?? c.hidden_size / c.num_attention_heads;
export const kvHeadsOf = (c: LlamaConfig): number => c.num_key_value_heads ?? c.num_attention_heads;
/** Which projections carry a bias: Qwen2 q/k/v; Llama all four when attention_bias. */
export function attentionBiases(c: LlamaConfig): { qkv: boolean; o: boolean } {
  return c.model_type === 'qwen2' ? { qkv: true, o: false } : { qkv: c.attention_bias ?? false, o: c.attention_bias ?? false };
}

/**
 * The rotary inverse frequencies θ^(−2i/d), i < d/2, as HF's ROPE_INIT_FUNCTIONS compute them;
 * with llama3 scaling, long wavelengths are divided by `factor`, short ones kept, and the band
 * between interpolated smoothly (_compute_llama3_parameters).
 */
export function ropeInvFreq(c: LlamaConfig): Float64Array {
  const d = headDimOf(c);
  const theta = c.rope_theta ?? 10000;
  const inv = new Float64Array(d / 2).map((_, i) => 1 / theta ** ((2 * i) / d));
  const s = c.rope_scaling;
  if (!s) return inv;
  const old = s.original_max_position_embeddings;
  const lowWavelen = old / s.low_freq_factor;
  const highWavelen = old / s.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / s.factor; // low frequencies: interpolated
    if (wavelen < highWavelen) return f; // high frequencies: kept
    const smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** RMSNorm: x·rsqrt(mean(x²) + eps)·w (one fused kernel, tensor/llama-ops.ts). */
export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', constantInit([dim], 1));
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  constructor(readonly cfg: LlamaConfig, rng: Rng) {
    super();
    const [c, h, kv, d] = [cfg.hidden_size, cfg.num_attention_heads, kvHeadsOf(cfg), headDimOf(cfg)];
    const std = cfg.initializer_range ?? 0.02;
    const bias = attentionBiases(cfg);
    this.q_proj = this.module('q_proj', new Linear(c, h * d, 'out_in', rng, { std, bias: bias.qkv }));
    this.k_proj = this.module('k_proj', new Linear(c, kv * d, 'out_in', rng, { std, bias: bias.qkv }));
    this.v_proj = this.module('v_proj', new Linear(c, kv * d, 'out_in', rng, { std, bias: bias.qkv }));
    this.o_proj = this.module('o_proj', new Linear(h * d, c, 'out_in', rng, { std, bias: bias.o }));
  }

  /** rot and positions (one per row of x's B×T): the RoPE tables and each token's position. */
  forward(x: Tensor, rot: RotaryTables, positions: Int32Array, ctx?: CachedLayer): Tensor {
    const [b, t] = x.shape as [number, number, number];
    const [h, kv, d] = [this.cfg.num_attention_heads, kvHeadsOf(this.cfg), headDimOf(this.cfg)];
    // Cached decoding runs the projections row-wise (fewRows): a row decodes the same alone or batched.
    const proj = (l: Linear, y: Tensor) => (ctx ? fewRows(l, y) : l.forward(y));
    const split = (y: Tensor, n: number) => reshape(y, [b, t, n, d]); // [B, T, n, D]: RoPE works row by row here
    const q = rope(split(proj(this.q_proj, x), h), rot, positions);
    const k = rope(split(proj(this.k_proj, x), kv), rot, positions);
    const v = proj(this.v_proj, x);
    // Query head j reads KV head ⌊j·KV/H⌋, in the cache (kept once per KV head, RoPE applied) or in
    // the attention kernel itself (grouped-query attention, no repeated K/V), which reads the heads
    // straight out of the projections' rows and writes them side by side (no head-split copies).
    if (!ctx) {
      const rows = (y: Tensor, n: number) => ({ tensor: reshape(y, [b, t, n * d]), offset: 0 });
      return this.o_proj.forward(attentionHeads(rows(q, h), rows(k, kv), { tensor: v, offset: 0 }, { heads: h, kvHeads: kv, headDim: d, causal: true, scale: 1 / Math.sqrt(d) }));
    }
    const y = Tensor.empty([b, t, h * d], q.dtype);
    const rows = (z: Tensor, n: number): HeadRows => ({ data: z.data as Float32Array, offset: 0, stride: n * d });
    attendCached(rows(q, h), rows(k, kv), rows(v, kv), y.data as Float32Array, b, t, h, kv, d, ctx);
    return proj(this.o_proj, y);
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(readonly cfg: LlamaConfig, rng: Rng) {
    super();
    const [c, inner] = [cfg.hidden_size, cfg.intermediate_size];
    const o = { std: cfg.initializer_range ?? 0.02, bias: cfg.mlp_bias ?? false };
    this.gate_proj = this.module('gate_proj', new Linear(c, inner, 'out_in', rng, o));
    this.up_proj = this.module('up_proj', new Linear(c, inner, 'out_in', rng, o));
    this.down_proj = this.module('down_proj', new Linear(inner, c, 'out_in', rng, o));
  }
  /** SwiGLU: down(silu(gate(x)) · up(x)). */
  forward(x: Tensor, fewRowsPath = false): Tensor {
    const proj = (l: Linear, y: Tensor) => (fewRowsPath ? fewRows(l, y) : l.forward(y));
    return proj(this.down_proj, siluMul(proj(this.gate_proj, x), proj(this.up_proj, x)));
  }
}

class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(cfg: LlamaConfig, rng: Rng) {
    super();
    const eps = cfg.rms_norm_eps ?? 1e-6;
    // Registration order = HF's state-dict order.
    this.self_attn = this.module('self_attn', new LlamaAttention(cfg, rng));
    this.mlp = this.module('mlp', new LlamaMLP(cfg, rng));
    this.input_layernorm = this.module('input_layernorm', new RMSNorm(cfg.hidden_size, eps));
    this.post_attention_layernorm = this.module('post_attention_layernorm', new RMSNorm(cfg.hidden_size, eps));
  }
  /** Pre-norm residual block. */
  forward(x: Tensor, rot: RotaryTables, positions: Int32Array, ctx?: CachedLayer): Tensor {
    x = add(x, this.self_attn.forward(this.input_layernorm.forward(x), rot, positions, ctx));
    return add(x, this.mlp.forward(this.post_attention_layernorm.forward(x), ctx !== undefined));
  }
}

/** The transformer body: HF's LlamaModel (saved under the `model.` prefix). */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: LlamaDecoderLayer[];
  readonly norm: RMSNorm;
  readonly invFreq: Float64Array;
  constructor(readonly cfg: LlamaConfig, rng: Rng) {
    super();
    this.embed_tokens = this.module('embed_tokens', new Embedding(cfg.vocab_size, cfg.hidden_size, rng, cfg.initializer_range ?? 0.02));
    this.layers = Array.from({ length: cfg.num_hidden_layers }, (_, i) => this.module(`layers.${i}`, new LlamaDecoderLayer(cfg, rng)));
    this.norm = this.module('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps ?? 1e-6));
    this.invFreq = ropeInvFreq(cfg);
  }

  private rot: RotaryTables | null = null;
  /** RoPE tables (HF's fp32 angles) covering positions 0…n−1, kept across calls and grown on demand. */
  private rotary(n: number, dtype: DType): RotaryTables {
    if (!this.rot || this.rot.positions < n || this.rot.dtype !== dtype) {
      this.rot = rotaryTables(this.invFreq, Math.max(n, this.rot?.dtype === dtype ? this.rot.positions : 0), dtype);
    }
    return this.rot;
  }

  /**
   * ids (B×T, row-major) at positions 0…T−1 → hidden states [B, T, C]. With `o.cache` (one
   * SequenceKV per row, as GPT2Model's): row r's tokens take positions cache[r].length…+T−1 (the
   * RoPE angles), attend to that row's cached keys and themselves, and are appended; no autograd.
   */
  forward(ids: Int32Array, b: number, t: number, o: LlamaBodyOptions = {}): Tensor {
    if (ids.length !== b * t) throw new RangeError(`LlamaModel: ${ids.length} ids for batch ${b} × length ${t}`);
    const vocab = this.cfg.vocab_size;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i]! >= 0 && ids[i]! < vocab)) throw new RangeError(`LlamaModel: token ${ids[i]} at ${i} is outside the vocabulary (size ${vocab})`);
    }
    const cache = o.cache;
    if (!cache) {
      let x = this.embed_tokens.forward(ids, [b, t]);
      const positions = Int32Array.from({ length: b * t }, (_, i) => i % t);
      const rot = this.rotary(t, x.dtype);
      for (const layer of this.layers) x = layer.forward(x, rot, positions);
      return this.norm.forward(x);
    }
    const starts = ropePositions(cache, b, t, this.cfg.num_hidden_layers, this.embed_tokens.weight);
    const positions = Int32Array.from({ length: b * t }, (_, i) => starts[Math.floor(i / t)]! + (i % t));
    return noGrad(() => {
      let x = this.embed_tokens.forward(ids, [b, t]);
      const rot = this.rotary(Math.max(...starts) + t, x.dtype);
      this.layers.forEach((layer, i) => { x = layer.forward(x, rot, positions, { cache, starts, layer: i }); });
      cache.forEach((c, r) => { c.length = starts[r]! + t; });
      return this.norm.forward(x);
    });
  }
}

/**
 * fp32 values per token kept for the backward pass (for the trainer's memory check), counted from
 * the ops above: per layer two RMSNorms (output + rstd), q/k/v projections, RoPE on q and k, the
 * head-split copies of q/k/v, the attention output (+ its log-sum-exp per head; the fused kernel keeps
 * no T×T scores) and its merged copy, o_proj, gate/up/siluMul, down_proj and the two residual sums;
 * then the final norm and the logits with their softmax (2·vocab). `seqLength` is kept for the
 * signature shared with GPT's estimate: nothing here grows with it.
 */
export function llamaActivationFloatsPerToken(c: LlamaConfig, seqLength: number): number {
  void seqLength;
  const [d, q, kv] = [c.hidden_size, c.num_attention_heads * headDimOf(c), kvHeadsOf(c) * headDimOf(c)];
  const perLayer = 2 * (d + 1) + (q + 2 * kv) + (q + kv) + (q + 2 * kv) + (q + c.num_attention_heads) + q + d + 3 * c.intermediate_size + d + 2 * d;
  return c.num_hidden_layers * perLayer + 2 * c.vocab_size + d;
}

/** Options of LlamaModel.forward: a KV cache per batch row (GPTBodyOptions' `cache`). */
export interface LlamaBodyOptions {
  cache?: readonly SequenceKV[];
}

/** Options of Llama.forward, GPT.forward's decoding options (see GPTForwardOptions). */
export interface LlamaForwardOptions extends LlamaBodyOptions {
  /** Logits only at each row's last position: [B, 1, V]. */
  lastOnly?: boolean;
  /** The LM head transposed, [C, V] (transposedHead in src/infer/kv-cache.ts), made once per generation. */
  headT?: Float32Array;
}

/** LlamaForCausalLM / Qwen2ForCausalLM: the body plus an LM head (`lm_head`, or embed_tokens when tied). */
export class Llama extends Module {
  readonly model: LlamaModel;
  readonly lm_head: Linear | null;
  constructor(readonly config: LlamaConfig, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.model = this.module('model', new LlamaModel(config, rng));
    this.lm_head = config.tie_word_embeddings
      ? null
      : this.module('lm_head', new Linear(config.hidden_size, config.vocab_size, 'out_in', rng, { std: config.initializer_range ?? 0.02, bias: false }));
  }

  /**
   * Logits [B, T, V] for ids (B×T). With `labels` (B×T, -100 = ignore) the loss is the mean
   * cross-entropy of logits[:, :−1] against labels[:, 1:], as HF shifts inside the model.
   * `o.cache` continues cached sequences (the decoding path of src/infer, as GPT.forward's).
   */
  forward(ids: Int32Array, b: number, t: number, labels?: Int32Array, o: LlamaForwardOptions = {}): CausalLMOutput {
    let hidden = this.model.forward(ids, b, t, o);
    if (o.lastOnly && t > 1) hidden = lastPositions(hidden);
    const [c, v] = [this.config.hidden_size, this.config.vocab_size];
    const project = (x: Tensor) => (o.headT ? matmul(x, new Tensor(o.headT, [c, v]))
      : this.lm_head ? this.lm_head.forward(x) : matmul(x, this.model.embed_tokens.weight, { transB: true }));
    const logits = o.cache ? noGrad(() => fewRows({ forward: project }, hidden)) : project(hidden);
    if (!labels) return { logits, loss: null };
    if (o.lastOnly) throw new RangeError('Llama: labels need the logits of every position (lastOnly is set)');
    if (labels.length !== b * t) throw new RangeError(`Llama: labels have ${labels.length} entries, expected ${formatShape([b, t])}`);
    return { logits, loss: crossEntropy(logits, shiftLabels(labels, b, t)) };
  }
}
