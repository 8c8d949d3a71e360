/**
 * Cloze zero-shot for a BERT (PET's pattern–verbalizer pairs, Schick & Schütze 2021, with a masked LM):
 * the text goes into the template with a mask where the label word belongs ("{text} It was [MASK]."),
 * and class k scores the MLM head's probability of its words at the mask,
 *
 *   s_k = log( (1/|W_k|) Σ_{w∈W_k} exp(z_w) ),   log p_k = s_k − logsumexp_j s_j
 *
 * (the vocabulary's normaliser cancels between classes), with and without contextual calibration
 * (Zhao et al. 2021: subtract log p_k of content-free prompts, as prompt.ts does for a GPT).
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import type { Bert } from '../models/bert.ts';
import type { LabelMap } from '../models/labels.ts';
import type { TextExample } from './data.ts';
import { CONTENT_FREE, applyTemplate, argmaxRows, biasFromContentFree, forEachPromptBatch, labelWordToken, logSoftmaxInto, type PromptSpec } from './prompt.ts';
import { scorePredictions, type ZeroShotResult } from './fewlabel.ts';

/** The template with the mask token: "{mask}" or the mask token itself where given, else appended ("… [MASK]."). */
export function clozeTemplate(template: string, maskToken: string): string {
  if (template.includes('{mask}')) return template.replace('{mask}', maskToken);
  return template.includes(maskToken) ? template : `${template.trimEnd()} ${maskToken}.`;
}

function maskTokenOf(tokenizer: Tokenizer): { token: string; id: number } {
  const token = tokenizer.specialTokens.mask ?? '[MASK]';
  const id = tokenizer.tokenToId(token);
  if (id === undefined) throw new RangeError(`cloze prompting: the tokenizer has no mask token ${token}`);
  return { token, id };
}

/** Per prompt (which must hold one mask), log p_k over the classes: N × K. */
export function clozeLogProbs(model: Bert, tokenizer: Tokenizer, labels: LabelMap, verbalizer: Record<string, string[]>, prompts: readonly TextExample[], maxLength: number, batchSize = 32): Float64Array {
  const { id: maskId } = maskTokenOf(tokenizer);
  const k = labels.size;
  const words = labels.labels.map((l) => {
    const ws = verbalizer[l];
    if (!ws?.length) throw new RangeError(`cloze prompting: the verbalizer has no word for label "${l}"`);
    return ws.map((w) => labelWordToken(tokenizer, w));
  });
  const v = model.config.vocab_size;
  const out = new Float64Array(prompts.length * k);
  forEachPromptBatch(model, tokenizer, prompts, maxLength, batchSize, (batch, encs, start) => {
    const z = model.forward(batch).predictionLogits.data;
    encs.forEach((enc, r) => {
      const at = enc.ids.lastIndexOf(maskId);
      if (at < 0) throw new RangeError(`cloze prompting: prompt ${start + r} has no mask token after truncation to ${maxLength} tokens`);
      const row = (r * batch.length + at) * v;
      // log of the mean probability of the class's words (the vocabulary's normaliser cancels below)
      const s = Float64Array.from(words, (ids) => {
        const m = Math.max(...ids.map((w) => z[row + w]!));
        return m + Math.log(ids.reduce((sum, w) => sum + Math.exp(z[row + w]! - m), 0) / ids.length);
      });
      logSoftmaxInto(s, 0, k, out, (start + r) * k);
    });
  });
  return out;
}

/** Zero-shot cloze prompting of a BERT, with and without contextual calibration (no labels used). */
export function clozeZeroShot(model: Bert, tokenizer: Tokenizer, labels: LabelMap, spec: PromptSpec, selection: readonly TextExample[], test: readonly TextExample[], maxLength: number): ZeroShotResult {
  const template = clozeTemplate(spec.template, maskTokenOf(tokenizer).token);
  const k = labels.size;
  const run = (xs: readonly TextExample[]) => clozeLogProbs(model, tokenizer, labels, spec.verbalizer, applyTemplate(tokenizer, xs, template, maxLength), maxLength);
  const bias = biasFromContentFree(run(CONTENT_FREE.map((t) => ({ text: t }))), k);
  const [lpSel, lpTest] = [run(selection), run(test)];
  const score = (b?: Float64Array) => ({
    selection: scorePredictions(labels, selection, argmaxRows(lpSel, k, b)).accuracy,
    ...scorePredictions(labels, test, argmaxRows(lpTest, k, b)),
  });
  return { uncalibrated: score(), calibrated: score(bias), bias: [...bias] };
}
