/**
 * Task heads on a pre-trained body (GPT2Model, BertModel or LlamaModel, built here or loaded from a
 * Hugging Face layout), with transformers' module names so the state dicts match *ForSequenceClassification,
 * *ForTokenClassification and *ForQuestionAnswering checkpoints:
 *
 *   BERT  bert.* + classifier.{weight,bias}    sequence: logits = W·dropout(pooler(h_[CLS])) + b
 *                                              token:    logits_t = W·dropout(h_t) + b
 *         bert.* + qa_outputs.{weight,bias}    QA:       [start_t, end_t] = W·h_t + b
 *   GPT-2 transformer.* + score.weight         sequence: logits = W·h_last (no bias; h_last = last
 *                                              non-padding token, or the masked mean with pooling 'mean')
 *         transformer.* + classifier.*         token:    as BERT (dropout default 0.1, as HF)
 *         transformer.* + qa_outputs.*         QA:       as BERT
 *   Llama model.* + score.weight               sequence: as GPT-2, h_last = the last token that is not
 *   Qwen2                                      pad_token_id (HF's rule, see llama-heads.ts)
 *         model.* + score.{weight,bias}        token:    as BERT (dropout classifier_dropout, else 0.1)
 *                                              QA: refused by name (no settled HF layout)
 *
 * Losses follow HF: mean cross-entropy over labelled rows (-100 ignored); QA averages the start and
 * end losses, and positions outside the window (clamped to T) are ignored.
 */
import { Tensor } from '../tensor/tensor.ts';
import { mul, reshape, slice, sumAxis, scale, add } from '../tensor/ops.ts';
import { crossEntropy, dropout, embedding } from '../tensor/nn-ops.ts';
import { Rng } from '../util/random.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { GPT2Model, type GPTConfig } from './gpt.ts';
import { BertModel, type BertConfig } from './bert.ts';
import { LlamaModel, type LlamaConfig } from './llama.ts';
import { lastNonPadIndices } from './llama-heads.ts';
import { parseAnyModelConfig } from './load.ts';
import { LabelMap } from './labels.ts';

/** A pre-trained body: GPT-2, BERT, or a Llama-family decoder (Llama, Qwen2: kind 'llama'). */
export type Backbone = GPT2Model | BertModel | LlamaModel;
export type BackboneKind = 'gpt2' | 'bert' | 'llama';

/** A batch for any backbone: B×T ids, optional attention mask (1 = token) and token types (BERT). */
export interface ModelInputs {
  inputIds: Int32Array;
  batch: number;
  length: number;
  attentionMask?: Uint8Array;
  tokenTypeIds?: Int32Array;
}

export function backboneKind(b: Backbone): BackboneKind {
  return b instanceof GPT2Model ? 'gpt2' : b instanceof LlamaModel ? 'llama' : 'bert';
}

export function backboneConfig(b: Backbone): GPTConfig | BertConfig | LlamaConfig {
  return b.cfg;
}

/** Where HF's task classes keep the body: GPT2For… `transformer`, BertFor… `bert`, LlamaFor… and Qwen2For… `model`. */
export function backbonePrefix(kind: BackboneKind): 'transformer' | 'bert' | 'model' {
  return kind === 'gpt2' ? 'transformer' : kind === 'bert' ? 'bert' : 'model';
}

/** HF's class-name stem of a body (model_type qwen2 → "Qwen2"), for architectures and error messages. */
function familyName(b: Backbone): string {
  return b instanceof GPT2Model ? 'GPT2' : b instanceof BertModel ? 'Bert' : b.cfg.model_type === 'qwen2' ? 'Qwen2' : 'Llama';
}

/** The longest sequence a body (or its config) accepts: GPT-2's n_positions, BERT's and Llama's max_position_embeddings. */
export function contextLength(b: Backbone | GPTConfig | BertConfig | LlamaConfig): number {
  const c = b instanceof GPT2Model || b instanceof BertModel || b instanceof LlamaModel ? b.cfg : b;
  return 'n_positions' in c ? c.n_positions : c.max_position_embeddings;
}

