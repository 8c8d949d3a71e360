/**
 * Fast generation with a KV cache: batched prompts, streaming, sampling controls and stop strings.
 * The batch itself (per-sequence caches, sampling, the context-window policy) is DecodeBatch in
 * batch.ts; this file drives it for a fixed set of prompts and turns ids into streamed text.
 */
import { DecodeBatch, type DecodeOptions, type FinishReason, type Sequence } from './batch.ts';
import type { CausalDecoder } from './kv-cache.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { pinComputeThreads } from '../backend/index.ts';

export {
  ContextOverflowError, applyRepetitionPenalty, checkDecodeOptions, slideWindowStart,
  type DecodeOptions, type FinishReason,
} from './batch.ts';

/** One decoding step: the new token of every still-running sequence. */
export interface StepEvent {
  /** ids[i] is sequence i's new token, or -1 when it had already finished. */
  ids: Int32Array;
  /** Sequences that finished at this step, with why (a stop id is not added to ids). */
  finished: Array<{ index: number; reason: FinishReason }>;
}

/**
 * Generates from token-id prompts, one step per iteration: every prompt is one sequence of a
 * DecodeBatch. `onLogits` sees each step's [running, V] logits (rows in prompt order) before the penalty.
 */
export function* decodeSteps(model: CausalDecoder, prompts: ReadonlyArray<readonly number[]>, o: DecodeOptions = {}, onLogits?: (logits: Float32Array) => void): Generator<StepEvent> {
  const batch = new DecodeBatch(model);
  const seqs: Sequence[] = prompts.map((p, i) => {
    try {
      return batch.add(p, o);
    } catch (e) {
      if (e instanceof RangeError) e.message = e.message.replace(/^generate: the prompt/, `generate: prompt ${i}`);
      throw e;
    }
  });
  const index = new Map(seqs.map((s, i) => [s, i]));
  while (batch.size > 0) {
    if (onLogits) {
      const v = model.config.vocab_size;
      const all = new Float32Array(batch.size * v);
      batch.sequences.forEach((s, r) => all.set(s.logits!, r * v));
      onLogits(all);
    }
    const ids = new Int32Array(prompts.length).fill(-1);
    const finished: StepEvent['finished'] = [];
    for (const s of batch.sample()) {
      const i = index.get(s.sequence)!;
      ids[i] = s.id;
      if (s.finishReason) finished.push({ index: i, reason: s.finishReason });
    }
    yield { ids, finished };
    batch.advance();
    const failed = batch.failed.splice(0);
    if (failed.length) throw failed[0]!.error;
  }
}

/** Generated ids per prompt (stop ids excluded). */
export function generateBatchIds(model: CausalDecoder, prompts: ReadonlyArray<readonly number[]>, o: DecodeOptions = {}): Array<{ ids: number[]; finishReason: FinishReason }> {
  const out = prompts.map(() => ({ ids: [] as number[], finishReason: 'length' as FinishReason }));
  pinnedDecoding(() => withEval(model, () => {
    for (const ev of decodeSteps(model, prompts, o)) {
      ev.ids.forEach((id, b) => { if (id >= 0) out[b]!.ids.push(id); });
      for (const f of ev.finished) out[f.index]!.finishReason = f.reason;
    }
  }));
  return out;
}

/**
 * Runs a whole decoding with the compute threads pinned (pinComputeThreads, as training does):
 * beside another busy process, unpinned decoding of 8 streams lost half its speed, pinned ~10 %.
 * Only around calls that finish: across a generator's yields the caller's code would run pinned.
 */
export function pinnedDecoding<T>(fn: () => T): T {
  const unpin = pinComputeThreads();
  try {
    return fn();
  } finally {
    unpin();
  }
}

