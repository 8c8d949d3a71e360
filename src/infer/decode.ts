/**
 * Fast generation with a KV cache: batched prompts, streaming, sampling controls and stop strings.
 *
 * Per step and sequence, from the last position's logits z (sampling as in generate.ts's sampleToken):
 *   repetition penalty ρ (CTRL / HF): for every id already in the context, z_i = z_i > 0 ? z_i/ρ : z_i·ρ
 *   then temperature / top-k / top-p, drawn with the sequence's own Rng(seed), so a prompt gives the
 *   same text alone or inside a batch.
 *
 * Context-length boundary (documented policy): with contextOverflow 'slide' (default), when a
 * sequence's window would exceed n_positions the cache is rebuilt from its last n_positions − slideBy
 * tokens (slideBy defaults to n_positions/4; 0 re-encodes the last n_positions every step, like
 * generate.ts). With 'error', generation throws a ContextOverflowError instead. In a batch, the window
 * slides when the longest sequence fills the context; each row keeps its last n_positions − slideBy
 * columns. The window's tokens are re-encoded from position 0, exactly what an uncached model sees.
 */
import { Rng } from '../tensor/random.ts';
import { sampleToken, type SamplingOptions } from './generate.ts';
import { KVCache, forwardCached, transposedEmbedding } from './kv-cache.ts';
import type { GPT } from '../models/gpt.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

export interface DecodeOptions extends SamplingOptions {
  /** New tokens per sequence (default 64). */
  maxTokens?: number;
  /** > 1 discourages repeats, 1 = off (default). */
  repetitionPenalty?: number;
  /** Token ids that end a sequence (not included in the output). */
  stopIds?: readonly number[];
  contextOverflow?: 'slide' | 'error';
  /** Tokens dropped from the window when it slides (0 ≤ slideBy < n_positions). */
  slideBy?: number;
}

export class ContextOverflowError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'ContextOverflowError';
  }
}

export type FinishReason = 'stop' | 'length';

/** One decoding step: the new token of every still-running sequence. */
export interface StepEvent {
  /** ids[i] is sequence i's new token, or -1 when it had already finished. */
  ids: Int32Array;
  /** Sequences that finished at this step, with why (a stop id is not added to ids). */
  finished: Array<{ index: number; reason: FinishReason }>;
}

export function checkDecodeOptions(o: DecodeOptions, nPositions: number): void {
  const t = o.temperature ?? 1;
  if (!(t >= 0 && Number.isFinite(t))) throw new RangeError(`temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new RangeError(`topK must be a non-negative integer, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
  if (o.maxTokens !== undefined && !(Number.isInteger(o.maxTokens) && o.maxTokens >= 0)) throw new RangeError(`maxTokens must be a non-negative integer, got ${o.maxTokens}`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) throw new RangeError(`repetitionPenalty must be > 0, got ${o.repetitionPenalty}`);
  if (o.slideBy !== undefined && !(Number.isInteger(o.slideBy) && o.slideBy >= 0 && o.slideBy < nPositions)) throw new RangeError(`slideBy must be an integer in [0, ${nPositions}), got ${o.slideBy}`);
  if (o.contextOverflow !== undefined && o.contextOverflow !== 'slide' && o.contextOverflow !== 'error') throw new RangeError(`contextOverflow must be 'slide' or 'error', got ${String(o.contextOverflow)}`);
}

/** z_i ← z_i/ρ (z_i > 0) or z_i·ρ (z_i ≤ 0) for each distinct id in context. */
export function applyRepetitionPenalty(logits: Float32Array, context: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(context)) {
    const z = logits[id]!;
    logits[id] = z > 0 ? z / penalty : z * penalty;
  }
}

/** Window start for a sequence of `length` tokens whose window began at `start` (the sliding policy). */
export function slideWindowStart(start: number, length: number, nPositions: number, slideBy: number): number {
  return length - start > nPositions ? length - (nPositions - slideBy) : start;
}

/**
 * Generates from token-id prompts, one step per iteration. Holds one KV cache for the whole batch.
 * `onLogits` sees each step's [B, V] logits before the penalty (for tests and tools).
 */
