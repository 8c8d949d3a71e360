/**
 * BERT (BertForPreTraining) in one file: embeddings with token types, post-LayerNorm encoder,
 * pooler, masked-LM head tied to the word embeddings, and the next-sentence head.
 * Parameter names and config keys follow Hugging Face; LayerNorm eps 1e-12, exact (erf) GELU.
 */
import { Tensor } from '../tensor/tensor.ts';
import { add, concat, reshape, slice } from '../tensor/ops.ts';
import { attentionHeads, crossEntropy, dropout, embedding, gelu, linear, matmul, tanh } from '../tensor/nn-ops.ts';
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
    e = add(e, this.position_embeddings.forward(pos, [t]));
    return dropout(this.LayerNorm.forward(e), this.cfg.hidden_dropout_prob ?? 0, this.training, this.rng);
  }
}

class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  constructor(readonly cfg: BertConfig, rng: Rng) {
    super();
    const c = cfg.hidden_size;
    this.query = this.module('query', new Linear(c, c, 'out_in', rng, { std: std(cfg) }));
    this.key = this.module('key', new Linear(c, c, 'out_in', rng, { std: std(cfg) }));
    this.value = this.module('value', new Linear(c, c, 'out_in', rng, { std: std(cfg) }));
  }
  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    const c = x.shape[2]!;
    const h = this.cfg.num_attention_heads;
    const layers = [this.query, this.key, this.value];
    const opts = { heads: h, headDim: c / h, keyMask };
    // The attention kernel reads the heads straight out of the projections' rows (no head-split copies).
    if (layers.every((l) => l.forward === Linear.prototype.forward && l.bias)) {
      // One GEMM for all three (the HF weights stacked to [3C, C]): q, k, v are column ranges of
      // [B, T, 3C]. LoRA replaces a layer's forward, which takes the path below.
      const qkv = linear(x, concat(layers.map((l) => l.weight), 0), concat(layers.map((l) => l.bias!), 0), 'out_in');
      return attentionHeads({ tensor: qkv, offset: 0 }, { tensor: qkv, offset: c }, { tensor: qkv, offset: 2 * c }, opts);
    }
    const [q, k, v] = layers.map((l) => ({ tensor: l.forward(x), offset: 0 }));
    return attentionHeads(q!, k!, v!, opts);
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