/** Runs fn with the model in eval mode (no dropout), restoring its mode after. */
export function withEval<T>(model: CausalDecoder, fn: () => T): T {
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

/** The stop ids of a text generation: the caller's, or the tokenizer's end-of-text token. */
export function textStopIds(tokenizer: Tokenizer, o: { stopIds?: readonly number[] }): readonly number[] {
  const eos = endOfText(tokenizer);
  return o.stopIds ?? (eos !== undefined ? [eos] : []);
}

/**
 * U+FFFD units ending `text` that may be a UTF-8 sequence cut short (a byte-level token holding the
 * first bytes of a CJK character or an emoji): TextDecoder gives one per cut sequence, SentencePiece
 * byte fallback one per byte, so at most 3. A genuine trailing U+FFFD cannot be told apart from the
 * decoded string; it is rare enough to be treated the same.
 */
function incompleteTailLength(text: string): number {
  let k = 0;
  while (k < 3 && k < text.length && text[text.length - 1 - k] === '\uFFFD') k++;
  return k;
}

/**
 * The text of a finished generation without a character it stopped in the middle of (max_tokens or an
 * end-of-text id after half a character): those bytes will never be completed, and showing U+FFFD for
 * them is what users read as broken Chinese output (vLLM drops them too).
 */
export function withoutIncompleteTail(text: string): string {
  return text.slice(0, text.length - incompleteTailLength(text));
}

/**
 * Turns one sequence's ids into streamed text. Text is emitted only once it is stable: not ending in
 * an incomplete UTF-8 sequence (U+FFFD) and not a possible start of a stop string. A stop string
 * ends the text before it (finish 'stop'); the caller then takes the sequence out of its batch. A
 * character still incomplete when the sequence finishes is left out (withoutIncompleteTail).
 */
export class TextStream {
  readonly result: Completion;
  private emitted = 0;
  closed = false;
  private readonly stops: string[];

  constructor(private readonly tokenizer: Tokenizer, stops: readonly string[], promptTokens: number) {
    this.stops = stops.filter((s) => s.length > 0);
    this.result = { text: '', ids: [], promptTokens, finishReason: 'length' };
  }

  /** One step: the new id (-1 for none) and the batch's finish reason; the text piece to send, if any. */
  push(id: number, finishReason?: FinishReason): { text: string; finishReason?: FinishReason } | null {
    if (this.closed) return null;
    const r = this.result;
    if (id >= 0) r.ids.push(id);
    let finish = finishReason;
    let full = this.tokenizer.decode(r.ids, { skipSpecialTokens: true });
    const hit = this.stops.map((s) => full.indexOf(s)).filter((i) => i >= 0);
    if (hit.length) {
      full = full.slice(0, Math.min(...hit));
      finish = 'stop';
    } else if (finish) {
      full = withoutIncompleteTail(full);
    }
    let stable = full.length;
    if (!finish) {
      // An incomplete UTF-8 sequence at the end decodes to U+FFFD until its last byte arrives.
      stable -= incompleteTailLength(full);
      stable = Math.min(stable, full.length - heldBack(full, this.stops));
    }
    const piece = full.slice(this.emitted, Math.max(stable, this.emitted));
    this.emitted = Math.max(stable, this.emitted);
    r.text = full.slice(0, this.emitted);
    if (finish) {
      r.finishReason = finish;
      this.closed = true;
      return { text: piece, finishReason: finish };
    }
    return piece ? { text: piece } : null;
  }
}

/** Streams text pieces for several prompts, token by token (one DecodeBatch; see TextStream). */
export function* streamCompletions(model: CausalDecoder, tokenizer: Tokenizer, prompts: readonly string[], o: TextDecodeOptions = {}): Generator<TextEvent, Completion[]> {
  const stopIds = textStopIds(tokenizer, o);
  const promptIds = prompts.map((p) => encodePrompt(tokenizer, p));
  const streams = promptIds.map((p) => new TextStream(tokenizer, o.stop ?? [], p.length));
  const was = model.training;
  model.eval();
  try {
    const batch = new DecodeBatch(model);
    const seqs = promptIds.map((p) => batch.add(p, { ...o, stopIds }));
    const index = new Map(seqs.map((s, i) => [s, i]));
    while (batch.size > 0) {
      const events: TextEvent[] = [];
      for (const step of batch.sample()) {
        const i = index.get(step.sequence)!;
        const ev = streams[i]!.push(step.id, step.finishReason);
        if (ev) events.push({ index: i, ...ev });
        if (streams[i]!.closed) batch.remove(step.sequence);
      }
      yield* events;
      batch.advance();
      const failed = batch.failed.splice(0);
      if (failed.length) throw failed[0]!.error;
    }
  } finally {
    model.train(was);
  }
  return streams.map((s) => s.result);
}

/** Completes several prompts at once (one batch, one KV cache). */
export function complete(model: CausalDecoder, tokenizer: Tokenizer, prompts: readonly string[], o: TextDecodeOptions = {}): Completion[] {
  return pinnedDecoding(() => {
    const it = streamCompletions(model, tokenizer, prompts, o);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  });
}

/**
 * The same stream as an async iterator that yields to the event loop between tokens, so a server
 * can interleave other work and cancel with `signal`.
 */
export async function* streamCompletionsAsync(model: CausalDecoder, tokenizer: Tokenizer, prompts: readonly string[], o: TextDecodeOptions & { signal?: AbortSignal } = {}): AsyncGenerator<TextEvent, Completion[] | null> {
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
