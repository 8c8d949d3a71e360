/**
 * GPT-2 (GPT2LMHeadModel) in one file, read top to bottom like nanoGPT's model.py.
 * Parameter names, weight layouts (Conv1D stores [in, out]) and config keys follow Hugging Face,
 * so checkpoints load and save without renaming.
 */
import { Tensor, formatShape, noGrad } from '../tensor/tensor.ts';
import { add, reshape, permute, select0 } from '../tensor/ops.ts';
import { attention, attentionHeads, crossEntropy, dropout, gelu, matmul } from '../tensor/nn-ops.ts';
import { attendCached, type CachedLayer, type HeadRows } from './cached-attention.ts';
import { Rng } from '../util/random.ts';
import { Module, normalInit } from '../nn/module.ts';
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

/**
 * One sequence's keys and values for cached decoding (src/infer/kv-cache.ts allocates them): per
 * layer a token-major [capacity, H·D] buffer whose rows [0, length) hold the tokens already seen.
 */
export interface SequenceKV {
  readonly keys: readonly Float32Array[];
  readonly values: readonly Float32Array[];
  readonly capacity: number;
  length: number;
}

/** Options of the transformer body's forward. */
export interface GPTBodyOptions {
  /**
   * KV cache, one per batch row (distinct objects). Row b's T new tokens take positions
   * cache[b].length…+T−1, attend to that row's cached tokens and themselves, and their K/V are
   * appended; rows may hold different lengths. Runs without autograd.
   */
  cache?: readonly SequenceKV[];
  /** Called per layer with its attention probabilities p[b, h, i, j] (HF output_attentions), [B, H, T, Tk]. */
  onAttention?: (layer: number, probs: Float64Array, shape: readonly [number, number, number, number]) => void;
}

/** Per-forward state the blocks share: the caches, their lengths before this call, the hook. */
interface LayerContext {
  cache?: readonly SequenceKV[];
  starts?: readonly number[];
  onAttention?: GPTBodyOptions['onAttention'];
  layer: number;
}

/**
 * p_ij = softmax_j(q_i·k_j/√D) over j ≤ i + (tk − t) for one (row, head), q_i at q[i·qStride …] and
 * k_j at k[j·kStride …]: the non-fused path for the attention hook.
 */
function attentionProbs(q: ArrayLike<number>, k: ArrayLike<number>, t: number, tk: number, d: number, out: Float64Array, qStride = d, kStride = d): void {
  const scale = 1 / Math.sqrt(d);
  for (let i = 0; i < t; i++) {
    const last = i + tk - t;
    const row = out.subarray(i * tk, (i + 1) * tk);
    let max = -Infinity;
    for (let j = 0; j <= last; j++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot += q[i * qStride + e]! * k[j * kStride + e]!;
      row[j] = dot * scale;
      if (row[j]! > max) max = row[j]!;
    }
    let z = 0;
    for (let j = 0; j <= last; j++) z += (row[j] = Math.exp(row[j]! - max));
    for (let j = 0; j <= last; j++) row[j]! /= z;
    row.fill(0, last + 1);
  }
}

/**
 * A linear layer on a few rows (cached decoding). The backend's unpacked small-M GEMM (≤ 8 rows)
 * streams the weight once per call and is several times faster than its packed path there, and it
 * gives every row the same bits whatever the other rows (test/backend/gemm.test.ts pins it), so rows
 * go through it in chunks of 8 and a sequence decodes to the same bits alone or inside a batch.
 * More than 32 rows (a long prompt's prefill, always on its own) take the packed path.
 */