function hiddenSize(b: Backbone): number {
  return b instanceof GPT2Model ? b.cfg.n_embd : b.cfg.hidden_size;
}

/** Runs the body: hidden states [B, T, C], and BERT's pooled [CLS] vector [B, C]. */
export function runBackbone(b: Backbone, x: ModelInputs): { hidden: Tensor; pooled: Tensor | null } {
  if (b instanceof GPT2Model || b instanceof LlamaModel) {
    // Causal attention: with right padding, no real token attends to a pad, so no mask is needed.
    return { hidden: b.forward(x.inputIds, x.batch, x.length), pooled: null };
  }
  const { lastHiddenState, pooledOutput } = b.forward(x);
  return { hidden: lastHiddenState, pooled: pooledOutput };
}

/** Index of the last real token of each row (HF GPT2ForSequenceClassification's sequence_lengths). */
export function lastTokenIndices(x: ModelInputs): Int32Array {
  const out = new Int32Array(x.batch).fill(x.length - 1);
  if (!x.attentionMask) return out;
  for (let r = 0; r < x.batch; r++) {
    let last = -1;
    for (let t = 0; t < x.length; t++) if (x.attentionMask[r * x.length + t]) last = t;
    if (last < 0) throw new RangeError(`row ${r} of the batch has no tokens (attention mask all 0)`);
    out[r] = last;
  }
  return out;
}

export type Pooling = 'pooler' | 'cls' | 'last' | 'mean';

/**
 * One vector per sequence from hidden [B, T, C]:
 *   pooler  tanh(W·h_0 + b) (BERT's pooler)     cls   h_0
 *   last    h_{last real token}                 mean  Σ_t m_t·h_t / Σ_t m_t  (m = attention mask)
 */
export function pool(hidden: Tensor, pooled: Tensor | null, x: ModelInputs, pooling: Pooling): Tensor {
  const [b, t, c] = hidden.shape as [number, number, number];
  if (pooling === 'pooler') {
    if (!pooled) throw new RangeError("pooling 'pooler' needs a BERT backbone (GPT-2 has no pooler; use 'last' or 'mean')");
    return pooled;
  }
  if (pooling === 'cls') return reshape(slice(hidden, 1, 0, 1), [b, c]);
  if (pooling === 'last') return gatherPositions(hidden, lastTokenIndices(x));
  // Any other name would otherwise pool 'mean' silently (a misspelt embedTexts or head option).
  if (pooling !== 'mean') throw new RangeError(`pooling must be 'mean', 'last', 'cls' or 'pooler', got ${JSON.stringify(pooling)}`);
  const weights = new Float64Array(b * t);
  for (let r = 0; r < b; r++) {
    let n = 0;
    for (let k = 0; k < t; k++) n += x.attentionMask ? x.attentionMask[r * t + k]! : 1;
    if (n === 0) throw new RangeError(`row ${r} of the batch has no tokens (attention mask all 0)`);
    for (let k = 0; k < t; k++) weights[r * t + k] = (x.attentionMask ? x.attentionMask[r * t + k]! : 1) / n;
  }
  return sumAxis(mul(hidden, Tensor.from(weights, [b, t, 1], hidden.dtype)), 1);
}

/** hidden [B, T, C] → [B, C]: row r's state at position indices[r]. */
export function gatherPositions(hidden: Tensor, indices: Int32Array): Tensor {
  const [b, t, c] = hidden.shape as [number, number, number];
  // A gather of rows of the [B·T, C] view; embedding's backward scatters the gradient back.
  return embedding(reshape(hidden, [b * t, c]), indices.map((last, r) => r * t + last), [b]);
}

/**
 * Llama/Qwen2's h_last: HF's last token that is not pad_token_id (llama-heads.ts), among the real
 * tokens (attention mask 1) so that a batch padded with another id still reads its own last token.
 */
