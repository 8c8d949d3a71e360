/**
 * Autoregressive sampling from a causal LM (GPT-2 or Llama-family), one prompt at a time: a
 * DecodeBatch of one sequence (KV-cached, batch.ts). The context policy is the simple one: a prompt
 * longer than the context n (n_positions / max_position_embeddings) is cropped to its last n tokens,
 * and once the sequence is longer than n each step re-encodes its last n tokens (slideBy 0), exactly
 * what an uncached model cropped to its window sees (nanoGPT's generate). Stop strings end the text
 * on the same tokens. Sampling (temperature, top-k, top-p, seed) is in sampling.ts.
 */
import { DecodeBatch, type FinishReason, type Sequence } from './batch.ts';
import { TextStream, pinnedDecoding, withEval, withoutIncompleteTail } from './decode.ts';
import type { SamplingOptions } from './sampling.ts';
import { decoderContext, type CausalDecoder } from './kv-cache.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

export { sampleToken, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  /** > 1 discourages repeats, 1 = off (default). */
  repetitionPenalty?: number;
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

export interface GenerateTextOptions extends GenerateOptions {
  /** Strings that end the text: it stops before the first one (checked as the text grows). */
  stop?: readonly string[];
}

/** Continues `prompt` (token ids) by up to maxTokens ids; returns only the new ids. */
export function generateIds(model: CausalDecoder, prompt: readonly number[], o: GenerateOptions = {}): number[] {
  return decodeOne(model, prompt, o).output;
}

/** Decodes one prompt; `onStep` sees each step's id (-1 for a stop id) and returns false to end there. */
function decodeOne(model: CausalDecoder, prompt: readonly number[], o: GenerateOptions, onStep?: (id: number, finishReason?: FinishReason) => boolean): Sequence {
  checkOptions(o);
  if (prompt.length === 0) throw new RangeError('generate: the prompt must contain at least one token');
  const vocab = model.config.vocab_size;
  for (const id of prompt) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new RangeError(`generate: prompt token ${id} is outside the vocabulary (size ${vocab})`);
  }
  return pinnedDecoding(() => withEval(model, () => {
    const batch = new DecodeBatch(model);
    const stopIds = o.stopId !== undefined && o.stopId !== null ? [o.stopId] : [];
    // A prompt longer than the context is cropped to its last n_positions tokens, as the window would be.
    const seq = batch.add(prompt.slice(-decoderContext(model)), { ...o, maxTokens: o.maxTokens ?? 64, stopIds, slideBy: 0 });
    while (batch.size > 0) {
      for (const step of batch.sample()) if (onStep && !onStep(step.id, step.finishReason)) batch.remove(seq);
      batch.advance();
    }
    return seq;
  }));
}

/** Text in, continuation out. An empty prompt starts from the end-of-text token. */
export function generateText(model: CausalDecoder, tokenizer: Tokenizer, prompt: string, o: GenerateTextOptions = {}): string {
  // A single string (the OpenAI API's form) would fail inside the loop as "o.stop.some is not a function".
  if (o.stop !== undefined && !(Array.isArray(o.stop) && o.stop.every((s) => typeof s === 'string'))) throw new TypeError(`generate: stop must be an array of strings, got ${JSON.stringify(o.stop)}`);
  const eosToken = tokenizer.specialTokens.eos ?? tokenizer.specialTokens.bos;
  const eos = eosToken !== undefined ? tokenizer.tokenToId(eosToken) : undefined;
  let ids = tokenizer.encode(prompt, null, { addSpecialTokens: false }).ids;
  if (ids.length === 0) {
    if (eos === undefined) throw new RangeError('generate: empty prompt and the tokenizer has no end-of-text token to start from');
    ids = [eos];
  }
  const stopId = o.stopId === undefined ? (eos ?? null) : o.stopId;
  // Without stop strings the text is decoded once at the end, not once per token as a TextStream does.
  if (!o.stop?.some((s) => s.length > 0)) return withoutIncompleteTail(tokenizer.decode(generateIds(model, ids, { ...o, stopId }), { skipSpecialTokens: true }));
  const stream = new TextStream(tokenizer, o.stop, ids.length);
  decodeOne(model, ids, { ...o, stopId }, (id, finishReason) => {
    stream.push(id, finishReason);
    return !stream.closed;
  });
  return stream.result.text;
}

/** The notice for a prompt longer than the context (generateIds keeps its last `context` tokens), or null. */
export function promptCropNotice(promptTokens: number, context: number): string | null {
  return promptTokens > context
    ? `the prompt has ${promptTokens} tokens, more than the model's context of ${context}; its first ${promptTokens - context} tokens are dropped`
    : null;
}

/**
 * A request for far more tokens than the model's context (more than 16 windows) is almost always a
 * mistake: past the context the window slides, every token costs a full forward, and the text loses
 * its beginning. The message for it, or null.
 */
export function maxTokensWarning(maxTokens: number, context: number): string | null {
  return maxTokens > 16 * context
    ? `--max-tokens ${maxTokens} is more than 16 × the model's context of ${context} tokens: past the context the window slides, every token is slow, and the text loses its beginning`
    : null;
}