export function fewRows(layer: { forward(x: Tensor): Tensor }, x: Tensor): Tensor {
  const c = x.shape[x.ndim - 1]!;
  const rows = x.size / c;
  if (rows > 32) return layer.forward(x);
  let out: Tensor | null = null;
  for (let r = 0; r < rows; r += 8) {
    const m = Math.min(8, rows - r);
    const y = layer.forward(new Tensor(x.data.subarray(r * c, (r + m) * c), [m, c]));
    const n = y.shape[1]!;
    out ??= Tensor.empty([...x.shape.slice(0, -1), n], x.dtype);
    out.data.set(y.data, r * n);
  }
  return out!;
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
  forward(x: Tensor, ctx: LayerContext = { layer: 0 }): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const h = this.cfg.n_head;
    const d = c / h;
    if (ctx.cache) return fewRows(this.c_proj, this.cachedAttention(fewRows(this.c_attn, x), ctx as CachedLayer & LayerContext));
    const qkv = this.c_attn.forward(x); // [B, T, 3C]
    if (!ctx.onAttention) {
      // Training and full-sequence forward: the kernel reads q, k, v as column ranges of qkv and
      // writes the heads side by side, so no head-split copies.
      const cols = (offset: number) => ({ tensor: qkv, offset });
      return this.c_proj.forward(attentionHeads(cols(0), cols(c), cols(2 * c), { heads: h, headDim: d, causal: true }));
    }
    // [B, T, 3, H, D] → [3, B, H, T, D]: one copy, then q, k, v are views.
    const heads = permute(reshape(qkv, [b, t, 3, h, d]), [2, 0, 3, 1, 4]);
    const [q, k, v] = [select0(heads, 0), select0(heads, 1), select0(heads, 2)];
    const y = attention(q, k, v, { causal: true });
    const probs = new Float64Array(b * h * t * t);
    for (let bh = 0; bh < b * h; bh++) {
      const qh = q.data.subarray(bh * t * d, (bh + 1) * t * d);
      attentionProbs(qh, k.data.subarray(bh * t * d, (bh + 1) * t * d), t, t, d, probs.subarray(bh * t * t, (bh + 1) * t * t));
    }
    ctx.onAttention(ctx.layer, probs, [b, h, t, t]);
    return this.c_proj.forward(reshape(permute(y, [0, 2, 1, 3]), [b, t, c])); // re-assemble heads side by side
  }

  /** qkv [B, T, 3C] → [B, T, C]: appends k, v to each row's cache and attends over it (attendCached). */
  private cachedAttention(qkv: Tensor, ctx: CachedLayer & LayerContext): Tensor {
    const [b, t] = qkv.shape as [number, number, number];
    const c = this.cfg.n_embd, h = this.cfg.n_head, d = c / h;
    const y = Tensor.empty([b, t, c], qkv.dtype);
    const rows = (offset: number): HeadRows => ({ data: qkv.data as Float32Array, offset, stride: 3 * c });
    attendCached(rows(0), rows(c), rows(2 * c), y.data as Float32Array, b, t, h, h, d, ctx);
    if (ctx.onAttention) {
      // Rows of different lengths are right-aligned into one [B, H, T, Tk_max] array (zeros on the left).
      const tkMax = Math.max(...ctx.starts) + t;
      const out = new Float64Array(b * h * t * tkMax);
      for (let r = 0; r < b; r++) {
        const tk = ctx.starts[r]! + t;
        const keys = ctx.cache[r]!.keys[ctx.layer]!;
        for (let hh = 0; hh < h; hh++) {
          const p = new Float64Array(t * tk);
          attentionProbs(qkv.data.subarray(r * t * 3 * c + hh * d), keys.subarray(hh * d), t, tk, d, p, 3 * c, c);
          for (let row = 0; row < t; row++) out.set(p.subarray(row * tk, (row + 1) * tk), ((r * h + hh) * t + row) * tkMax + tkMax - tk);
        }
      }
      ctx.onAttention(ctx.layer, out, [b, h, t, tkMax]);
    }
    return y;
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
  forward(x: Tensor, fewRowsPath = false): Tensor {
    const act = this.cfg.activation_function ?? 'gelu_new';
    const proj = (l: Linear, y: Tensor) => (fewRowsPath ? fewRows(l, y) : l.forward(y));
    return proj(this.c_proj, gelu(proj(this.c_fc, x), act === 'gelu' ? 'erf' : 'tanh'));
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
  forward(x: Tensor, ctx: LayerContext = { layer: 0 }): Tensor {
    const p = this.cfg.resid_pdrop ?? 0;
    x = add(x, dropout(this.attn.forward(this.ln_1.forward(x), ctx), p, this.training, this.rng));
    return add(x, dropout(this.mlp.forward(this.ln_2.forward(x), ctx.cache !== undefined), p, this.training, this.rng));
  }
}

/** The transformer body: HF's GPT2Model (saved under the `transformer.` prefix). */
export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Block[];
  readonly ln_f: LayerNorm;
  /** The owning GPT's untied lm_head.weight (not a parameter of the body), for prompt heads; null when tied. */
  lmHead: Tensor | null = null;
  constructor(readonly cfg: GPTConfig, readonly rng: Rng) {
    super();
    const std = cfg.initializer_range ?? 0.02;
    this.wte = this.module('wte', new Embedding(cfg.vocab_size, cfg.n_embd, rng, std));
    this.wpe = this.module('wpe', new Embedding(cfg.n_positions, cfg.n_embd, rng, std));
    this.h = Array.from({ length: cfg.n_layer }, (_, i) => this.module(`h.${i}`, new Block(cfg, rng)));
    this.ln_f = this.module('ln_f', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon ?? 1e-5));
  }

  /** ids (B×T, row-major) → hidden states [B, T, C]; with `o.cache`, continuing each row's cached sequence. */
  forward(ids: Int32Array, b: number, t: number, o: GPTBodyOptions = {}): Tensor {
    if (ids.length !== b * t) throw new RangeError(`GPT2Model: ${ids.length} ids for batch ${b} × length ${t}`);
    const cache = o.cache;
    if (!cache) {
      if (t > this.cfg.n_positions) throw new RangeError(`GPT2Model: sequence length ${t} exceeds n_positions = ${this.cfg.n_positions}`);
      const pos = new Int32Array(t).map((_, i) => i);
      return this.body(add(this.wte.forward(ids, [b, t]), this.wpe.forward(pos, [t])), { layer: 0, onAttention: o.onAttention });
    }
    if (cache.length !== b) throw new RangeError(`GPT2Model: ${cache.length} caches for a batch of ${b}`);
    if (new Set(cache).size !== b) throw new RangeError('GPT2Model: a cache appears twice in one batch');
    if (!(this.wte.weight.data instanceof Float32Array)) throw new TypeError('GPT2Model: the KV-cache path needs float32 parameters');
    const starts = cache.map((c) => c.length);
    const pos = new Int32Array(b * t);
    cache.forEach((c, r) => {
      if (c.keys.length !== this.cfg.n_layer) throw new RangeError(`GPT2Model: cache ${r} has ${c.keys.length} layers, the model ${this.cfg.n_layer}`);
      const end = c.length + t;
      if (end > Math.min(c.capacity, this.cfg.n_positions)) {
        throw new RangeError(`GPT2Model: cache ${r} holds ${c.length} tokens; ${t} more exceed its capacity ${c.capacity} (n_positions = ${this.cfg.n_positions})`);
      }
      for (let i = 0; i < t; i++) pos[r * t + i] = c.length + i;
    });
    const vocab = this.cfg.vocab_size;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i]! >= 0 && ids[i]! < vocab)) throw new RangeError(`GPT2Model: token ${ids[i]} at ${i} is outside the vocabulary (size ${vocab})`);
    }
    return noGrad(() => {
      const hidden = this.body(add(this.wte.forward(ids, [b, t]), this.wpe.forward(pos, [b, t])), { layer: 0, cache, starts, onAttention: o.onAttention });
      cache.forEach((c, r) => { c.length = starts[r]! + t; });
      return hidden;
    });
  }

  private body(x: Tensor, ctx: LayerContext): Tensor {
    x = dropout(x, this.cfg.embd_pdrop ?? 0, this.training, this.rng);
    this.h.forEach((block, layer) => { x = block.forward(x, { ...ctx, layer }); });
    return this.ln_f.forward(x);
  }
}

