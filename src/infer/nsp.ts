/**
 * Next-sentence prediction with a BertForPreTraining model: p(B follows A) = softmax(seq_relationship
 * logits of [CLS] A [SEP] B [SEP])[0] (index 0 is "is next", as in HF and google-research/bert).
 */
import type { Bert } from '../models/bert.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';

export function isNextProbability(model: Bert, tokenizer: Tokenizer, a: string, b: string): number {
  // An empty side still encodes to [CLS] A [SEP] [SEP] and gets a confident-looking probability.
  if (!a.trim()) throw new RangeError(`nsp: the first sentence (A) is empty${a ? ' (only whitespace)' : ''}`);
  if (!b.trim()) throw new RangeError(`nsp: the second sentence (B) is empty${b ? ' (only whitespace)' : ''}`);
  const enc = tokenizer.encode(a, b, { maxLength: model.config.max_position_embeddings });
  if (!enc.typeIds.includes(1)) throw new RangeError('nsp: the tokenizer does not mark the second sentence with token type 1 (it needs a BERT post-processor)');
  const wasTraining = model.training;
  model.eval(); // no dropout
  try {
    return noGrad(() => withScope(() => {
      const out = model.forward({ inputIds: Int32Array.from(enc.ids), tokenTypeIds: Int32Array.from(enc.typeIds), batch: 1, length: enc.ids.length });
      const [isNext, random] = out.seqRelationshipLogits.data as unknown as [number, number];
      const m = Math.max(isNext, random);
      return Math.exp(isNext - m) / (Math.exp(isNext - m) + Math.exp(random - m));
    }));
  } finally {
    model.train(wasTraining);
  }
}