export function lastNonPadTokenIndices(x: ModelInputs, padTokenId: number | null): Int32Array {
  if (padTokenId === null) return lastTokenIndices(x);
  const mask = x.attentionMask;
  const ids = mask ? x.inputIds.map((id, i) => (mask[i] ? id : padTokenId)) : x.inputIds;
  return lastNonPadIndices(ids, x.batch, x.length, padTokenId);
}

export interface HeadOptions {
  /** Dropout before the classifier (default: classifier_dropout, else BERT hidden_dropout_prob, else 0.1 as HF). */
  dropout?: number;
  /** Seeds the head's initialisation (N(0, initializer_range), zero bias) and its dropout stream. */
  seed?: number;
}

/** Base of the task models: registers the body under HF's prefix (`bert.` / `transformer.` / `model.`). */
export abstract class TaskModel extends Module {
  readonly kind: BackboneKind;
  readonly rng: Rng;
  abstract readonly architecture: string;
  constructor(readonly backbone: Backbone, seed: number) {
    super();
    this.kind = backboneKind(backbone);
    this.rng = new Rng(seed);
    this.module(backbonePrefix(this.kind), backbone);
  }
  protected get hidden(): number {
    return hiddenSize(this.backbone);
  }
  protected get initStd(): number {
    return this.backbone.cfg.initializer_range ?? 0.02;
  }
  protected dropoutProb(o: HeadOptions): number {
    const cfg = this.backbone.cfg as { classifier_dropout?: number | null; hidden_dropout_prob?: number; hidden_dropout?: number | null };
    const hidden = this.kind === 'bert' ? cfg.hidden_dropout_prob : this.kind === 'llama' ? cfg.hidden_dropout : undefined;
    return o.dropout ?? cfg.classifier_dropout ?? hidden ?? 0.1;
  }
  /** Extra config.json fields (architectures, labels, …) on top of the body's config. */
  abstract headConfig(): Record<string, unknown>;
}

export interface ClassifierOutput {
  logits: Tensor;
  loss: Tensor | null;
}

/** Sequence classification (single texts or pairs). */
export class SequenceClassifier extends TaskModel {
  readonly labels: LabelMap;
  readonly pooling: Pooling;
  readonly head: Linear;
  readonly headName: 'classifier' | 'score';
  readonly dropout: number;
  readonly architecture: string;
  /** Llama/Qwen2: the id whose trailing run ends a row (HF's config pad_token_id); null for GPT-2/BERT. */
  readonly padTokenId: number | null;
  /**
   * `padTokenId` (Llama/Qwen2 only): the id the batches are padded with, written to config.json as
   * pad_token_id; default the body config's pad_token_id, else its (first) eos_token_id.
   */
  constructor(backbone: Backbone, labels: LabelMap | readonly string[], options: HeadOptions & { pooling?: Pooling; padTokenId?: number | null } = {}) {
    super(backbone, options.seed ?? 0);
    this.labels = labels instanceof LabelMap ? labels : new LabelMap(labels);
    this.pooling = options.pooling ?? (this.kind === 'bert' ? 'pooler' : 'last');
    if (this.kind !== 'bert' && (this.pooling === 'pooler' || this.pooling === 'cls')) {
      throw new RangeError(`SequenceClassifier: pooling '${this.pooling}' needs a BERT backbone; ${familyName(backbone)} (a decoder) pools 'last' or 'mean'`);
    }
    // HF: BERT dropout → classifier (with bias); GPT-2 and Llama `score` without bias and without dropout.
    this.headName = this.kind === 'bert' ? 'classifier' : 'score';
    this.dropout = this.kind === 'bert' ? this.dropoutProb(options) : (options.dropout ?? 0);
    this.head = this.module(this.headName, new Linear(this.hidden, this.labels.size, 'out_in', this.rng, { std: this.initStd, bias: this.kind === 'bert' }));
    this.architecture = `${familyName(backbone)}ForSequenceClassification`;
    this.padTokenId = backbone instanceof LlamaModel ? llamaPadTokenId(backbone.cfg, options.padTokenId) : null;
  }
  /** logits [B, K]; with labels (B class ids) the mean cross-entropy. */
  forward(x: ModelInputs, labels?: Int32Array): ClassifierOutput {
    const { hidden, pooled } = runBackbone(this.backbone, x);
    const h = this.kind === 'llama' && this.pooling === 'last' ? gatherPositions(hidden, lastNonPadTokenIndices(x, this.padTokenId)) : pool(hidden, pooled, x, this.pooling);
    const logits = this.head.forward(dropout(h, this.dropout, this.training, this.rng));
    return { logits, loss: labels ? crossEntropy(logits, labels) : null };
  }
  headConfig(): Record<string, unknown> {
    const pad = this.kind === 'gpt2' ? { pad_token_id: (this.backbone.cfg as GPTConfig).eos_token_id ?? 0 }
      : this.kind === 'llama' ? { pad_token_id: this.padTokenId } : { classifier_dropout: this.dropout };
    return {
      architectures: [this.architecture], ...this.labels.toConfig(), problem_type: 'single_label_classification',
      ...pad, primer_pooling: this.pooling,
    };
  }
}

