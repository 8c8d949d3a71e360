/**
 * BERT (BertForPreTraining) in one file: embeddings with token types, post-LayerNorm encoder,
 * pooler, masked-LM head tied to the word embeddings, and the next-sentence head.
 * Parameter names and config keys follow Hugging Face; LayerNorm eps 1e-12, exact (erf) GELU.
 */
import { Tensor } from '../tensor/tensor.ts';
import { add, concat, reshape, slice } from '../tensor/ops.ts';
import { attentionHeads, crossEntropy, dropout, embedding, gelu, linear, matmul, tanh, type HeadColumns } from '../tensor/nn-ops.ts';
import { Rng } from '../util/random.ts';
import { Module, ModuleDict, constantInit } from '../nn/module.ts';
import { Embedding, LayerNorm, Linear } from '../nn/layers.ts';
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';

/** Hugging Face BertConfig keys. */
export interface BertConfig {
  model_type: 'bert';
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act?: string;
  hidden_dropout_prob?: number;
  /** Attention-probability dropout is not applied by the fused attention kernel (treated as 0). */
  attention_probs_dropout_prob?: number;
  max_position_embeddings: number;
  type_vocab_size?: number;
  initializer_range?: number;
  layer_norm_eps?: number;
  pad_token_id?: number;
  /**
   * 'absolute' (default): learned position embeddings added to the input. 'relative_key' (Shaw et al.
   * 2018, HF's BertSelfAttention): no absolute positions; each layer learns one vector per distance
   * i − j and adds q_i · d_{i−j} to the attention logits, so a head can attend to a fixed neighbour
   * from any query — the locality a masked position needs (BENCHMARKS.md, "BERT", session 12).
   */
  position_embedding_type?: 'absolute' | 'relative_key';
}

/** One batch: B×T row-major ids; token types and attention mask (1 = real token) optional. */
export interface BertInputs {
  inputIds: Int32Array;
  batch: number;
  length: number;
  tokenTypeIds?: Int32Array;
  attentionMask?: Uint8Array;
}

const eps = (c: BertConfig) => c.layer_norm_eps ?? 1e-12;
const std = (c: BertConfig) => c.initializer_range ?? 0.02;
const relative = (c: BertConfig) => c.position_embedding_type === 'relative_key';
const act = (c: BertConfig, x: Tensor) => gelu(x, c.hidden_act === 'gelu_new' ? 'tanh' : 'erf');

class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  constructor(readonly cfg: BertConfig, readonly rng: Rng) {
    super();
    this.word_embeddings = this.module('word_embeddings', new Embedding(cfg.vocab_size, cfg.hidden_size, rng, std(cfg)));
    this.position_embeddings = this.module('position_embeddings', new Embedding(cfg.max_position_embeddings, cfg.hidden_size, rng, std(cfg)));
    this.token_type_embeddings = this.module('token_type_embeddings', new Embedding(cfg.type_vocab_size ?? 2, cfg.hidden_size, rng, std(cfg)));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(cfg.hidden_size, eps(cfg)));
  }
  forward(x: BertInputs): Tensor {
    const { batch: b, length: t } = x;
    if (t > this.cfg.max_position_embeddings) {
      throw new RangeError(`BERT: sequence length ${t} exceeds max_position_embeddings = ${this.cfg.max_position_embeddings}`);
    }
    const types = x.tokenTypeIds ?? new Int32Array(b * t);
    const pos = new Int32Array(t).map((_, i) => i);
    let e = add(this.word_embeddings.forward(x.inputIds, [b, t]), this.token_type_embeddings.forward(types, [b, t]));
    if (!relative(this.cfg)) e = add(e, this.position_embeddings.forward(pos, [t]));
    return dropout(this.LayerNorm.forward(e), this.cfg.hidden_dropout_prob ?? 0, this.training, this.rng);
  }
}

/**
 * HF's relative_key attention: softmax((q·kᵀ + q·d_{i−j}) / √D + mask) · v, with q [B, T, H·D], k and v
 * head columns of token-major rows, and the layer's distance table [2·maxPos − 1, D] (row i − j + maxPos − 1).
 * One GEMM scores every query head against the 2T − 1 distances this length uses: q's rows hold the
 * heads side by side, so q viewed as [B·T·H, D] times the table's window ᵀ is R [B·T·H, 2T − 1] with
 * row (b, i, h), entry i − j + T − 1 = q_i·d_{i−j} — no permute. The fused attention kernel adds each
 * (i, j)'s entry to its score tiles and returns dR, which the GEMM's backward turns into dq and the
 * table's gradient.
 */
