/**
 * Tokenized corpus shards, as written by `primer data prepare` and read back for training.
 *
 * A prepared directory holds manifest.json and, per shard, three files named <split>-NNNNN.*:
 *   .bin   the token ids, little-endian uint16 (vocabulary ≤ 65535) or uint32
 *   .idx   uint32 LE: magic "PSHI", version 1, D documents, S segments, then
 *          docOffsets[D+1] (token offset of each document, and the end), docSegments[D+1] (index of each
 *          document's first segment, and S), segOffsets[S+1] (token offset of each segment, and the end).
 *          Segments are sentences (sentences.ts); every document boundary is a segment boundary.
 *   .hash  float64 LE: a 52-bit content hash per document, so a resumed prepare still removes duplicates
 * The manifest lists a shard only after its three files are written (atomically), so a shard that is
 * listed is complete; files of an interrupted write are unlisted and get overwritten on resume.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { PrimerError } from '../io/errors.ts';
import type { SegmentedDocuments } from './nsp.ts';
import { readJsonFile } from '../io/json.ts';

export class ShardError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SHARDS', message, options);
  }
}

export const MANIFEST = 'manifest.json';
const IDX_MAGIC = 0x49485350; // "PSHI" little-endian

const count = z.number().int().nonnegative();
const position = z.tuple([count, count, count]); // [file, document in file, part of document]

export const shardEntrySchema = z.object({
  name: z.string().regex(/^(train|val)-\d{5}$/),
  split: z.enum(['train', 'val']),
  documents: count,
  segments: count,
  tokens: count,
  bytes: count,
});
export type ShardEntry = z.infer<typeof shardEntrySchema>;

export const sourceEntrySchema = z.object({
  path: z.string(),
  bytes: count,
  mtimeMs: z.number(),
  status: z.enum(['pending', 'done', 'skipped', 'error']),
  documents: count,
  message: z.string().optional(),
});
export type SourceEntry = z.infer<typeof sourceEntrySchema>;

export const countsSchema = z.object({
  documentsRead: count,
  trainDocuments: count,
  valDocuments: count,
  trainTokens: count,
  valTokens: count,
  segments: count,
  duplicates: count,
  empty: count,
  /** Stored documents with bytes that were not UTF-8, read as U+FFFD (kept, not removed). */
  invalidUtf8: count,
  incomplete: count,
  splitLong: count,
  textBytes: count,
});
export type PrepareCounts = z.infer<typeof countsSchema>;

export const manifestSchema = z.object({
  format: z.literal('primer-shards'),
  version: z.literal(1),
  complete: z.boolean(),
  dtype: z.enum(['uint16', 'uint32']),
  tokenizer: z.object({ sha256: z.string(), type: z.string(), vocabSize: count, specialTokens: z.record(z.string(), z.string()) }),
  options: z.object({
    valFraction: z.number().min(0).max(1), seed: count, jsonlField: z.string(), documents: z.enum(['file', 'blank-line']),
    shardTokens: count, maxDocumentChars: count,
  }),
  sources: z.array(sourceEntrySchema),
  shards: z.array(shardEntrySchema),
  /** Every document up to and including this position is in a listed shard (null: none yet). */
  resumeAfter: position.nullable(),
  counts: countsSchema,
  warnings: z.array(z.string()),
});
export type ShardManifest = z.infer<typeof manifestSchema>;

