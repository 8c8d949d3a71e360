/**
 * Prompt-based classification through a GPT's language-model head, as in PET (Schick & Schütze 2021)
 * and LM-BFF (Gao et al. 2021), and contextual calibration (Zhao et al. 2021).
 *
 * A template turns a text into a prompt whose next token decides the class ("<text> It was" → " great"
 * or " terrible"); a verbalizer names one or more label words per class. The score of class k is the
 * LM-head logit of its words at the last prompt token, s_k = (1/|W_k|)·Σ_{w∈W_k} e_w · h_last, where e_w
 * is the (tied) output embedding of the word's first token: the mean of the words' output vectors.
 *
 *   zero-shot     p_k = softmax_k(s), no labels at all
 *   calibrated    p̂_k ∝ p_k / p_cf,k with p_cf the mean of p over content-free prompts ("N/A", "",
 *                 "[MASK]" in the template), i.e. an additive bias −log p_cf on the log-probabilities
 *   fine-tuned    a SequenceClassifier with pooling 'last' whose score head starts as the label words'
 *                 output vectors (so step 0 is the zero-shot classifier), fine-tuned on the few labels
 *                 with the experiment's usual recipe: prompt-based fine-tuning, no new random weights.
 */
import type { Encoding, Tokenizer } from '../tokenizers/types.ts';
import type { Module } from '../nn/module.ts';
import { GPT2Model } from '../models/gpt.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import type { TextExample } from './data.ts';
import { collate, padTokenId } from './encode.ts';
import { pool, runBackbone, SequenceClassifier } from '../models/heads.ts';
import type { LabelMap } from '../models/labels.ts';
import { withoutIncompleteTail } from '../infer/decode.ts';

export interface PromptSpec {
  /** Contains `{text}` once (and `{text_pair}` for pairs, else the pair follows the text). */
  template: string;
  /** Label → label words (a word's leading-space token is used: " great"). */
  verbalizer: Record<string, string[]>;
}

/** Built-in tasks' prompts; any other task gets the label names themselves as label words. */
const DEFAULT_PROMPTS: Record<string, PromptSpec> = {
  sentiment: { template: '{text} It was', verbalizer: { positive: ['great', 'good'], negative: ['terrible', 'bad'] } },
  spam: { template: '{text}\nThis message is', verbalizer: { spam: ['spam', 'junk'], ham: ['personal', 'work'] } },
};

export function defaultPrompt(task: string, labels: LabelMap): PromptSpec {
  const known = DEFAULT_PROMPTS[task];
  if (known && labels.labels.every((l) => known.verbalizer[l])) return known;
  // The label names as words ("science_fiction" → "science"): a guess that needs no task knowledge.
  const verbalizer = Object.fromEntries(labels.labels.map((l) => [l, [l.replace(/[_-]+/g, ' ').trim().split(/\s+/)[0]!.toLowerCase()]]));
  return { template: '{text}\nTopic:', verbalizer };
}

/** Parses `--verbalizer "positive=great|good,negative=terrible|bad"` (or a JSON object). */
export function parseVerbalizer(spec: string, labels: LabelMap): Record<string, string[]> {
  let out: Record<string, string[]>;
  if (spec.trim().startsWith('{')) {
    const raw = JSON.parse(spec) as Record<string, string | string[]>;
    out = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
  } else {
    out = {};
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new RangeError(`--verbalizer: "${part}" is not label=word[|word…]`);
      out[part.slice(0, eq).trim()] = part.slice(eq + 1).split('|').map((w) => w.trim()).filter(Boolean);
    }
  }
  for (const l of labels.labels) if (!out[l]?.length) throw new RangeError(`--verbalizer names no word for label "${l}" (labels: ${labels.labels.join(', ')})`);
  for (const l of Object.keys(out)) if (!labels.has(l)) throw new RangeError(`--verbalizer names "${l}", which is not a label (labels: ${labels.labels.join(', ')})`);
  return out;
}

export function checkTemplate(template: string): void {
  if (!template.includes('{text}')) throw new RangeError(`--template must contain {text}, got ${JSON.stringify(template)}`);
}

/** The first token of " word" (GPT-2 BPE marks a preceding space; the word as it follows "It was"). */
export function labelWordToken(tokenizer: Tokenizer, word: string): number {
  const ids = tokenizer.encode(` ${word}`, null, { addSpecialTokens: false }).ids;
  if (ids.length === 0) throw new RangeError(`label word "${word}" has no tokens`);
  return ids[0]!;
}

/**
 * Texts inside the template, the text cut (by tokens) so that the template's own words always fit in
 * maxLength: the end of the prompt is what the label word follows.
 */
