/**
 * GPT-2 (GPT2LMHeadModel) in one file, read top to bottom like nanoGPT's model.py.
 * Parameter names, weight layouts (Conv1D stores [in, out]) and config keys follow Hugging Face,
 * so checkpoints load and save without renaming.
 */
import { Tensor, formatShape } from '../tensor/tensor.ts';
import { add, reshape, permute, select0 } from '../tensor/ops.ts';
import { attention, crossEntropy, dropout, gelu, matmul } from '../tensor/nn-ops.ts';
import { Rng } from '../tensor/random.ts';
import { Module } from '../nn/module.ts';
import { Embedding, LayerNorm, Linear } from '../nn/layers.ts';

/** Hugging Face GPT2Config keys. */
export interface GPTConfig {
  model_type: 'gpt2';
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  activation_function?: string;
  resid_pdrop?: number;
  embd_pdrop?: number;
  /** Attention-probability dropout is not applied by the fused attention kernel (treated as 0). */
  attn_pdrop?: number;
  layer_norm_epsilon?: number;
  initializer_range?: number;
  bos_token_id?: number;
  eos_token_id?: number;
  tie_word_embeddings?: boolean;
}

class CausalSelfAttention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;
  constructor(readonly cfg: GPTConfig, rng: Rng) {
    super();
    const c = cfg.n_embd;
    const std = cfg.initializer_range ?? 0.02;
    this.c_attn = this.module('c_attn', new Linear(c, 3 * c, 'in_out', rng, { std }));
    // GPT-2 scales the init of residual projections by 1/√(2·n_layer).
    this.c_proj = this.module('c_proj', new Linear(c, c, 'in_out', rng, { std: std / Math.sqrt(2 * cfg.n_layer) }));
  }
  forward(x: Tensor): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const h = this.cfg.n_head;
    const qkv = this.c_attn.forward(x); // [B, T, 3C]
    // [B, T, 3, H, D] → [3, B, H, T, D]: one copy, then q, k, v are views.
    const heads = permute(reshape(qkv, [b, t, 3, h, c / h]), [2, 0, 3, 1, 4]);
    const y = attention(select0(heads, 0), select0(heads, 1), select0(heads, 2), { causal: true });
    const merged = reshape(permute(y, [0, 2, 1, 3]), [b, t, c]); // re-assemble heads side by side
    return this.c_proj.forward(merged);
  }
}

class MLP extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  constructor(readonly cfg: GPTConfig, rng: Rng) {
    super();
    const c = cfg.n_embd;
    const inner = cfg.n_inner ?? 4 * c;
    const std = cfg.initializer_range ?? 0.02;
    this.c_fc = this.module('c_fc', new Linear(c, inner, 'in_out', rng, { std }));
    this.c_proj = this.module('c_proj', new Linear(inner, c, 'in_out', rng, { std: std / Math.sqrt(2 * cfg.n_layer) }));
  }
  forward(x: Tensor): Tensor {
    const act = this.cfg.activation_function ?? 'gelu_new';
    return this.c_proj.forward(gelu(this.c_fc.forward(x), act === 'gelu' ? 'erf' : 'tanh'));
  }
}

class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP;
  constructor(readonly cfg: GPTConfig, private readonly rng: Rng) {
    super();
    const eps = cfg.layer_norm_epsilon ?? 1e-5;
    this.ln_1 = this.module('ln_1', new LayerNorm(cfg.n_embd, eps));
    this.attn = this.module('attn', new CausalSelfAttention(cfg, rng));
    this.ln_2 = this.module('ln_2', new LayerNorm(cfg.n_embd, eps));
    this.mlp = this.module('mlp', new MLP(cfg, rng));
  }
  forward(x: Tensor): Tensor {
    const p = this.cfg.resid_pdrop ?? 0;
    x = add(x, dropout(this.attn.forward(this.ln_1.forward(x)), p, this.training, this.rng));
    return add(x, dropout(this.mlp.forward(this.ln_2.forward(x)), p, this.training, this.rng));
  }
}

/** The transformer body: HF's GPT2Model (saved under the `transformer.` prefix). */
export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Block[];
  readonly ln_f: LayerNorm;
  constructor(readonly cfg: GPTConfig, readonly rng: Rng) {
    super();
    const std = cfg.initializer_range ?? 0.02;
    this.wte = this.module('wte', new Embedding(cfg.vocab_size, cfg.n_embd, rng, std));
    this.wpe = this.module('wpe', new Embedding(cfg.n_positions, cfg.n_embd, rng, std));
    this.h = Array.from({ length: cfg.n_layer }, (_, i) => this.module(`h.${i}`, new Block(cfg, rng)));
    this.ln_f = this.module('ln_f', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon ?? 1e-5));
  }

  /** ids (B×T, row-major) → hidden states [B, T, C]. `positionOffset` supports a KV cache later. */
  forward(ids: Int32Array, b: number, t: number, positionOffset = 0): Tensor {
    if (ids.length !== b * t) throw new RangeError(`GPT2Model: ${ids.length} ids for batch ${b} × length ${t}`);
    if (positionOffset + t > this.cfg.n_positions) {
      throw new RangeError(`GPT2Model: sequence length ${positionOffset + t} exceeds n_positions = ${this.cfg.n_positions}`);
    }
    const pos = new Int32Array(t).map((_, i) => i + positionOffset);
    let x = add(this.wte.forward(ids, [b, t]), this.wpe.forward(pos, [t]));
    x = dropout(x, this.cfg.embd_pdrop ?? 0, this.training, this.rng);
    for (const block of this.h) x = block.forward(x);
    return this.ln_f.forward(x);
  }
}

export interface CausalLMOutput {
  logits: Tensor;
  loss: Tensor | null;
}

/** GPT2LMHeadModel: the body plus a language-model head tied to the token embedding. */
export class GPT extends Module {
  readonly transformer: GPT2Model;
  constructor(readonly config: GPTConfig, seed = 0) {
    super();
    this.transformer = this.module('transformer', new GPT2Model(config, new Rng(seed)));
  }

  /**
   * Logits [B, T, V] for ids (B×T). With `labels` (B×T, -100 = ignore) the loss is the mean
   * next-token cross-entropy: position t predicts labels[t + 1], as HF shifts inside the model.
   */
  forward(ids: Int32Array, b: number, t: number, labels?: Int32Array): CausalLMOutput {
    const hidden = this.transformer.forward(ids, b, t);
    const logits = matmul(hidden, this.transformer.wte.weight, { transB: true });
    if (!labels) return { logits, loss: null };
    if (labels.length !== b * t) throw new RangeError(`GPT: labels have ${labels.length} entries, expected ${formatShape([b, t])}`);
    return { logits, loss: crossEntropy(logits, shiftLabels(labels, b, t)) };
  }
}

/** labels[b, t+1] at position t, -100 at the last position of each row. */
export function shiftLabels(labels: Int32Array, b: number, t: number): Int32Array {
  const shifted = new Int32Array(b * t).fill(-100);
  for (let r = 0; r < b; r++) shifted.set(labels.subarray(r * t + 1, (r + 1) * t), r * t);
  return shifted;
}