export function readManifest(dir: string): ShardManifest {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) throw new ShardError(`${dir}: no ${MANIFEST} (not a directory written by "primer data prepare")`);
  const raw = readJsonFile(path, (message, cause) => new ShardError(message, { cause }));
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ShardError(`${path}: ${parsed.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export function writeManifest(dir: string, manifest: ShardManifest, durable = true): void {
  writeJsonAtomic(join(dir, MANIFEST), manifest, { durable });
}

/** One shard in memory. */
export interface ShardData {
  tokens: Uint16Array | Uint32Array;
  docOffsets: Uint32Array;
  docSegments: Uint32Array;
  segOffsets: Uint32Array;
}

function leBytes(a: Uint16Array | Uint32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); // x86/ARM are little-endian
}

/** Writes a shard's three files atomically (the caller lists it in the manifest afterwards). */
export function writeShard(dir: string, name: string, data: ShardData, hashes: Float64Array, durable = true): number {
  const d = data.docOffsets.length - 1;
  const s = data.segOffsets.length - 1;
  const idx = new Uint32Array(4 + (d + 1) * 2 + s + 1);
  idx.set([IDX_MAGIC, 1, d, s]);
  idx.set(data.docOffsets, 4);
  idx.set(data.docSegments, 5 + d);
  idx.set(data.segOffsets, 6 + 2 * d);
  writeFileAtomic(join(dir, `${name}.bin`), leBytes(data.tokens), { durable });
  writeFileAtomic(join(dir, `${name}.idx`), leBytes(idx), { durable });
  writeFileAtomic(join(dir, `${name}.hash`), leBytes(hashes), { durable });
  return data.tokens.byteLength + idx.byteLength + hashes.byteLength;
}

function readAligned(path: string): ArrayBuffer {
  if (!existsSync(path)) throw new ShardError(`${path}: missing (the manifest lists it)`);
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Reads and checks one shard against its manifest entry. */
export function readShard(dir: string, entry: ShardEntry, dtype: 'uint16' | 'uint32'): ShardData {
  const base = join(dir, entry.name);
  const bin = readAligned(`${base}.bin`);
  const idx = new Uint32Array(readAligned(`${base}.idx`));
  const bad = (why: string) => new ShardError(`${base}: ${why} (the shard is corrupt; re-run "primer data prepare" into a new directory)`);
  if (idx.length < 4 || idx[0] !== IDX_MAGIC || idx[1] !== 1) throw bad('.idx has no valid header');
  const [d, s] = [idx[2]!, idx[3]!];
  if (idx.length !== 4 + (d + 1) * 2 + s + 1) throw bad(`.idx has ${idx.length} words, expected ${4 + (d + 1) * 2 + s + 1}`);
  const tokens = dtype === 'uint16' ? new Uint16Array(bin) : new Uint32Array(bin);
  if (d !== entry.documents || s !== entry.segments || tokens.length !== entry.tokens) {
    throw bad(`holds ${d} documents, ${s} segments, ${tokens.length} tokens; the manifest says ${entry.documents}, ${entry.segments}, ${entry.tokens}`);
  }
  const docOffsets = idx.subarray(4, 5 + d);
  const docSegments = idx.subarray(5 + d, 6 + 2 * d);
  const segOffsets = idx.subarray(6 + 2 * d);
  if (docOffsets[d] !== tokens.length || segOffsets[s] !== tokens.length || docSegments[d] !== s) throw bad('.idx offsets do not end at the token count');
  return { tokens, docOffsets, docSegments, segOffsets };
}

export function readShardHashes(dir: string, entry: ShardEntry): Float64Array {
  const h = new Float64Array(readAligned(join(dir, `${entry.name}.hash`)));
  if (h.length !== entry.documents) throw new ShardError(`${join(dir, entry.name)}.hash: ${h.length} hashes for ${entry.documents} documents`);
  return h;
}

/**
 * The documents of one split across its shards. Shards are loaded on demand and the `cacheShards`
 * most recently used stay in memory, so a split larger than RAM can be sampled shard by shard.
 */
export class ShardSplit implements SegmentedDocuments {
  readonly documentStarts: number[] = [0];
  readonly tokenCount: number;
  private readonly cache = new Map<number, ShardData>();
  constructor(readonly dir: string, readonly shards: readonly ShardEntry[], readonly dtype: 'uint16' | 'uint32', readonly cacheShards = 8) {
    for (const s of shards) this.documentStarts.push(this.documentStarts[this.documentStarts.length - 1]! + s.documents);
    this.tokenCount = shards.reduce((n, s) => n + s.tokens, 0);
  }
  get count(): number {
    return this.documentStarts[this.documentStarts.length - 1]!;
  }
  load(shard: number): ShardData {
    let data = this.cache.get(shard);
    if (data) {
      this.cache.delete(shard); // re-insert: Map order is the LRU order
    } else {
      data = readShard(this.dir, this.shards[shard]!, this.dtype);
      if (this.cache.size >= this.cacheShards) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(shard, data);
    return data;
  }
  /** (shard, document within the shard) of a split-wide document index. */
  locate(index: number): [number, number] {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) throw new RangeError(`document ${index} is outside 0..${this.count - 1}`);
    let lo = 0;
    let hi = this.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.documentStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return [lo, index - this.documentStarts[lo]!];
  }
  document(index: number): Int32Array {
    const [s, d] = this.locate(index);
    const data = this.load(s);
    return Int32Array.from(data.tokens.subarray(data.docOffsets[d], data.docOffsets[d + 1]));
  }
  segments(index: number): Int32Array[] {
    const [s, d] = this.locate(index);
    const data = this.load(s);
    const out: Int32Array[] = [];
    for (let k = data.docSegments[d]!; k < data.docSegments[d + 1]!; k++) {
      if (data.segOffsets[k + 1]! > data.segOffsets[k]!) out.push(Int32Array.from(data.tokens.subarray(data.segOffsets[k], data.segOffsets[k + 1])));
    }
    return out;
  }
  *documents(): Generator<Int32Array> {
    for (let i = 0; i < this.count; i++) yield this.document(i);
  }
  /** The whole split as one stream, each document followed by `separatorId` (for the CLM batches of clm.ts). */
  stream(separatorId: number): Int32Array {
    const out = new Int32Array(this.tokenCount + this.count);
    let n = 0;
    for (let s = 0; s < this.shards.length; s++) {
      const data = this.load(s);
      for (let d = 0; d + 1 < data.docOffsets.length; d++) {
        out.set(data.tokens.subarray(data.docOffsets[d], data.docOffsets[d + 1]), n);
        n += data.docOffsets[d + 1]! - data.docOffsets[d]!;
        out[n++] = separatorId;
      }
    }
    return out;
  }
}

export interface PreparedData {
  dir: string;
  manifest: ShardManifest;
  train: ShardSplit;
  val: ShardSplit;
}

/** Opens a prepared directory; an unfinished one is refused unless `allowIncomplete`. */
export function openShards(dir: string, options: { allowIncomplete?: boolean; cacheShards?: number } = {}): PreparedData {
  const manifest = readManifest(dir);
  if (!manifest.complete && !options.allowIncomplete) {
    throw new ShardError(`${dir}: the data preparation did not finish (manifest "complete": false); run "primer data prepare" again with the same arguments to resume it`);
  }
  const split = (name: 'train' | 'val') => new ShardSplit(dir, manifest.shards.filter((s) => s.split === name), manifest.dtype, options.cacheShards);
  return { dir, manifest, train: split('train'), val: split('val') };
}