/** pad_token_id of a Llama-family classifier: given, else the config's, else its (first) eos_token_id, else none. */
function llamaPadTokenId(cfg: LlamaConfig & { pad_token_id?: number | null }, given: number | null | undefined): number | null {
  const eos = Array.isArray(cfg.eos_token_id) ? cfg.eos_token_id[0] : cfg.eos_token_id;
  const pad = given !== undefined ? given : cfg.pad_token_id ?? eos ?? null;
  if (pad !== null && !(Number.isInteger(pad) && pad >= 0 && pad < cfg.vocab_size)) {
    throw new RangeError(`SequenceClassifier: pad_token_id ${pad} is outside the vocabulary (size ${cfg.vocab_size})`);
  }
  return pad;
}

/** Token classification (POS, NER): one label per token; labels B×T with -100 on unscored tokens. */
export class TokenClassifier extends TaskModel {
  readonly labels: LabelMap;
  readonly classifier: Linear;
  readonly dropout: number;
  readonly architecture: string;
  constructor(backbone: Backbone, labels: LabelMap | readonly string[], options: HeadOptions = {}) {
    super(backbone, options.seed ?? 0);
    this.labels = labels instanceof LabelMap ? labels : new LabelMap(labels);
    this.dropout = this.dropoutProb(options);
    // HF's LlamaForTokenClassification / Qwen2ForTokenClassification call the (biased) head `score`.
    this.classifier = this.module(this.kind === 'llama' ? 'score' : 'classifier', new Linear(this.hidden, this.labels.size, 'out_in', this.rng, { std: this.initStd }));
    this.architecture = `${familyName(backbone)}ForTokenClassification`;
  }
  /** logits [B, T, K]. */
  forward(x: ModelInputs, labels?: Int32Array): ClassifierOutput {
    const { hidden } = runBackbone(this.backbone, x);
    const logits = this.classifier.forward(dropout(hidden, this.dropout, this.training, this.rng));
    return { logits, loss: labels ? crossEntropy(logits, labels) : null };
  }
  headConfig(): Record<string, unknown> {
    return { architectures: [this.architecture], ...this.labels.toConfig(), classifier_dropout: this.dropout };
  }
}

export interface QAOutput {
  /** [B, T] */
  startLogits: Tensor;
  endLogits: Tensor;
  loss: Tensor | null;
}