function relativeKeyAttention(q: Tensor, k: HeadColumns, v: HeadColumns, distances: Tensor, heads: number, keyMask: Uint8Array | null): Tensor {
  const [b, t, c] = q.shape as [number, number, number];
  const d = c / heads;
  const maxPos = (distances.shape[0]! + 1) / 2;
  const relative = matmul(reshape(q, [b * t * heads, d]), slice(distances, 0, maxPos - t, maxPos + t - 1), { transB: true });
  return attentionHeads({ tensor: q, offset: 0 }, k, v, { heads, headDim: d, keyMask, relative });
}

class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly distance_embedding: Embedding | null = null;
  constructor(readonly cfg: BertConfig, rng: Rng) {
    super();
    const c = cfg.hidden_size;
    this.query = this.module('query', new Linear(c, c, 'out_in', rng, { std: std(cfg) }));
    this.key = this.module('key', new Linear(c, c, 'out_in', rng, { std: std(cfg) }));
    this.value = this.module('value', new Linear(c, c, 'out_in', rng, { std: std(cfg) }));
    if (relative(cfg)) {
      const rows = 2 * cfg.max_position_embeddings - 1;
      this.distance_embedding = this.module('distance_embedding', new Embedding(rows, c / cfg.num_attention_heads, rng, std(cfg)));
    }
  }
  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    const c = x.shape[2]!;
    const h = this.cfg.num_attention_heads;
    const layers = [this.query, this.key, this.value];
    // The attention kernel reads the heads straight out of the projections' rows (no head-split copies).
    // Layers with the plain forward share one GEMM (the HF weights stacked): their outputs are column
    // ranges of its [B, T, n·C] rows. LoRA replaces a layer's forward, which then runs on its own.
    const plain = (l: Linear) => l.forward === Linear.prototype.forward && l.bias !== null;
    const project = (ls: Linear[]): HeadColumns[] => {
      if (ls.length < 2 || !ls.every(plain)) return ls.map((l) => ({ tensor: l.forward(x), offset: 0 }));
      const y = linear(x, concat(ls.map((l) => l.weight), 0), concat(ls.map((l) => l.bias!), 0), 'out_in');
      return ls.map((_, i) => ({ tensor: y, offset: i * c }));
    };
    if (this.distance_embedding) {
      // q must be a tensor of its own: the distance scores view it as [B·T·H, D]
      const q = this.query.forward(x);
      const [k, v] = project([this.key, this.value]) as [HeadColumns, HeadColumns];
      return relativeKeyAttention(q, k, v, this.distance_embedding.weight, h, keyMask);
    }
    const [q, k, v] = project(layers) as [HeadColumns, HeadColumns, HeadColumns];
    return attentionHeads(q, k, v, { heads: h, headDim: c / h, keyMask });
  }
}

/** dense → dropout → LayerNorm(x + residual): BERT's post-LN sub-layer output. */
class BertOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  constructor(readonly cfg: BertConfig, inDim: number, rng: Rng, private readonly drop: Rng) {
    super();
    this.dense = this.module('dense', new Linear(inDim, cfg.hidden_size, 'out_in', rng, { std: std(cfg) }));
    this.LayerNorm = this.module('LayerNorm', new LayerNorm(cfg.hidden_size, eps(cfg)));
  }
  forward(x: Tensor, residual: Tensor): Tensor {
    const y = dropout(this.dense.forward(x), this.cfg.hidden_dropout_prob ?? 0, this.training, this.drop);
    return this.LayerNorm.forward(add(y, residual));
  }
}

