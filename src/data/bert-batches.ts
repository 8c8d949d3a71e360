/**
 * Batch sources for BERT pre-training with the shared trainer (BatchSource in train/trainer.ts):
 *
 *   'mlm'      packed blocks: [CLS] + maxSeqLength − 2 contiguous tokens from a random position of the
 *              split (documents joined by [SEP], as RoBERTa's FULL-SENTENCES) + [SEP]; with probability
 *              shortSeqProb a row is cut to a random length in [3, maxSeqLength] and padded, as
 *              google-research/bert does, so that short inputs (a fill-mask query) are not out of
 *              distribution: otherwise every [SEP] followed by nothing would be a document end
 *   'mlm+nsp'  sentence pairs from nsp.ts, documents visited in a random order per epoch, instances
 *              drawn at random from a shuffle buffer; padded to the longest pair of the batch (rounded
 *              up to a multiple of 8), attention mask 0 on padding, NSP label 0 = "B follows A"
 * Both mask dynamically (mlm.ts): every batch gets fresh masks from the source's seeded Rng.
 * State for exact resume: the number of batches served; loadState replays them from the seed.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { Rng } from '../util/random.ts';
import { maskTokens, type MaskingOptions } from './mlm.ts';
import { instancesFromDocument, type NspInstance, type SegmentedDocuments } from './nsp.ts';
import type { ShardSplit } from './shards.ts';

export interface BertBatch {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Uint8Array;
  /** Masked-LM labels, -100 where nothing is predicted. */
  labels: Int32Array;
  /** Per row: 0 = B follows A, 1 = B is random (mlm+nsp only). */
  nspLabels?: Int32Array;
  batch: number;
  length: number;
  /** Real (non-padding) tokens. */
  tokens: number;
}

export interface BertSpecialIds {
  cls: number;
  sep: number;
  pad: number;
  mask: number;
}

/** [CLS] [SEP] [PAD] [MASK] ids of a tokenizer; throws naming the missing one. */
export function bertSpecialIds(tokenizer: Tokenizer): BertSpecialIds {
  const r = tokenizer.specialTokens;
  const get = (role: keyof BertSpecialIds, fallback: string): number => {
    const token = r[role] ?? fallback;
    const id = tokenizer.tokenToId(token);
    if (id === undefined) throw new RangeError(`BERT needs a ${fallback} token but the tokenizer has no "${token}"; use a WordPiece tokenizer (primer tokenizer train --type wordpiece)`);
    return id;
  };
  return { cls: get('cls', '[CLS]'), sep: get('sep', '[SEP]'), pad: get('pad', '[PAD]'), mask: get('mask', '[MASK]') };
}

export interface BertBatchOptions {
  batchSize: number;
  maxSeqLength: number;
  seed: number;
  ids: BertSpecialIds;
  masking: MaskingOptions;
  /** Share of rows made shorter than maxSeqLength (google-research/bert's short_seq_prob; default 0). */
  shortSeqProb?: number;
}

abstract class ReplayableSource {
  protected served = 0;
  protected abstract reset(): void;
  protected abstract make(): BertBatch;
  next(): BertBatch {
    this.served++;
    return this.make();
  }
  state(): { batches: number } {
    return { batches: this.served };
  }
  loadState(s: unknown): void {
    const n = (s as { batches?: unknown })?.batches;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new RangeError(`BERT batches: expected {batches}, got ${JSON.stringify(s)}`);
    this.reset();
    for (let i = 0; i < n; i++) this.next();
  }
}

