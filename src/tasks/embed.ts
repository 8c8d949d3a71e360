/**
 * Sentence embeddings from a backbone's hidden states, as sentence-transformers computes them:
 *
 *   mean  e = Σ_t m_t·h_t / Σ_t m_t      (m = attention mask: padding never counts)
 *   cls   e = h_0                        (BERT's [CLS] position; a GPT or Llama has no such token)
 *   last  e = h_{last real token}        (GPT, Llama: the only position that has read the whole text)
 *
 * then L2-normalised, ê = e / max(‖e‖₂, 1e-12) (torch.nn.functional.normalize), so that the cosine
 * similarity of two texts is the dot product of their embeddings.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { GPT2Model } from '../models/gpt.ts';
import { BertModel } from '../models/bert.ts';
import { collate, padTokenId } from './encode.ts';
import { backboneKind, contextLength, pool, runBackbone, type Backbone } from '../models/heads.ts';
import { loadBackbone } from '../models/model-dir.ts';

export type EmbeddingPooling = 'mean' | 'cls' | 'last';
export const EMBEDDING_POOLINGS: readonly EmbeddingPooling[] = ['mean', 'cls', 'last'];

export interface EmbedOptions {
  pooling?: EmbeddingPooling;
  batchSize?: number;
  /** Tokens per text (default: the model's context, at most 256). */
  maxLength?: number;
  /**
   * A text longer than maxLength: 'truncate' (default) embeds its first maxLength tokens, as an index
   * of long documents wants; 'error' refuses it with a RangeError naming the text, its length and the limit.
   */
  overflow?: 'truncate' | 'error';
}

/** A text longer than the embedding's token limit (EmbedOptions.overflow 'error'). */
export class TextTooLongError extends RangeError {
  constructor(message: string, readonly tokens: number, readonly limit: number) {
    super(message);
  }
}

export interface Embeddings {
  /** N×dim, row-major, every row of unit length. */
  vectors: Float32Array;
  count: number;
  dim: number;
}

export function embeddingDim(backbone: Backbone): number {
  return backbone instanceof GPT2Model ? backbone.cfg.n_embd : backbone.cfg.hidden_size;
}

export function defaultMaxLength(backbone: Backbone): number {
  return Math.min(256, contextLength(backbone));
}

/** ê = e / max(‖e‖₂, 1e-12), in place, accumulated in float64. */
export function l2Normalize(v: Float32Array, dim: number): Float32Array {
  for (let off = 0; off < v.length; off += dim) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += v[off + j]! * v[off + j]!;
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let j = 0; j < dim; j++) v[off + j] = v[off + j]! * inv;
  }
  return v;
}

export function embedTexts(backbone: Backbone, tokenizer: Tokenizer, texts: readonly string[], o: EmbedOptions = {}): Embeddings {
  const pooling = o.pooling ?? 'mean';
  if (pooling === 'cls' && !(backbone instanceof BertModel)) throw new RangeError(`embed: pooling 'cls' needs a BERT model; a decoder (${backboneKind(backbone)}) pools 'mean' or 'last'`);
  const dim = embeddingDim(backbone);
  // A limit past the model's context would let a long text through to the model, which cannot
  // place tokens beyond its last position: cut there instead.
  const maxLength = Math.min(o.maxLength ?? defaultMaxLength(backbone), contextLength(backbone));
  const limit = maxLength === contextLength(backbone) ? `the model's context of ${maxLength} tokens` : `maxLength ${maxLength}`;
  const bs = o.batchSize ?? 32;
  const vectors = new Float32Array(texts.length * dim);
  const was = backbone.training;
  backbone.eval();
  try {
    for (let i = 0; i < texts.length; i += bs) {
      const encs = texts.slice(i, i + bs).map((text, r) => {
        const e = tokenizer.encode(text, null, o.overflow === 'error' ? {} : { maxLength });
        if (e.ids.length === 0) throw new RangeError(`embed: text ${i + r + 1} has no tokens (empty text?)`);
        if (e.ids.length > maxLength) throw new TextTooLongError(`embed: text ${i + r + 1} has ${e.ids.length} tokens, more than ${limit}`, e.ids.length, maxLength);
        return e;
      });
      const batch = collate(encs, padTokenId(tokenizer));
      noGrad(() => withScope(() => {
        const { hidden, pooled } = runBackbone(backbone, batch);
        vectors.set(pool(hidden, pooled, batch, pooling).data, i * dim);
      }));
    }
  } finally {
    backbone.train(was);
  }
  return { vectors: l2Normalize(vectors, dim), count: texts.length, dim };
}

/** A model directory's body and tokenizer, for embedding. */
export function loadEmbedder(dir: string): { backbone: Backbone; tokenizer: Tokenizer } {
  return { backbone: loadBackbone(dir), tokenizer: loadTokenizer(dir) };
}
