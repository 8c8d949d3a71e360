/**
 * Frozen-feature linear probes: the pre-trained body is not trained at all; texts become fixed vectors
 * (pooled hidden states of one layer or of several, concatenated) and an L2-regularised logistic
 * regression is fit on the few labelled vectors (src/tasks/logistic.ts), its C chosen on validation.
 *
 * Pooling per layer ℓ (m = attention mask):  mean  Σ_t m_t·h^ℓ_t / Σ_t m_t      last  h^ℓ_{last real token}
 * GPT layers: 0 = the embeddings (wte + wpe), ℓ = after block ℓ, the last one after ln_f. BERT: the
 * final hidden states only ([CLS] as 'last' has no meaning there; 'cls' is used instead).
 * A GPT's texts are read inside the prompt template when there is one (fewlabel.ts), so that the last
 * position is the one whose next-token prediction is the label word: its state is what the LM knows.
 * Features are standardised with the mean and standard deviation of the unlabelled pool (the task's
 * train texts without labels), so that C means the same whatever the layer's scale.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { GPT2Model } from '../models/gpt.ts';
import { Tensor, noGrad, withScope } from '../tensor/tensor.ts';
import { add } from '../tensor/ops.ts';
import { collate, padTokenId } from './encode.ts';
import { pool, runBackbone, type Backbone, type ModelInputs } from '../models/heads.ts';

export type ProbePooling = 'mean' | 'last' | 'mean+last';
export type ProbeLayers = 'final' | 'all';

export interface FeatureOptions {
  maxLength: number;
  batchSize?: number;
}

/** Per text, per layer, the mean- and last-pooled hidden vectors: [N, L, 2, C] as one Float32Array. */
export interface LayerFeatures {
  data: Float32Array;
  count: number;
  layers: number;
  dim: number;
}

function gptLayerStates(body: GPT2Model, x: ModelInputs): Tensor[] {
  const pos = new Int32Array(x.length).map((_, i) => i);
  let h = add(body.wte.forward(x.inputIds, [x.batch, x.length]), body.wpe.forward(pos, [x.length]));
  const states = [h];
  body.h.forEach((block, layer) => {
    h = block.forward(h, { layer });
    states.push(layer === body.h.length - 1 ? body.ln_f.forward(h) : h);
  });
  return states;
}

export function layerFeatures(body: Backbone, tokenizer: Tokenizer, texts: ReadonlyArray<{ text: string; textPair?: string }>, o: FeatureOptions): LayerFeatures {
  const gpt = body instanceof GPT2Model;
  const dim = gpt ? body.cfg.n_embd : body.cfg.hidden_size;
  const layers = gpt ? body.cfg.n_layer + 1 : 1;
  const data = new Float32Array(texts.length * layers * 2 * dim);
  const bs = o.batchSize ?? 32;
  const was = body.training;
  body.eval();
  try {
    for (let i = 0; i < texts.length; i += bs) {
      const encs = texts.slice(i, i + bs).map((x) => tokenizer.encode(x.text, x.textPair ?? null, { maxLength: o.maxLength }));
      const batch = collate(encs, padTokenId(tokenizer));
      noGrad(() => withScope(() => {
        const states = gpt ? gptLayerStates(body, batch) : [runBackbone(body, batch).hidden];
        states.forEach((h, l) => {
          const mean = pool(h, null, batch, 'mean').data;
          const last = pool(h, null, batch, gpt ? 'last' : 'cls').data;
          for (let r = 0; r < batch.batch; r++) {
            const at = (((i + r) * layers + l) * 2) * dim;
            data.set(mean.subarray(r * dim, (r + 1) * dim), at);
            data.set(last.subarray(r * dim, (r + 1) * dim), at + dim);
          }
        });
      }));
    }
  } finally {
    body.train(was);
  }
  return { data, count: texts.length, layers, dim };
}

export interface ProbeView {
  layers: ProbeLayers;
  pooling: ProbePooling;
}

export const PROBE_VIEWS: readonly ProbeView[] = [
  { layers: 'final', pooling: 'mean' },
  { layers: 'final', pooling: 'last' },
  { layers: 'final', pooling: 'mean+last' },
  { layers: 'all', pooling: 'mean' },
  { layers: 'all', pooling: 'mean+last' },
];

/** Selects rows (example indices) and a view of the layer features as a dense N×D matrix. */
export function featureMatrix(f: LayerFeatures, rows: ArrayLike<number>, view: ProbeView): { x: Float32Array; dim: number } {
  const layerIds = view.layers === 'final' ? [f.layers - 1] : Array.from({ length: f.layers }, (_, l) => l);
  const parts = view.pooling === 'mean' ? [0] : view.pooling === 'last' ? [1] : [0, 1];
  const dim = layerIds.length * parts.length * f.dim;
  const x = new Float32Array(rows.length * dim);
  for (let r = 0; r < rows.length; r++) {
    let at = r * dim;
    for (const l of layerIds) {
      for (const p of parts) {
        const src = ((rows[r]! * f.layers + l) * 2 + p) * f.dim;
        x.set(f.data.subarray(src, src + f.dim), at);
        at += f.dim;
      }
    }
  }
  return { x, dim };
}

/** Column means and standard deviations of an N×D matrix (the unlabelled pool's). */
export function columnStats(x: Float32Array, dim: number): { mean: Float64Array; std: Float64Array } {
  const n = x.length / dim;
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) mean[j]! += x[r * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) { const d = x[r * dim + j]! - mean[j]!; sq[j]! += d * d; }
  const std = sq.map((s) => Math.sqrt(s / Math.max(1, n - 1)) || 1);
  return { mean, std };
}

/** (x − mean) / std in place. */
export function standardize(x: Float32Array, dim: number, s: { mean: Float64Array; std: Float64Array }): Float32Array {
  for (let i = 0; i < x.length; i++) { const j = i % dim; x[i] = (x[i]! - s.mean[j]!) / s.std[j]!; }
  return x;
}