export function applyTemplate(tokenizer: Tokenizer, examples: readonly TextExample[], template: string, maxLength: number): TextExample[] {
  checkTemplate(template);
  const fixed = tokenizer.encode(template.replace('{text}', '').replace('{text_pair}', ''), null, { addSpecialTokens: false }).ids.length;
  const budget = Math.max(8, maxLength - fixed - 2);
  const cut = (s: string) => {
    const ids = tokenizer.encode(s, null, { addSpecialTokens: false }).ids;
    // The cut can fall inside a character split over byte tokens (Chinese): drop its half, not U+FFFD.
    return ids.length <= budget ? s : withoutIncompleteTail(tokenizer.decode(ids.slice(0, budget)));
  };
  return examples.map((x) => {
    const text = cut(x.textPair ? `${x.text}\n${x.textPair}` : x.text);
    const filled = template.includes('{text_pair}') && x.textPair
      ? template.replace('{text}', cut(x.text)).replace('{text_pair}', cut(x.textPair))
      : template.replace('{text}', text);
    return { ...x, text: filled, textPair: undefined };
  });
}

/** A GPT sequence classifier whose head is the verbalizer's rows of the LM head (see the file comment). */
export function promptClassifier(body: GPT2Model, tokenizer: Tokenizer, labels: LabelMap, spec: PromptSpec, seed: number): SequenceClassifier {
  const model = new SequenceClassifier(body, labels, { seed, pooling: 'last', dropout: 0 });
  const c = body.cfg.n_embd;
  const wte = (body.lmHead ?? body.wte.weight).data; // the output embedding: the LM head's rows
  const w = model.head.weight.data; // [K, C] ('out_in')
  w.fill(0);
  labels.labels.forEach((label, k) => {
    const words = spec.verbalizer[label];
    if (!words?.length) throw new RangeError(`prompt: the verbalizer has no word for label "${label}"`);
    for (const word of words) {
      const id = labelWordToken(tokenizer, word);
      for (let j = 0; j < c; j++) w[k * c + j]! += wte[id * c + j]! / words.length;
    }
  });
  return model;
}

/**
 * Runs `fn` on the prompts in batches (tokenized, padded, maxLength), in eval mode without autograd;
 * `start` is the index of the batch's first prompt. The batch loop of every prompt scorer.
 */
export function forEachPromptBatch(model: Module, tokenizer: Tokenizer, prompts: readonly TextExample[], maxLength: number, batchSize: number,
  fn: (batch: ReturnType<typeof collate>, encodings: Encoding[], start: number) => void): void {
  const was = model.training;
  model.eval();
  try {
    for (let i = 0; i < prompts.length; i += batchSize) {
      const encs = prompts.slice(i, i + batchSize).map((x) => tokenizer.encode(x.text, null, { maxLength }));
      const batch = collate(encs, padTokenId(tokenizer));
      noGrad(() => withScope(() => fn(batch, encs, i)));
    }
  } finally {
    model.train(was);
  }
}

/** Class log-probabilities log softmax(s) of prompted texts under a prompt classifier, N×K row-major. */
export function promptLogProbs(model: SequenceClassifier, tokenizer: Tokenizer, prompts: readonly TextExample[], maxLength: number, batchSize = 32): Float64Array {
  const k = model.labels.size;
  const out = new Float64Array(prompts.length * k);
  forEachPromptBatch(model, tokenizer, prompts, maxLength, batchSize, (batch, _encs, start) => {
    const { hidden, pooled } = runBackbone(model.backbone, batch);
    const logits = model.head.forward(pool(hidden, pooled, batch, 'last')).data;
    for (let r = 0; r < batch.batch; r++) logSoftmaxInto(logits, r * k, k, out, (start + r) * k);
  });
  return out;
}

/** out[at … at+k) = log softmax of x[off … off+k). */
export function logSoftmaxInto(x: ArrayLike<number>, off: number, k: number, out: Float64Array, at: number): void {
  let max = -Infinity;
  for (let j = 0; j < k; j++) max = Math.max(max, x[off + j]!);
  let z = 0;
  for (let j = 0; j < k; j++) z += Math.exp(x[off + j]! - max);
  const lz = max + Math.log(z);
  for (let j = 0; j < k; j++) out[at + j] = x[off + j]! - lz;
}

export const CONTENT_FREE = ['N/A', '', '[MASK]'];

/**
 * Contextual calibration: −log of the mean class probabilities over content-free prompts, a bias to
 * add to every text's log-probabilities before the argmax.
 */
export function calibrationBias(model: SequenceClassifier, tokenizer: Tokenizer, template: string, maxLength: number): Float64Array {
  const prompts = CONTENT_FREE.map((t) => ({ text: template.replace('{text}', t).replace('{text_pair}', t).replace(/^\s+/, '') || ' ' }));
  return biasFromContentFree(promptLogProbs(model, tokenizer, prompts, maxLength), model.labels.size);
}

/** Contextual calibration's bias from the content-free prompts' log p (N×K): −log of the mean probability per class. */
export function biasFromContentFree(lp: Float64Array, k: number): Float64Array {
  const n = lp.length / k;
  const bias = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let p = 0;
    for (let r = 0; r < n; r++) p += Math.exp(lp[r * k + j]!);
    bias[j] = -Math.log(p / n);
  }
  return bias;
}

/** argmax_k (logp_k + bias_k) per row. */
export function argmaxRows(logp: Float64Array, k: number, bias?: Float64Array): Int32Array {
  const n = logp.length / k;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    let bestV = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = logp[r * k + j]! + (bias ? bias[j]! : 0);
      if (v > bestV) { bestV = v; best = j; }
    }
    out[r] = best;
  }
  return out;
}