/** A [CLS] block [SEP] starting at token `start` of shard `s`, documents joined by [SEP], wrapping at the end. */
function packedRow(split: ShardSplit, s: number, start: number, t: number, ids: BertSpecialIds, out: Int32Array, at: number): void {
  const data = split.load(s);
  let d = 0;
  let lo = 0;
  let hi = data.docOffsets.length - 2;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (data.docOffsets[mid]! <= start) {
      d = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  out[at] = ids.cls;
  let p = start;
  let k = 1;
  while (k < t - 1) {
    if (p >= data.docOffsets[d + 1]!) {
      d++;
      if (d >= data.docOffsets.length - 1) {
        d = 0;
        p = 0;
      }
      if (k > 1 && out[at + k - 1] !== ids.sep) out[at + k++] = ids.sep; // between documents
      continue;
    }
    out[at + k++] = data.tokens[p++]!;
  }
  out[at + t - 1] = ids.sep;
}

/** MLM-only: random packed blocks of the split. */
export class MlmBlocks extends ReplayableSource {
  private rng: Rng;
  private readonly cumulative: number[];
  constructor(readonly split: ShardSplit, readonly o: BertBatchOptions) {
    super();
    if (split.tokenCount < o.maxSeqLength) throw new RangeError(`MLM: the split has ${split.tokenCount} tokens, fewer than maxSeqLength ${o.maxSeqLength}`);
    this.rng = new Rng(o.seed);
    let c = 0;
    this.cumulative = split.shards.map((s) => (c += s.tokens));
  }
  protected reset(): void {
    this.rng = new Rng(this.o.seed);
    this.served = 0;
  }
  /** Blocks at explicit positions (split-wide token offsets) and lengths (default full), masked with `rng`. */
  blockAt(rows: number[], rng: Rng, lengths?: number[]): BertBatch {
    const { maxSeqLength: t, ids } = this.o;
    const b = rows.length;
    const input = new Int32Array(b * t).fill(ids.pad);
    const attentionMask = new Uint8Array(b * t);
    let tokens = 0;
    rows.forEach((offset, r) => {
      let s = this.cumulative.findIndex((c) => c > offset);
      if (s < 0) s = this.cumulative.length - 1;
      const length = lengths?.[r] ?? t;
      packedRow(this.split, s, offset - (s > 0 ? this.cumulative[s - 1]! : 0), length, ids, input, r * t);
      attentionMask.fill(1, r * t, r * t + length);
      tokens += length;
    });
    const { inputIds, labels } = maskTokens(input, b, t, rng, this.o.masking, lengths);
    return { inputIds, labels, tokenTypeIds: new Int32Array(b * t), attentionMask, batch: b, length: t, tokens };
  }
  protected make(): BertBatch {
    const t = this.o.maxSeqLength;
    const short = this.o.shortSeqProb ?? 0;
    const rows: number[] = [];
    const lengths: number[] = [];
    for (let i = 0; i < this.o.batchSize; i++) {
      rows.push(this.rng.int(this.split.tokenCount));
      lengths.push(short > 0 && this.rng.next() < short ? 3 + this.rng.int(t - 2) : t);
    }
    return this.blockAt(rows, this.rng, lengths);
  }
}

/** Fixed MLM evaluation batches: evenly spaced blocks, masked once with a fixed seed. */
export function mlmEvalBatches(split: ShardSplit, o: BertBatchOptions, maxBatches: number): BertBatch[] {
  const source = new MlmBlocks(split, o);
  const blocks = Math.max(1, Math.min(maxBatches * o.batchSize, Math.floor(split.tokenCount / (o.maxSeqLength - 2))));
  const stride = Math.floor(split.tokenCount / blocks);
  const rng = new Rng(o.seed ^ 0xe7a1);
  const out: BertBatch[] = [];
  for (let i = 0; i < blocks; i += o.batchSize) {
    const rows = Array.from({ length: Math.min(o.batchSize, blocks - i) }, (_, r) => (i + r) * stride);
    out.push(source.blockAt(rows, rng));
  }
  return out;
}

/** Pads instances into one batch and masks it. */
export function collateNsp(instances: readonly NspInstance[], o: BertBatchOptions, rng: Rng): BertBatch {
  const b = instances.length;
  const longest = Math.max(...instances.map((i) => i.tokens.length));
  const t = Math.min(o.maxSeqLength, Math.ceil(longest / 8) * 8);
  const input = new Int32Array(b * t).fill(o.ids.pad);
  const tokenTypeIds = new Int32Array(b * t);
  const attentionMask = new Uint8Array(b * t);
  const nspLabels = new Int32Array(b);
  const lengths: number[] = [];
  let tokens = 0;
  instances.forEach((inst, r) => {
    input.set(inst.tokens, r * t);
    tokenTypeIds.set(inst.tokenTypeIds, r * t);
    attentionMask.fill(1, r * t, r * t + inst.tokens.length);
    nspLabels[r] = inst.isRandomNext ? 1 : 0;
    lengths.push(inst.tokens.length);
    tokens += inst.tokens.length;
  });
  const { inputIds, labels } = maskTokens(input, b, t, rng, o.masking, lengths);
  return { inputIds, labels, tokenTypeIds, attentionMask, nspLabels, batch: b, length: t, tokens };
}

export interface NspBatchOptions extends BertBatchOptions {
  /** Instances held for shuffling (default 10 000). */
  shuffleBuffer?: number;
}

/** MLM+NSP: an endless stream of google-style instances, shuffled through a buffer. */
export class NspBatches extends ReplayableSource {
  private rng!: Rng;
  private order!: Int32Array;
  private cursor!: number;
  private buffer: NspInstance[] = [];
  constructor(readonly docs: SegmentedDocuments, readonly o: NspBatchOptions) {
    super();
    if (docs.count < 2) throw new RangeError(`NSP: the split has ${docs.count} document(s); next-sentence prediction needs at least 2`);
    this.reset();
  }
  protected reset(): void {
    this.rng = new Rng(this.o.seed);
    this.order = new Int32Array(0);
    this.cursor = 0;
    this.buffer = [];
    this.served = 0;
  }
  private refill(): void {
    const size = this.o.shuffleBuffer ?? 10_000;
    while (this.buffer.length < size) {
      if (this.cursor >= this.order.length) {
        this.order = Int32Array.from({ length: this.docs.count }, (_, i) => i);
        for (let i = this.order.length - 1; i > 0; i--) {
          const j = this.rng.int(i + 1);
          [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
        }
        this.cursor = 0;
        if (this.buffer.length > 0) break; // an epoch boundary: serve what we have first
      }
      const doc = this.order[this.cursor++]!;
      this.buffer.push(...instancesFromDocument(this.docs, doc, {
        maxSeqLength: this.o.maxSeqLength, shortSeqProb: this.o.shortSeqProb, clsId: this.o.ids.cls, sepId: this.o.ids.sep,
      }, this.rng));
    }
  }
  private take(): NspInstance {
    if (this.buffer.length === 0) this.refill();
    const i = this.rng.int(this.buffer.length);
    const inst = this.buffer[i]!;
    this.buffer[i] = this.buffer[this.buffer.length - 1]!;
    this.buffer.pop();
    return inst;
  }
  protected make(): BertBatch {
    const instances = Array.from({ length: this.o.batchSize }, () => this.take());
    return collateNsp(instances, this.o, this.rng);
  }
}

/** Fixed MLM+NSP evaluation batches from the first instances of a seeded stream. */
export function nspEvalBatches(docs: SegmentedDocuments, o: NspBatchOptions, maxBatches: number): BertBatch[] {
  const source = new NspBatches(docs, { ...o, seed: o.seed ^ 0xe7a1, shuffleBuffer: Math.min(o.shuffleBuffer ?? 10_000, maxBatches * o.batchSize * 4) });
  return Array.from({ length: maxBatches }, () => source.next());
}