/** Extractive QA: a start and an end logit per token (`qa_outputs`, Linear(hidden, 2)). */
export class QuestionAnswering extends TaskModel {
  readonly qa_outputs: Linear;
  readonly architecture: string;
  constructor(backbone: Backbone, options: { seed?: number } = {}) {
    super(backbone, options.seed ?? 0);
    if (this.kind === 'llama') {
      // transformers has named LlamaForQuestionAnswering's body both `transformer` and `model`: no layout to match yet.
      throw new RangeError(`${familyName(backbone)}ForQuestionAnswering is not supported: extractive QA needs a GPT-2 or BERT model (Llama-family models fine-tune for classification and tagging)`);
    }
    this.qa_outputs = this.module('qa_outputs', new Linear(this.hidden, 2, 'out_in', this.rng, { std: this.initStd }));
    this.architecture = `${familyName(backbone)}ForQuestionAnswering`;
  }
  /** With start/end token positions (B each) the loss is (CE(start) + CE(end)) / 2. */
  forward(x: ModelInputs, startPositions?: Int32Array, endPositions?: Int32Array): QAOutput {
    const { hidden } = runBackbone(this.backbone, x);
    const logits = this.qa_outputs.forward(hidden); // [B, T, 2]
    const [b, t] = [x.batch, x.length];
    const startLogits = reshape(slice(logits, 2, 0, 1), [b, t]);
    const endLogits = reshape(slice(logits, 2, 1, 2), [b, t]);
    if (!startPositions || !endPositions) return { startLogits, endLogits, loss: null };
    // HF clamps positions to [0, T] and ignores T: an answer outside the window teaches nothing.
    const clamp = (p: Int32Array) => p.map((v) => Math.min(Math.max(v, 0), t));
    const ce = (l: Tensor, p: Int32Array) => crossEntropy(l, clamp(p), { ignoreIndex: t });
    return { startLogits, endLogits, loss: scale(add(ce(startLogits, startPositions), ce(endLogits, endPositions)), 0.5) };
  }
  headConfig(): Record<string, unknown> {
    return { architectures: [this.architecture] };
  }
}

/** config.json of a task model: the body's HF config plus the head's fields. */
export function taskConfigJson(model: TaskModel): Record<string, unknown> {
  return { ...model.backbone.cfg, ...model.headConfig(), torch_dtype: 'float32' };
}

/** Rebuilds a task model (random weights) from a config.json written by taskConfigJson or transformers. */
export function createTaskModel(config: Record<string, unknown>, seed = 0): TaskModel {
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0]) : '';
  const rng = new Rng(seed);
  const backbone: Backbone = config.model_type === 'gpt2' ? new GPT2Model(config as unknown as GPTConfig, rng)
    : config.model_type === 'bert' ? new BertModel(config as unknown as BertConfig, rng)
      // Validated (field-named errors) and normalised (rope_scaling 'default', null kv heads) as a causal LM's config is.
      : config.model_type === 'llama' || config.model_type === 'qwen2' ? new LlamaModel(parseAnyModelConfig(config, `${arch || 'task model'} config`) as LlamaConfig, rng)
        : (() => { throw new RangeError(`createTaskModel: model_type must be "gpt2", "bert", "llama" or "qwen2", got ${JSON.stringify(config.model_type)}`); })();
  const pooling = typeof config.primer_pooling === 'string' ? (config.primer_pooling as Pooling) : undefined;
  if (arch.endsWith('ForSequenceClassification')) {
    const padTokenId = typeof config.pad_token_id === 'number' ? config.pad_token_id : null;
    return new SequenceClassifier(backbone, LabelMap.fromConfig(config as { id2label?: Record<string, string> }), { seed, pooling, padTokenId });
  }
  if (arch.endsWith('ForTokenClassification')) return new TokenClassifier(backbone, LabelMap.fromConfig(config as { id2label?: Record<string, string> }), { seed });
  if (arch.endsWith('ForQuestionAnswering')) return new QuestionAnswering(backbone, { seed });
  throw new RangeError(`createTaskModel: architectures[0] = ${JSON.stringify(arch)} is not a sequence/token classification or QA model`);
}