export function* decodeSteps(model: GPT, prompts: ReadonlyArray<readonly number[]>, o: DecodeOptions = {}, onLogits?: (logits: Float32Array) => void): Generator<StepEvent> {
  const N = model.config.n_positions;
  const V = model.config.vocab_size;
  checkDecodeOptions(o, N);
  const B = prompts.length;
  if (B === 0) return;
  for (const [i, p] of prompts.entries()) {
    if (p.length === 0) throw new RangeError(`generate: prompt ${i} is empty (give at least one token)`);
    if (p.length > N) throw new ContextOverflowError(`generate: prompt ${i} has ${p.length} tokens, more than the model's context of ${N}`);
    for (const id of p) if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new RangeError(`generate: prompt ${i} token ${id} is outside the vocabulary (size ${V})`);
  }
  const maxTokens = o.maxTokens ?? 64;
  const slideBy = o.slideBy ?? Math.floor(N / 4);
  const stopIds = new Set(o.stopIds ?? []);
  const penalty = o.repetitionPenalty ?? 1;
  const rngs = prompts.map(() => new Rng(o.seed ?? 0));
  const tokens = prompts.map((p) => [...p]);
  const produced = new Int32Array(B);
  const done = new Uint8Array(B);
  const cache = KVCache.forModel(model, B);
  const headT = transposedEmbedding(model);
  let running = maxTokens > 0 ? B : 0;
  // The longest sequence decides when the shared window slides; `start` is its window start.
  let longest = Math.max(...prompts.map((p) => p.length));
  let start = 0;

  const prefill = (keep: number): Float32Array => {
    cache.reset();
    const ids = new Int32Array(B * keep);
    const padding = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const tail = tokens[b]!.slice(-keep);
      padding[b] = keep - tail.length;
      ids.set(tail, b * keep + padding[b]!);
    }
    return forwardCached(model, cache, ids, keep, padding, { headT });
  };

  let logits = prefill(longest);
  while (running > 0) {
    onLogits?.(logits);
    const step = new Int32Array(B).fill(-1);
    const finished: StepEvent['finished'] = [];
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      const row = logits.subarray(b * V, (b + 1) * V);
      if (penalty !== 1) applyRepetitionPenalty(row, tokens[b]!, penalty);
      const id = sampleToken(row, o, rngs[b]!);
      if (stopIds.has(id)) {
        done[b] = 1;
        finished.push({ index: b, reason: 'stop' });
        continue;
      }
      step[b] = id;
      tokens[b]!.push(id);
      if (++produced[b]! >= maxTokens) {
        done[b] = 1;
        finished.push({ index: b, reason: 'length' });
      }
    }
    running -= finished.length;
    yield { ids: step, finished };
    if (running === 0) break;
    // Finished rows keep receiving a harmless token so the batch stays rectangular.
    longest++;
    const next = new Int32Array(B);
    for (let b = 0; b < B; b++) next[b] = step[b]! >= 0 ? step[b]! : tokens[b]![tokens[b]!.length - 1]!;
    for (let b = 0; b < B; b++) if (step[b]! < 0) tokens[b]!.push(next[b]!);
    const newStart = slideWindowStart(start, longest, N, slideBy);
    if (newStart !== start) {
      if (o.contextOverflow === 'error') {
        throw new ContextOverflowError(`generate: the context is full (${N} tokens = n_positions); use contextOverflow 'slide' or fewer maxTokens`);
      }
      start = newStart;
      logits = prefill(longest - start);
    } else {
      logits = forwardCached(model, cache, next, 1, undefined, { headT });
    }
  }
}

/** Generated ids per prompt (stop ids excluded). */
export function generateBatchIds(model: GPT, prompts: ReadonlyArray<readonly number[]>, o: DecodeOptions = {}): Array<{ ids: number[]; finishReason: FinishReason }> {
  const out = prompts.map(() => ({ ids: [] as number[], finishReason: 'length' as FinishReason }));
  withEval(model, () => {
    for (const ev of decodeSteps(model, prompts, o)) {
      ev.ids.forEach((id, b) => { if (id >= 0) out[b]!.ids.push(id); });
      for (const f of ev.finished) out[f.index]!.finishReason = f.reason;
    }
  });
  return out;
}

function withEval<T>(model: GPT, fn: () => T): T {
  const was = model.training;
  model.eval();
  try {
    return fn();
  } finally {
    model.train(was);
  }
}

export interface TextDecodeOptions extends DecodeOptions {
  /** Strings that end a sequence; the text stops before the first one. */
  stop?: readonly string[];
}

/** A streamed piece of text for one prompt. `finishReason` is set on its last event. */
export interface TextEvent {
  index: number;
  text: string;
  finishReason?: FinishReason;
}

export interface Completion {
  text: string;
  ids: number[];
  promptTokens: number;
  finishReason: FinishReason;
}

