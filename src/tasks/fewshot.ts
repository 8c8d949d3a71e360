/**
 * Zero- and few-shot classification with a causal LM (GPT-3 style "in-context learning"): no weights
 * change; the model reads k labelled demonstrations and the query, rendered from a template,
 *
 *   Review: the food was great\nSentiment: positive\n\nReview: awful service\nSentiment: negative\n\n
 *   Review: <query>\nSentiment:
 *
 * and predicts the label whose verbalizer (" positive" / " negative") is the most likely continuation:
 *
 *   LL(c | x) = Σ_j log p(c_j | x, c_<j) = Σ_j ( z[t_j, c_j] − logsumexp_v z[t_j, v] ),  t_j = |x| + j − 1
 *
 * where z are the logits of the sequence x·c (position t predicts token t + 1). Sums, not means: the
 * verbalizers of the built-in tasks are one or two tokens each, and summing is the plain likelihood.
 * Demonstrations are drawn per query with a seed from the training split (stratified, so every label
 * shows up when k ≥ #labels); when the prompt is longer than the model's context, whole demonstrations
 * are dropped from the front (the effective number of shots is reported).
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { decoderContext, type CausalDecoder } from '../infer/kv-cache.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { mix32 } from '../util/random.ts';
import type { TextExample } from './data.ts';
import { stratifiedSample } from './labels.ts';
import { classificationReport, type ClassificationReport } from './metrics.ts';

export interface PromptTemplate {
  /** One example's input; `{text}` (and `{text_pair}`) are replaced by the example's text(s). */
  input: string;
  /** label → the continuation that names it (with its leading space, as a byte-level BPE sees words). */
  verbalizers: Record<string, string>;
  /** Between demonstrations (and before the query). */
  separator: string;
}

/** The template of the built-in sentiment task (and a generic one for any other label set). */
export function defaultTemplate(task: string, labels: readonly string[]): PromptTemplate {
  if (task === 'sentiment') return { input: 'Review: {text}\nSentiment:', verbalizers: { positive: ' positive', negative: ' negative' }, separator: '\n\n' };
  return { input: 'Text: {text}\nLabel:', verbalizers: Object.fromEntries(labels.map((l) => [l, ` ${l}`])), separator: '\n\n' };
}

function fill(template: PromptTemplate, ex: { text: string; textPair?: string }): string {
  return template.input.replaceAll('{text}', ex.text).replaceAll('{text_pair}', ex.textPair ?? '');
}

/** The prompt for a query after the given demonstrations (each followed by its label's verbalizer). */
export function renderPrompt(template: PromptTemplate, shots: readonly TextExample[], query: { text: string; textPair?: string }): string {
  const demos = shots.map((s) => {
    const v = template.verbalizers[s.label ?? ''];
    if (v === undefined) throw new RangeError(`renderPrompt: demonstration label ${JSON.stringify(s.label)} has no verbalizer in the template`);
    return fill(template, s) + v + template.separator;
  });
  return demos.join('') + fill(template, query);
}

/** Context ids: the begin-of-text token the model was pre-trained with (documents start after it), then the prompt. */
function contextIds(model: CausalDecoder, tokenizer: Tokenizer, prompt: string): number[] {
  const ids = tokenizer.encode(prompt, null, { addSpecialTokens: false }).ids;
  const bos = model.config.bos_token_id;
  return typeof bos === 'number' ? [bos, ...ids] : ids;
}

function continuationIds(tokenizer: Tokenizer, continuations: readonly string[]): number[][] {
  return continuations.map((c) => {
    const ids = tokenizer.encode(c, null, { addSpecialTokens: false }).ids;
    if (ids.length === 0) throw new RangeError(`few-shot: the verbalizer ${JSON.stringify(c)} encodes to no tokens`);
    return ids;
  });
}

/**
 * LL(c_i | context) for every continuation, in one batched forward pass (rows context·c_i, right
 * padded: the model is causal, so padding never influences a scored position). A context too long for
 * the model loses tokens at its left end.
 */
export function continuationLogLikelihoods(model: CausalDecoder, tokenizer: Tokenizer, context: string | number[], continuations: readonly string[]): Float64Array {
  const conts = continuationIds(tokenizer, continuations);
  let ctx = typeof context === 'string' ? contextIds(model, tokenizer, context) : context;
  const longest = Math.max(...conts.map((c) => c.length));
  const room = decoderContext(model) - longest;
  if (room < 1) throw new RangeError(`few-shot: a verbalizer of ${longest} tokens does not fit the model's context of ${decoderContext(model)}`);
  if (ctx.length > room) ctx = ctx.slice(ctx.length - room);
  const b = conts.length;
  const t = ctx.length + longest;
  const ids = new Int32Array(b * t);
  conts.forEach((c, r) => {
    ids.set(ctx, r * t);
    ids.set(c, r * t + ctx.length);
  });
  const out = new Float64Array(b);
  const was = model.training;
  model.eval();
  try {
    noGrad(() => withScope(() => {
      const logits = model.forward(ids, b, t).logits.data;
      const v = model.config.vocab_size;
      conts.forEach((c, r) => {
        let ll = 0;
        c.forEach((token, j) => {
          const base = (r * t + ctx.length + j - 1) * v;
          let max = -Infinity;
          for (let k = 0; k < v; k++) max = Math.max(max, logits[base + k]!);
          let sum = 0;
          for (let k = 0; k < v; k++) sum += Math.exp(logits[base + k]! - max);
          ll += logits[base + token]! - max - Math.log(sum);
        });
        out[r] = ll;
      });
    }));
  } finally {
    model.train(was);
  }
  return out;
}