export interface CausalLMOutput {
  logits: Tensor;
  loss: Tensor | null;
}

/** Options of GPT.forward: the body's (KV cache, attention hook) and the head's. */
export interface GPTForwardOptions extends GPTBodyOptions {
  /** Logits only at each row's last position: [B, 1, V] (decoding needs no others). */
  lastOnly?: boolean;
  /**
   * The LM head as wteᵀ ([C, V], e.g. transposedEmbedding in src/infer/kv-cache.ts), made once per
   * generation: for a few rows the row-major matrix streams faster than V dot products.
   */
  headT?: Float32Array;
}

/** GPT2LMHeadModel: the body plus a language-model head tied to the token embedding. */
export class GPT extends Module {
  readonly transformer: GPT2Model;
  /** HF's `lm_head.weight` [V, C] when `tie_word_embeddings` is false; null when the head is wte (GPT-2's default). */
  readonly lmHead: Tensor | null;
  constructor(readonly config: GPTConfig, seed = 0) {
    super();
    this.transformer = this.module('transformer', new GPT2Model(config, new Rng(seed)));
    this.transformer.lmHead = this.lmHead = config.tie_word_embeddings === false
      ? this.param('lm_head.weight', normalInit([config.vocab_size, config.n_embd], config.initializer_range ?? 0.02, this.transformer.rng))
      : null;
  }

  /** The output embedding [V, C]: lm_head.weight, or the input embedding when tied. */
  get outputEmbedding(): Tensor {
    return this.lmHead ?? this.transformer.wte.weight;
  }

  /**
   * Logits [B, T, V] for ids (B×T). With `labels` (B×T, -100 = ignore) the loss is the mean
   * next-token cross-entropy: position t predicts labels[t + 1], as HF shifts inside the model.
   * `o.cache` continues cached sequences (see GPTBodyOptions): the decoding path of src/infer.
   */
  forward(ids: Int32Array, b: number, t: number, labels?: Int32Array, o: GPTForwardOptions = {}): CausalLMOutput {
    let hidden = this.transformer.forward(ids, b, t, o);
    const c = this.config.n_embd;
    if (o.lastOnly && t > 1) {
      const last = Tensor.empty([b, 1, c], hidden.dtype);
      for (let r = 0; r < b; r++) last.data.set(hidden.data.subarray((r * t + t - 1) * c, (r * t + t) * c), r * c);
      hidden = last;
    }
    const project = (x: Tensor) => (o.headT ? matmul(x, new Tensor(o.headT, [c, this.config.vocab_size])) : matmul(x, this.outputEmbedding, { transB: true }));
    const logits = o.cache ? noGrad(() => fewRows({ forward: project }, hidden)) : project(hidden);
    if (!labels) return { logits, loss: null };
    if (o.lastOnly) throw new RangeError('GPT: labels need the logits of every position (lastOnly is set)');
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