/** Prompt ids without special tokens; an empty prompt starts from the end-of-text token. */
export function encodePrompt(tokenizer: Tokenizer, prompt: string): number[] {
  const ids = tokenizer.encode(prompt, null, { addSpecialTokens: false }).ids;
  if (ids.length > 0) return [...ids];
  const eos = endOfText(tokenizer);
  if (eos === undefined) throw new RangeError('generate: empty prompt and the tokenizer has no end-of-text token to start from');
  return [eos];
}

function endOfText(tokenizer: Tokenizer): number | undefined {
  const tok = tokenizer.specialTokens.eos ?? tokenizer.specialTokens.bos;
  return tok !== undefined ? tokenizer.tokenToId(tok) : undefined;
}

/** Longest suffix of text that is a proper prefix of some stop string (held back while streaming). */
function heldBack(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--) if (text.endsWith(s.slice(0, k))) { hold = k; break; }
  }
  return hold;
}

/**
 * Streams text pieces for several prompts, token by token. Text is emitted only once it is stable:
 * not ending in an incomplete UTF-8 sequence (U+FFFD) and not a possible start of a stop string.
 */
export function* streamCompletions(model: GPT, tokenizer: Tokenizer, prompts: readonly string[], o: TextDecodeOptions = {}): Generator<TextEvent, Completion[]> {
  const stops = (o.stop ?? []).filter((s) => s.length > 0);
  const eos = endOfText(tokenizer);
  const stopIds = o.stopIds ?? (eos !== undefined ? [eos] : []);
  const promptIds = prompts.map((p) => encodePrompt(tokenizer, p));
  const results: Completion[] = promptIds.map((p) => ({ text: '', ids: [], promptTokens: p.length, finishReason: 'length' }));
  const emitted = prompts.map(() => 0);
  const closed = new Uint8Array(prompts.length);
  const was = model.training;
  model.eval();
  try {
    const steps = decodeSteps(model, promptIds, { ...o, stopIds });
    for (const ev of steps) {
      const reasons = new Map(ev.finished.map((f) => [f.index, f.reason]));
      const events: TextEvent[] = [];
      for (let b = 0; b < prompts.length; b++) {
        if (closed[b]) continue;
        const r = results[b]!;
        if (ev.ids[b]! >= 0) r.ids.push(ev.ids[b]!);
        let finish = reasons.get(b);
        let full = tokenizer.decode(r.ids, { skipSpecialTokens: true });
        const hit = stops.map((s) => full.indexOf(s)).filter((i) => i >= 0);
        if (hit.length) {
          full = full.slice(0, Math.min(...hit));
          finish = 'stop';
        }
        let stable = full.length;
        if (!finish) {
          // An incomplete UTF-8 sequence at the end decodes to U+FFFD until its last byte arrives.
          for (let k = 0; k < 3 && stable > 0 && full[stable - 1] === '\uFFFD'; k++) stable--;
          stable = Math.min(stable, full.length - heldBack(full, stops));
        }
        const piece = full.slice(emitted[b]!, Math.max(stable, emitted[b]!));
        emitted[b] = Math.max(stable, emitted[b]!);
        r.text = full.slice(0, emitted[b]);
        if (finish) {
          r.finishReason = finish;
          closed[b] = 1;
          events.push({ index: b, text: piece, finishReason: finish });
        } else if (piece) {
          events.push({ index: b, text: piece });
        }
      }
      yield* events;
      if (closed.every((c) => c === 1)) break;
    }
  } finally {
    model.train(was);
  }
  return results;
}

/** Completes several prompts at once (one batch, one KV cache). */
export function complete(model: GPT, tokenizer: Tokenizer, prompts: readonly string[], o: TextDecodeOptions = {}): Completion[] {
  const it = streamCompletions(model, tokenizer, prompts, o);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/**
 * The same stream as an async iterator that yields to the event loop between tokens, so a server
 * can interleave other work and cancel with `signal`.
 */
export async function* streamCompletionsAsync(model: GPT, tokenizer: Tokenizer, prompts: readonly string[], o: TextDecodeOptions & { signal?: AbortSignal } = {}): AsyncGenerator<TextEvent, Completion[] | null> {
  const it = streamCompletions(model, tokenizer, prompts, o);
  try {
    for (;;) {
      if (o.signal?.aborted) return null;
      const r = it.next();
      if (r.done) return r.value;
      yield r.value;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    it.return?.([]);
  }
}
