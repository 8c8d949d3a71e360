/**
 * Autoregressive sampling from a causal LM. Each new token re-runs the model on the whole context
 * (cropped to the last n_positions tokens) — simple and exact; a KV cache comes later.
 *
 * Next-token distribution from the last position's logits z:
 *   temperature τ:  p_i ∝ exp(z_i / τ)            (τ = 0 → greedy argmax)
 *   top-k:          keep the k largest p_i
 *   top-p (nucleus): keep the smallest prefix of p sorted descending whose mass ≥ p
 * then renormalise and draw with a seeded Rng, so the same seed gives the same text.
 */
import { noGrad, withScope } from '../tensor/tensor.ts';
import { Rng } from '../tensor/random.ts';
import type { GPT } from '../models/gpt.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

export interface SamplingOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Nucleus sampling mass in (0, 1] (1 or undefined = off). */
  topP?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  /** Stop when this id is produced (not included in the output). */
  stopId?: number | null;
}

function checkOptions(o: GenerateOptions): void {
  const t = o.temperature ?? 1;
  if (!(t >= 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new RangeError(`topK must be a non-negative integer, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
  if (o.maxTokens !== undefined && !(Number.isInteger(o.maxTokens) && o.maxTokens >= 0)) throw new RangeError(`maxTokens must be a non-negative integer, got ${o.maxTokens}`);
}

/** Draws one token id from a row of logits. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  const v = logits.length;
  const temperature = o.temperature ?? 1;
  let best = 0;
  for (let i = 1; i < v; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  // Softmax with the max subtracted for stability.
  const max = logits[best]!;
  let order = Array.from({ length: v }, (_, i) => i);
  const p = new Float64Array(v);
  for (let i = 0; i < v; i++) p[i] = Math.exp((logits[i]! - max) / temperature);
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  if ((topK > 0 && topK < v) || topP < 1) {
    order.sort((a, b) => p[b]! - p[a]! || a - b);
    if (topK > 0 && topK < v) order = order.slice(0, topK);
    if (topP < 1) {
      let total = 0;
      for (const i of order) total += p[i]!;
      let mass = 0;
      let keep = 0;
      while (keep < order.length && mass < topP * total) mass += p[order[keep++]!]!;
      order = order.slice(0, Math.max(1, keep));
    }
  }
  let total = 0;
  for (const i of order) total += p[i]!;
  let r = rng.next() * total;
  for (const i of order) {
    r -= p[i]!;
    if (r < 0) return i;
  }
  return order[order.length - 1]!;
}

/** Continues `prompt` (token ids) by up to maxTokens ids; returns only the new ids. */
export function generateIds(model: GPT, prompt: readonly number[], o: GenerateOptions = {}): number[] {
  checkOptions(o);
  if (prompt.length === 0) throw new RangeError('generate: the prompt must contain at least one token');
  const vocab = model.config.vocab_size;
  for (const id of prompt) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new RangeError(`generate: prompt token ${id} is outside the vocabulary (size ${vocab})`);
  }
  const window = model.config.n_positions;
  const rng = new Rng(o.seed ?? 0);
  const context = [...prompt];
  const out: number[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    for (let n = 0; n < (o.maxTokens ?? 64); n++) {
      const ctx = Int32Array.from(context.slice(-window));
      const t = ctx.length;
      const next = noGrad(() => withScope(() => {
        const { logits } = model.forward(ctx, 1, t);
        return sampleToken(logits.data.subarray((t - 1) * vocab, t * vocab), o, rng);
      }));
      if (o.stopId !== undefined && o.stopId !== null && next === o.stopId) break;
      out.push(next);
      context.push(next);
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}

/** Text in, continuation out. An empty prompt starts from the end-of-text token. */
export function generateText(model: GPT, tokenizer: Tokenizer, prompt: string, o: GenerateOptions = {}): string {
  const eosToken = tokenizer.specialTokens.eos ?? tokenizer.specialTokens.bos;
  const eos = eosToken !== undefined ? tokenizer.tokenToId(eosToken) : undefined;
  let ids = tokenizer.encode(prompt, null, { addSpecialTokens: false }).ids;
  if (ids.length === 0) {
    if (eos === undefined) throw new RangeError('generate: empty prompt and the tokenizer has no end-of-text token to start from');
    ids = [eos];
  }
  const stopId = o.stopId === undefined ? (eos ?? null) : o.stopId;
  return tokenizer.decode(generateIds(model, ids, { ...o, stopId }), { skipSpecialTokens: true });
}
