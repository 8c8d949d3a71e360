/**
 * Continuous batching: a set of running sequences that decode together, one token each per step.
 *
 * Each sequence owns a KV cache (src/infer/kv-cache.ts) and its own sampling options, seed, stop ids
 * and token budget. A new sequence is pre-filled on its own when added and joins the next step; a
 * finished one leaves without stalling the others. A step is one forward (GPT or Llama) over all running
 * sequences (one new token each, per-sequence positions and caches), so the weights are read once
 * for the whole batch. Since every row is computed the same way whatever the other rows are (see
 * fewRows in src/models/gpt.ts), a sequence gives the same tokens alone or inside a batch.
 *
 * Per step and sequence, from the pending logits z (sampling as in generate.ts's sampleToken):
 *   repetition penalty ρ (CTRL / HF): for every id already in the context, z_i = z_i > 0 ? z_i/ρ : z_i·ρ
 *   then temperature / top-k / top-p, drawn with the sequence's own Rng(seed).
 *
 * Context-length boundary: with contextOverflow 'slide' (default), when a sequence's window would
 * exceed the context n (GPT-2's n_positions, a Llama's max_position_embeddings) its cache is rebuilt from its last n_positions − slideBy tokens (slideBy defaults
 * to n_positions/4; 0 re-encodes the last n_positions every step). The window's tokens are re-encoded
 * from position 0, exactly what an uncached model sees. With 'error' the sequence ends with a
 * ContextOverflowError (`error`), and the others go on.
 */
import { noGrad, withScope } from '../tensor/tensor.ts';
import { Rng } from '../util/random.ts';
import { sampleToken, type SamplingOptions } from './sampling.ts';
import { KVCache, decoderContext, transposedHead, type CausalDecoder } from './kv-cache.ts';

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

/** One running sequence of a DecodeBatch. */
export class Sequence {
  /** Prompt and generated tokens. */
  readonly tokens: number[];
  readonly promptLength: number;
  /** Generated ids (stop ids excluded). */
  readonly output: number[] = [];
  finishReason: FinishReason | null = null;
  /** Set when the sequence could not go on (contextOverflow 'error'). */
  error: Error | null = null;
  /** Next-token logits waiting to be sampled (null once finished). */
  logits: Float32Array | null = null;
  /** First token of the window the cache holds. */
  start = 0;
  readonly rng: Rng;
  readonly stopIds: Set<number>;

  constructor(prompt: readonly number[], readonly options: DecodeOptions, readonly cache: KVCache) {
    this.tokens = [...prompt];
    this.promptLength = prompt.length;
    this.rng = new Rng(options.seed ?? 0);
    this.stopIds = new Set(options.stopIds ?? []);
  }

  get done(): boolean {
    return this.finishReason !== null || this.error !== null;
  }
}

/** What one sequence did in a step: its new token (-1 if it stopped on a stop id) and whether it ended. */
export interface SequenceStep {
  sequence: Sequence;
  id: number;
  finishReason?: FinishReason;
}

export class DecodeBatch {
  private readonly running: Sequence[] = [];
  private readonly headT: Float32Array;
  private readonly n: number;
  /** Sequences ended by an error in the last advance() (read by the caller, then cleared). */
  readonly failed: Sequence[] = [];

  constructor(readonly model: CausalDecoder) {
    this.headT = transposedHead(model);
    this.n = decoderContext(model);
  }

  get size(): number {
    return this.running.length;
  }
  get sequences(): readonly Sequence[] {
    return this.running;
  }