export interface FewShotOptions {
  model: CausalDecoder;
  tokenizer: Tokenizer;
  /** Demonstrations are drawn from here. */
  train: readonly TextExample[];
  /** Scored examples (e.g. the test split). */
  test: readonly TextExample[];
  /** Numbers of demonstrations, e.g. [0, 4, 16]. */
  shots: readonly number[];
  template: PromptTemplate;
  seed?: number;
  /** Score a stratified subset of this many test examples (default: all). */
  limit?: number;
  onProgress?: (done: number, total: number, shots: number) => void;
}

export interface FewShotResult {
  shots: number;
  /** Mean number of demonstrations that fitted the context. */
  meanShotsUsed: number;
  accuracy: number;
  macroF1: number;
  report: ClassificationReport;
}

export interface FewShotReport {
  labels: string[];
  count: number;
  /** The most frequent training label, predicted for everything. */
  majority: { label: string; accuracy: number };
  results: FewShotResult[];
}

/** The examples scored: all, or with a limit a stratified subset drawn with the seed. */
export function fewShotTestSet(test: readonly TextExample[], limit: number | undefined, seed: number): TextExample[] {
  return limit !== undefined && limit < test.length ? stratifiedSample(test, limit, (x) => x.label ?? '', seed) : [...test];
}

/**
 * Refuses templates whose scores would mean nothing: an input without {text} prompts every query
 * identically, and two labels sharing a continuation tie, so the first would win every time.
 */
export function checkTemplate(template: PromptTemplate): void {
  if (!template.input.includes('{text}')) throw new RangeError(`few-shot: the template ${JSON.stringify(template.input)} has no {text}, so every query would get the same prompt`);
  const v: unknown = template.verbalizers;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RangeError(`few-shot: the verbalizers must be an object of label → continuation text, got ${JSON.stringify(v)}`);
  const seen = new Map<string, string>();
  for (const [label, c] of Object.entries(v)) {
    if (typeof c !== 'string' || !c.trim()) throw new RangeError(`few-shot: the verbalizer of label ${JSON.stringify(label)} must be a non-empty string, got ${JSON.stringify(c)}`);
    const other = seen.get(c);
    if (other !== undefined) throw new RangeError(`few-shot: labels ${JSON.stringify(other)} and ${JSON.stringify(label)} share the verbalizer ${JSON.stringify(c)}; they could never be told apart`);
    seen.set(c, label);
  }
  if (seen.size === 0) throw new RangeError('few-shot: the verbalizers are empty (give one continuation per label)');
}

export function evaluateFewShot(o: FewShotOptions): FewShotReport {
  checkTemplate(o.template);
  const labels = Object.keys(o.template.verbalizers);
  const seed = o.seed ?? 0;
  const labelOf = (x: TextExample) => x.label ?? '';
  for (const x of [...o.train, ...o.test]) {
    if (!(labelOf(x) in o.template.verbalizers)) throw new RangeError(`few-shot: label ${JSON.stringify(x.label)} has no verbalizer (labels: ${labels.join(', ')})`);
  }
  const test = fewShotTestSet(o.test, o.limit, seed);
  if (test.length === 0) throw new RangeError('few-shot: no examples to evaluate');
  const yTrue = test.map((x) => labels.indexOf(labelOf(x)));

  const counts = new Map<string, number>();
  for (const x of o.train) counts.set(labelOf(x), (counts.get(labelOf(x)) ?? 0) + 1);
  const majorityLabel = labels.reduce((best, l) => ((counts.get(l) ?? 0) > (counts.get(best) ?? 0) ? l : best), labels[0]!);
  const majority = { label: majorityLabel, accuracy: yTrue.filter((y) => y === labels.indexOf(majorityLabel)).length / test.length };

  const continuations = labels.map((l) => o.template.verbalizers[l]!);
  const longestContinuation = Math.max(...continuationIds(o.tokenizer, continuations).map((c) => c.length));
  const results = o.shots.map((k) => {
    const yPred = new Int32Array(test.length);
    let shotsUsed = 0;
    test.forEach((query, i) => {
      let shots = k > 0 ? stratifiedSample(o.train, k, labelOf, mix32(seed ^ mix32(i + 1)) ^ k) : [];
      let ctx = contextIds(o.model, o.tokenizer, renderPrompt(o.template, shots, query));
      while (shots.length > 0 && ctx.length + longestContinuation > decoderContext(o.model)) {
        shots = shots.slice(1);
        ctx = contextIds(o.model, o.tokenizer, renderPrompt(o.template, shots, query));
      }
      shotsUsed += shots.length;
      const ll = continuationLogLikelihoods(o.model, o.tokenizer, ctx, continuations);
      let best = 0;
      for (let c = 1; c < ll.length; c++) if (ll[c]! > ll[best]!) best = c;
      yPred[i] = best;
      o.onProgress?.(i + 1, test.length, k);
    });
    const report = classificationReport(yTrue, yPred, labels);
    return { shots: k, meanShotsUsed: shotsUsed / test.length, accuracy: report.accuracy, macroF1: report.macroF1, report };
  });
  return { labels, count: test.length, majority, results };
}
