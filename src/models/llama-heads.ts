/**
 * LlamaForSequenceClassification / Qwen2ForSequenceClassification with Hugging Face's semantics and
 * names (`model.*` + `score.weight`):
 *
 *   logits = W · h_last      W = score.weight [K, C], no bias, no dropout;
 *                            h_last = the final hidden state of each row's last non-pad token
 *   loss   = mean cross-entropy over the rows (labels = class ids, -100 ignored)
 *
 * "Last non-pad token" is HF's: the largest index t with input_ids[t] ≠ pad_token_id (0 when the whole
 * row is padding), so rows are right-padded; causal attention keeps the pads out of every real token's
 * state, and a padded row scores as it does alone. Without pad_token_id the last position is used and,
 * as in HF, a batch of more than one row is refused. Config keys: num_labels (or id2label), pad_token_id.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { reshape } from '../tensor/ops.ts';
import { crossEntropy, embedding } from '../tensor/nn-ops.ts';
import { Rng } from '../util/random.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { LlamaModel, type LlamaConfig } from './llama.ts';

/** A Llama-family config.json of a sequence classifier: the body's keys plus the head's. */
export interface LlamaClassifierConfig extends LlamaConfig {
  num_labels?: number;
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  pad_token_id?: number | null;
}

export interface SequenceClassifierOutput {
  /** [B, K] */
  logits: Tensor;
  loss: Tensor | null;
}

/** HF's num_labels: the config's, else the size of id2label, else 2 (PretrainedConfig's default). */
export function numLabelsOf(c: LlamaClassifierConfig): number {
  const n = c.num_labels ?? (c.id2label ? Object.keys(c.id2label).length : 2);
  if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`LlamaForSequenceClassification: num_labels must be a positive integer, got ${n}`);
  return n;
}

/** Per row, the index of the last token that is not pad_token_id (0 if none), as HF computes it; T − 1 without a pad id. */
export function lastNonPadIndices(ids: Int32Array, b: number, t: number, padTokenId: number | null): Int32Array {
  const out = new Int32Array(b).fill(t - 1);
  if (padTokenId === null) return out;
  for (let r = 0; r < b; r++) {
    let last = 0;
    for (let i = 0; i < t; i++) if (ids[r * t + i] !== padTokenId) last = i;
    out[r] = last;
  }
  return out;
}

export class LlamaForSequenceClassification extends Module {
  readonly model: LlamaModel;
  readonly score: Linear;
  readonly numLabels: number;
  readonly padTokenId: number | null;
  constructor(readonly config: LlamaClassifierConfig, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.numLabels = numLabelsOf(config);
    this.padTokenId = config.pad_token_id ?? null;
    if (this.padTokenId !== null && !(Number.isInteger(this.padTokenId) && this.padTokenId >= 0 && this.padTokenId < config.vocab_size)) {
      throw new RangeError(`LlamaForSequenceClassification: pad_token_id ${this.padTokenId} is outside the vocabulary (size ${config.vocab_size})`);
    }
    // Registration order = HF's state-dict order (model.*, then score.weight).
    this.model = this.module('model', new LlamaModel(config, rng));
    this.score = this.module('score', new Linear(config.hidden_size, this.numLabels, 'out_in', rng, { std: config.initializer_range ?? 0.02, bias: false }));
  }

  /** HF's class name for this config. */
  get architecture(): string {
    return `${this.config.model_type === 'qwen2' ? 'Qwen2' : 'Llama'}ForSequenceClassification`;
  }

  /** logits [B, K] for ids (B×T, right-padded with pad_token_id); with labels (B class ids, -100 = ignore) the mean cross-entropy. */
  forward(ids: Int32Array, b: number, t: number, labels?: Int32Array): SequenceClassifierOutput {
    if (this.padTokenId === null && b > 1) throw new RangeError('LlamaForSequenceClassification: a batch of more than one row needs pad_token_id in the config');
    const hidden = this.model.forward(ids, b, t); // [B, T, C]
    const c = this.config.hidden_size;
    // A gather of rows of the [B·T, C] view; embedding's backward scatters the gradient back.
    const rows = lastNonPadIndices(ids, b, t, this.padTokenId).map((last, r) => r * t + last);
    const logits = this.score.forward(embedding(reshape(hidden, [b * t, c]), rows, [b]));
    if (!labels) return { logits, loss: null };
    if (labels.length !== b) throw new RangeError(`LlamaForSequenceClassification: ${labels.length} labels for a batch of ${b} rows`);
    for (const y of labels) {
      if (y !== -100 && !(y >= 0 && y < this.numLabels)) throw new RangeError(`LlamaForSequenceClassification: label ${y} is not a class id in [0, ${this.numLabels})`);
    }
    return { logits, loss: crossEntropy(logits, labels) };
  }

  /** config.json: the body's config plus architectures, num_labels, pad_token_id and the label names. */
  configJson(): Record<string, unknown> {
    const id2label = this.config.id2label ?? Object.fromEntries(Array.from({ length: this.numLabels }, (_, i) => [String(i), `LABEL_${i}`]));
    const label2id = this.config.label2id ?? Object.fromEntries(Object.entries(id2label).map(([i, name]) => [name, Number(i)]));
    return {
      ...this.config, architectures: [this.architecture], num_labels: this.numLabels, id2label, label2id,
      pad_token_id: this.padTokenId, problem_type: 'single_label_classification', torch_dtype: 'float32',
    };
  }
}
