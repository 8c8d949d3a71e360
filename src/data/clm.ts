/**
 * The causal-LM data path: a corpus becomes one token stream per split (documents joined with a
 * separator token after each), and training batches are random contiguous blocks of it.
 *
 *   stream = doc₀ <sep> doc₁ <sep> …        x = stream[i : i+T],  y = stream[i+1 : i+T+1]
 *
 * Documents go to train or val by a seeded hash of their index, so the split is reproducible and
 * no document is shared between the two.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { Rng, uniformAt } from '../util/random.ts';
import { CorpusError, type CorpusChunk } from './corpus.ts';

/** A growable Int32Array (doubling), so streaming millions of ids does not build a JS array. */
class IdBuffer {
  data = new Int32Array(1 << 16);
  length = 0;
  push(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.data.length) {
      let cap = this.data.length;
      while (cap < this.length + ids.length) cap *= 2;
      const next = new Int32Array(cap);
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    this.data.set(ids, this.length);
    this.length += ids.length;
  }
  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

export interface TokenStreams {
  train: Int32Array;
  val: Int32Array;
  trainDocuments: number;
  valDocuments: number;
  separatorId: number;
}

/** "N training tokens (D documents), M validation tokens (…)": a single document's held-out tail is named as such. */
export function describeSplit(s: TokenStreams): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const held = s.valDocuments === 0 && s.val.length > 0 ? 'the tail of the only document' : `${s.valDocuments} document${s.valDocuments === 1 ? '' : 's'}`;
  return `${n(s.train.length)} training tokens (${s.trainDocuments} document${s.trainDocuments === 1 ? '' : 's'}), ${n(s.val.length)} validation tokens (${held})`;
}

export interface TokenizeCorpusOptions {
  /** Id appended after every document (GPT-2's <|endoftext|>). */
  separatorId: number;
  /** Fraction of documents held out for validation (default 0.05). */
  valFraction?: number;
  seed?: number;
  /** Called after each chunk with the characters read so far. */
  onProgress?: (chars: number) => void;
  /** Stop reading once this many characters have been tokenized (whole documents are not split). */
  maxChars?: number;
}

/** Encodes text without special tokens; tokenizers may offer a faster ids-only path. */
function encodeIds(tokenizer: Tokenizer, text: string): ArrayLike<number> {
  const fast = (tokenizer as unknown as { encodeIds?: (t: string) => ArrayLike<number> }).encodeIds;
  if (typeof fast === 'function') return fast.call(tokenizer, text);
  return tokenizer.encode(text, null, { addSpecialTokens: false }).ids;
}

/** Tokenizes a corpus into train and val streams, split by document. */
export async function tokenizeCorpus(chunks: AsyncIterable<CorpusChunk>, tokenizer: Tokenizer, opts: TokenizeCorpusOptions): Promise<TokenStreams> {
  const valFraction = opts.valFraction ?? 0.05;
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}`);
  const seed = opts.seed ?? 0;
  const train = new IdBuffer();
  const val = new IdBuffer();
  let trainDocs = 0;
  let valDocs = 0;
  let lastTrainDocStart = 0;
  let chars = 0;
  let currentDoc = -1;
  let target = train;
  for await (const chunk of chunks) {
    if (chunk.doc !== currentDoc) {
      if (opts.maxChars !== undefined && chars >= opts.maxChars) break;
      currentDoc = chunk.doc;
      target = valFraction > 0 && uniformAt(seed ^ 0x5eed, chunk.doc) < valFraction ? val : train;
      if (target === train) lastTrainDocStart = train.length;
    }
    target.push(encodeIds(tokenizer, chunk.text));
    chars += chunk.text.length;
    if (chunk.end) {
      target.push([opts.separatorId]);
      if (target === train) trainDocs++;
      else valDocs++;
    }
    opts.onProgress?.(chars);
  }
  let trainIds = train.view();
  let valIds = val.view();
  if (valFraction > 0 && valDocs === 0) {
    if (trainDocs >= 2) {
      // Too few documents for the hash to pick one: hold out the last document.
      valIds = trainIds.slice(lastTrainDocStart);
      trainIds = trainIds.subarray(0, lastTrainDocStart);
      trainDocs--;
      valDocs = 1;
    } else {
      // A single document: hold out its tail instead.
      const cut = Math.floor(trainIds.length * (1 - valFraction));
      valIds = trainIds.slice(cut);
      trainIds = trainIds.subarray(0, cut);
    }
  }
  return { train: trainIds, val: valIds, trainDocuments: trainDocs, valDocuments: valDocs, separatorId: opts.separatorId };
}

export interface ClmBatch {
  /** B×T input ids, row-major. */
  input: Int32Array;
  /** B×T next-token targets. */
  target: Int32Array;
  batch: number;
  length: number;
  tokens: number;
}

function checkStream(what: string, tokens: Int32Array, blockSize: number): void {
  if (tokens.length < blockSize + 1) {
    throw new CorpusError(`the ${what} split has ${tokens.length} tokens, fewer than block size + 1 = ${blockSize + 1}; use a bigger corpus or a smaller --block-size`);
  }
}

function fillBlock(tokens: Int32Array, start: number, t: number, row: number, b: ClmBatch): void {
  b.input.set(tokens.subarray(start, start + t), row * t);
  b.target.set(tokens.subarray(start + 1, start + t + 1), row * t);
}

/** Random contiguous blocks from a seeded Rng; its counter is the data position saved for resume. */
export class RandomBlocks {
  readonly rng: Rng;
  constructor(readonly tokens: Int32Array, readonly batchSize: number, readonly blockSize: number, seed: number) {
    checkStream('training', tokens, blockSize);
    this.rng = new Rng(seed);
  }
  next(): ClmBatch {
    const { batchSize: b, blockSize: t } = this;
    const out: ClmBatch = { input: new Int32Array(b * t), target: new Int32Array(b * t), batch: b, length: t, tokens: b * t };
    for (let r = 0; r < b; r++) fillBlock(this.tokens, this.rng.int(this.tokens.length - t), t, r, out);
    return out;
  }
  state(): { seed: number; counter: number } {
    return this.rng.state();
  }
  loadState(s: unknown): void {
    const st = s as { seed?: unknown; counter?: unknown };
    if (typeof st?.seed !== 'number' || typeof st.counter !== 'number' || !Number.isSafeInteger(st.counter) || st.counter < 0) {
      throw new RangeError(`RandomBlocks.loadState: expected {seed, counter}, got ${JSON.stringify(s)}`);
    }
    this.rng.seed = st.seed >>> 0;
    this.rng.counter = st.counter;
  }
}

/** Fixed evaluation batches: evenly spaced blocks over the stream, the same at every evaluation. */
export function evalBatches(tokens: Int32Array, batchSize: number, blockSize: number, maxBatches: number): ClmBatch[] {
  checkStream('validation', tokens, blockSize);
  const t = blockSize;
  const blocks = Math.min(maxBatches * batchSize, Math.floor((tokens.length - 1) / t));
  const n = Math.max(1, Math.floor(blocks / batchSize));
  const rows = Math.min(batchSize, blocks);
  const stride = Math.floor((tokens.length - t - 1) / Math.max(1, n * rows - 1));
  const out: ClmBatch[] = [];
  for (let i = 0; i < n; i++) {
    const b: ClmBatch = { input: new Int32Array(rows * t), target: new Int32Array(rows * t), batch: rows, length: t, tokens: rows * t };
    for (let r = 0; r < rows; r++) fillBlock(tokens, (i * rows + r) * stride, t, r, b);
    out.push(b);
  }
  return out;
}