  /** Validates and pre-fills a prompt; the sequence samples its first token at the next step. */
  add(prompt: readonly number[], o: DecodeOptions = {}): Sequence {
    checkDecodeOptions(o, this.n);
    const v = this.model.config.vocab_size;
    if (prompt.length === 0) throw new RangeError('generate: the prompt is empty (give at least one token)');
    if (prompt.length > this.n) throw new ContextOverflowError(`generate: the prompt has ${prompt.length} tokens, more than the model's context of ${this.n}`);
    for (const id of prompt) if (!(Number.isInteger(id) && id >= 0 && id < v)) throw new RangeError(`generate: prompt token ${id} is outside the vocabulary (size ${v})`);
    // The cache starts at what this request can reach (at most 1024 columns) and grows if a slide-free
    // run goes further: a Llama's context (often 8k–128k) is not allocated per sequence up front.
    const reach = Math.min(this.n, prompt.length + (o.maxTokens ?? 64));
    const seq = new Sequence(prompt, o, KVCache.forModel(this.model, this.n, Math.min(reach, 1024)));
    if ((o.maxTokens ?? 64) === 0) {
      seq.finishReason = 'length';
      return seq;
    }
    this.prefill(seq);
    this.running.push(seq);
    return seq;
  }

  /** Takes a sequence out (cancelled); its cache is dropped with it. */
  remove(seq: Sequence): void {
    const i = this.running.indexOf(seq);
    if (i >= 0) this.running.splice(i, 1);
    seq.logits = null;
  }

  /** Samples every running sequence's next token; finished sequences leave the batch. */
  sample(): SequenceStep[] {
    const steps: SequenceStep[] = [];
    for (const seq of this.running) {
      const o = seq.options;
      const row = seq.logits!;
      const penalty = o.repetitionPenalty ?? 1;
      if (penalty !== 1) applyRepetitionPenalty(row, seq.tokens, penalty);
      const id = sampleToken(row, o, seq.rng);
      if (seq.stopIds.has(id)) {
        seq.finishReason = 'stop';
        steps.push({ sequence: seq, id: -1, finishReason: 'stop' });
        continue;
      }
      seq.tokens.push(id);
      seq.output.push(id);
      const step: SequenceStep = { sequence: seq, id };
      if (seq.output.length >= (o.maxTokens ?? 64)) step.finishReason = seq.finishReason = 'length';
      steps.push(step);
    }
    for (const s of steps) if (s.finishReason) this.remove(s.sequence);
    return steps;
  }

  /** Runs the sampled tokens of all running sequences through the model in one batched forward. */
  advance(): void {
    const batch: Sequence[] = [];
    for (const seq of [...this.running]) {
      const o = seq.options;
      const start = slideWindowStart(seq.start, seq.tokens.length, this.n, o.slideBy ?? Math.floor(this.n / 4));
      if (start === seq.start) {
        batch.push(seq);
        continue;
      }
      if (o.contextOverflow === 'error') {
        seq.error = new ContextOverflowError(`generate: the context is full (${this.n} tokens, the model's n_positions / max_position_embeddings); use contextOverflow 'slide' or fewer maxTokens`);
        this.remove(seq);
        this.failed.push(seq);
        continue;
      }
      seq.start = start;
      this.prefill(seq);
    }
    if (batch.length === 0) return;
    for (const s of batch) s.cache.reserve(s.cache.length + 1);
    const ids = Int32Array.from(batch, (s) => s.tokens[s.tokens.length - 1]!);
    this.forward(batch, ids, 1);
  }

  /** (Re)builds a sequence's cache from its window tokens[start…] and sets its pending logits. */
  private prefill(seq: Sequence): void {
    seq.cache.reset();
    const window = seq.tokens.slice(seq.start);
    seq.cache.reserve(window.length);
    this.forward([seq], Int32Array.from(window), window.length);
  }

  private forward(batch: Sequence[], ids: Int32Array, t: number): void {
    const v = this.model.config.vocab_size;
    noGrad(() => withScope(() => {
      const { logits } = this.model.forward(ids, batch.length, t, undefined, { cache: batch.map((s) => s.cache), lastOnly: true, headT: this.headT });
      batch.forEach((s, r) => { s.logits = Float32Array.from(logits.data.subarray(r * v, (r + 1) * v)); });
    }));
  }
}