class BertLayer extends Module {
  readonly attentionSelf: BertSelfAttention;
  readonly attentionOutput: BertOutput;
  readonly intermediate: Linear;
  readonly output: BertOutput;
  constructor(readonly cfg: BertConfig, rng: Rng) {
    super();
    const attn = this.module('attention', new ModuleDict());
    this.attentionSelf = attn.add('self', new BertSelfAttention(cfg, rng));
    this.attentionOutput = attn.add('output', new BertOutput(cfg, cfg.hidden_size, rng, rng));
    const inter = this.module('intermediate', new ModuleDict());
    this.intermediate = inter.add('dense', new Linear(cfg.hidden_size, cfg.intermediate_size, 'out_in', rng, { std: std(cfg) }));
    this.output = this.module('output', new BertOutput(cfg, cfg.intermediate_size, rng, rng));
  }
  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    const a = this.attentionOutput.forward(this.attentionSelf.forward(x, keyMask), x);
    return this.output.forward(act(this.cfg, this.intermediate.forward(a)), a);
  }
}

/** HF's BertModel (saved under the `bert.` prefix): embeddings, encoder, pooler. */
export class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly layers: BertLayer[];
  readonly pooler: Linear;
  constructor(readonly cfg: BertConfig, rng: Rng) {
    super();
    this.embeddings = this.module('embeddings', new BertEmbeddings(cfg, rng));
    this.layers = Array.from({ length: cfg.num_hidden_layers }, (_, i) => this.module(`encoder.layer.${i}`, new BertLayer(cfg, rng)));
    const pooler = this.module('pooler', new ModuleDict());
    this.pooler = pooler.add('dense', new Linear(cfg.hidden_size, cfg.hidden_size, 'out_in', rng, { std: std(cfg) }));
  }
  /** Returns the last hidden state [B, T, C] and the pooled [CLS] vector [B, C]. */
  forward(x: BertInputs): { lastHiddenState: Tensor; pooledOutput: Tensor } {
    const keyMask = x.attentionMask ?? null;
    let hidden = this.embeddings.forward(x);
    for (const layer of this.layers) hidden = layer.forward(hidden, keyMask);
    const cls = reshape(slice(hidden, 1, 0, 1), [x.batch, this.cfg.hidden_size]);
    return { lastHiddenState: hidden, pooledOutput: tanh(this.pooler.forward(cls)) };
  }
}

export interface PreTrainingOutput {
  /** [B, T, V], or [n, V] for the rows of `maskedPositions` when the forward ran with `maskedOnly`. */
  predictionLogits: Tensor;
  /** Flat B×T positions of the rows of predictionLogits (maskedOnly), else undefined. */
  maskedPositions?: Int32Array;
  seqRelationshipLogits: Tensor;
  lastHiddenState: Tensor;
  pooledOutput: Tensor;
  mlmLoss: Tensor | null;
  nspLoss: Tensor | null;
  loss: Tensor | null;
}

/** BertForPreTraining: masked-LM head (transform + tied decoder + bias) and next-sentence head. */
export class Bert extends Module {
  readonly bert: BertModel;
  readonly transform: Linear;
  readonly transformNorm: LayerNorm;
  readonly decoderBias: Tensor;
  readonly seqRelationship: Linear;
  constructor(readonly config: BertConfig, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.bert = this.module('bert', new BertModel(config, rng));
    const cls = this.module('cls', new ModuleDict());
    const predictions = cls.add('predictions', new ModuleDict());
    const transform = predictions.add('transform', new ModuleDict());
    this.transform = transform.add('dense', new Linear(config.hidden_size, config.hidden_size, 'out_in', rng, { std: std(config) }));
    this.transformNorm = transform.add('LayerNorm', new LayerNorm(config.hidden_size, eps(config)));
    this.decoderBias = predictions.addParam('bias', constantInit([config.vocab_size], 0));
    this.seqRelationship = cls.add('seq_relationship', new Linear(config.hidden_size, 2, 'out_in', rng, { std: std(config) }));
  }

