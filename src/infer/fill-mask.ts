/**
 * Masked-token prediction with a BertForPreTraining model: for each [MASK] in the text, the top-k
 * vocabulary entries by p = softmax(prediction logits at that position), like HF's fill-mask pipeline.
 */
import type { Bert } from '../models/bert.ts';
import { loadModelDir } from '../models/load.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';

export interface MaskPrediction {
  token: string;
  id: number;
  probability: number;
}

export interface FillMaskResult {
  /** Position of the [MASK] in the encoded sequence (with [CLS] at 0). */
  position: number;
  predictions: MaskPrediction[];
}

/** A BERT model directory (config.json, model.safetensors, tokenizer.json) ready for inference. */
export function loadBert(dir: string): { model: Bert; tokenizer: Tokenizer } {
  const loaded = loadModelDir(dir);
  if (loaded.kind !== 'bert') throw new RangeError(`${dir} holds a ${loaded.kind} model; fill-mask and nsp need a BERT (BertForPreTraining)`);
  loaded.model.eval();
  return { model: loaded.model, tokenizer: loadTokenizer(dir) };
}

/** p = softmax(row) computed in float64, the k largest as (id, p), most likely first. */
export function topKSoftmax(row: ArrayLike<number>, k: number): Array<{ id: number; probability: number }> {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i]! - max);
  const best: Array<{ id: number; probability: number }> = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length === k && row[i]! <= row[best[k - 1]!.id]!) continue;
    best.push({ id: i, probability: Math.exp(row[i]! - max) / z });
    best.sort((a, b) => b.probability - a.probability || a.id - b.id);
    if (best.length > k) best.pop();
  }
  return best;
}

export function fillMask(model: Bert, tokenizer: Tokenizer, text: string, options: { topK?: number } = {}): FillMaskResult[] {
  const k = options.topK ?? 5;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`fill-mask: topK must be a positive integer, got ${k}`);
  const maskToken = tokenizer.specialTokens.mask ?? '[MASK]';
  const maskId = tokenizer.tokenToId(maskToken);
  if (maskId === undefined) throw new RangeError(`fill-mask: the tokenizer has no mask token ${maskToken}`);
  const enc = tokenizer.encode(text, null, { maxLength: model.config.max_position_embeddings });
  const positions = enc.ids.flatMap((id, i) => (id === maskId ? [i] : []));
  if (positions.length === 0) {
    // Tell a mask cut off by the length limit from a missing one: the fix differs (shorten vs add).
    const full = tokenizer.encode(text, null).ids;
    if (full.includes(maskId)) {
      throw new RangeError(`fill-mask: the ${maskToken} token is past the model's ${enc.ids.length}-token limit `
        + `(the text is ${full.length} tokens long); shorten the text before the mask`);
    }
    throw new RangeError(`fill-mask: the text has no ${maskToken} token`);
  }
  const v = model.config.vocab_size;
  const wasTraining = model.training;
  model.eval(); // no dropout
  try {
    return noGrad(() => withScope(() => {
      const out = model.forward({ inputIds: Int32Array.from(enc.ids), batch: 1, length: enc.ids.length });
      const logits = out.predictionLogits.data;
      return positions.map((position) => ({
        position,
        predictions: topKSoftmax(logits.subarray(position * v, (position + 1) * v), k)
          .map(({ id, probability }) => ({ id, probability, token: tokenizer.idToToken(id) ?? `<${id}>` })),
      }));
    }));
  } finally {
    model.train(wasTraining);
  }
}