  /**
   * mlmLabels (B×T, -100 = not masked) and nspLabels (B, 0 = B follows A) are optional. `maskedOnly`
   * (needs mlmLabels) runs the MLM head on the labelled positions only, as efficient BERT trainers do:
   * the loss is the same, but the head's cost drops from B·T rows to the ~15% that are predicted.
   */
  forward(x: BertInputs, mlmLabels?: Int32Array, nspLabels?: Int32Array, options: { maskedOnly?: boolean } = {}): PreTrainingOutput {
    const { lastHiddenState, pooledOutput } = this.bert.forward(x);
    let headInput = lastHiddenState;
    let maskedPositions: Int32Array | undefined;
    let labels = mlmLabels;
    if (options.maskedOnly && mlmLabels) {
      let n = 0;
      for (const l of mlmLabels) if (l !== IGNORE_INDEX) n++;
      maskedPositions = new Int32Array(n);
      labels = new Int32Array(n);
      for (let i = 0, j = 0; i < mlmLabels.length; i++) {
        if (mlmLabels[i] === IGNORE_INDEX) continue;
        maskedPositions[j] = i;
        labels[j++] = mlmLabels[i]!;
      }
      // A row gather with a scatter-add backward: embedding() over the [B·T, C] hidden states.
      headInput = embedding(reshape(lastHiddenState, [x.batch * x.length, this.config.hidden_size]), maskedPositions, [n]);
    }
    const h = this.transformNorm.forward(act(this.config, this.transform.forward(headInput)));
    const predictionLogits = matmul(h, this.bert.embeddings.word_embeddings.weight, { transB: true }, this.decoderBias);
    const seqRelationshipLogits = this.seqRelationship.forward(pooledOutput);
    const mlmLoss = labels ? crossEntropy(predictionLogits, labels) : null;
    const nspLoss = nspLabels ? crossEntropy(seqRelationshipLogits, nspLabels) : null;
    const loss = mlmLoss && nspLoss ? add(mlmLoss, nspLoss) : (mlmLoss ?? nspLoss);
    return { predictionLogits, maskedPositions, seqRelationshipLogits, lastHiddenState, pooledOutput, mlmLoss, nspLoss, loss };
  }
}

/** Offsets j − i the heads of `initLocalAttention` start on, in head order; further heads start content-only. */
export const LOCAL_HEAD_OFFSETS = [-1, 1, -2, 2, -3, 3, -4, 4] as const;

/**
 * Local attention from step 0 for a relative_key BERT (Primer's pre-training default). A fresh BERT
 * attends uniformly (all logits ≈ 0), so a masked position sees its neighbours only as 1/T of an
 * average; the attention to them grows through products of small weights and takes thousands of
 * steps to appear (BENCHMARKS.md, "BERT on the built-in corpus"). Here head h of every layer gets a
 * constant query component `amplitude` on coordinate h of its slice (query bias) and the distance
 * row of offset o_h = LOCAL_HEAD_OFFSETS[h] gets peakLogit·√D / amplitude on the same coordinate,
 * so every query scores its key at i + o_h about peakLogit higher than the others (q_i · d_{i−j} / √D)
 * and the heads start on the neighbours −1, +1, −2, +2, …. It is a prior in ordinary HF weights:
 * training may move it, and the model loads anywhere BertModel with relative_key does.
 */
export function initLocalAttention(model: Bert, peakLogit = 5, amplitude = 2): void {
  const cfg = model.config;
  const h = cfg.num_attention_heads;
  const d = cfg.hidden_size / h;
  const p = cfg.max_position_embeddings;
  for (const layer of model.bert.layers) {
    const self = layer.attentionSelf;
    if (!self.distance_embedding || !self.query.bias) throw new Error('initLocalAttention: needs a BERT with position_embedding_type "relative_key" and query biases');
    const bias = self.query.bias.data;
    const table = self.distance_embedding.weight.data;
    for (let head = 0; head < Math.min(h, LOCAL_HEAD_OFFSETS.length, d); head++) {
      const offset = LOCAL_HEAD_OFFSETS[head]!;
      bias[head * d + head] = amplitude;
      table[(-offset + p - 1) * d + head] = (peakLogit * Math.sqrt(d)) / amplitude;
    }
  }
}

/**
 * The pooler as the identity (pooled = tanh(h_[CLS])): NSP's logits then depend on the [CLS] state
 * through one small matrix (seq_relationship) instead of two, so its gradient reaches the encoder
 * from the first steps (held-out NSP +3–4 points at 2,000 steps on two seeds; BENCHMARKS.md, "BERT").
 */
export function initPoolerIdentity(model: Bert): void {
  const c = model.config.hidden_size;
  const w = model.bert.pooler.weight.data;
  w.fill(0);
  for (let i = 0; i < c; i++) w[i * c + i] = 1;
  model.bert.pooler.bias?.data.fill(0);
}
