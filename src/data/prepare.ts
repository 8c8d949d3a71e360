/**
 * `primer data prepare`: a corpus of any size → tokenized shards (shards.ts) with bounded memory.
 *
 *   files ─read (corpus.ts)→ documents/pieces (prepare-sources.ts) ─workers: sentences + encode→ in-order
 *   apply: drop empty / duplicate documents → train or val by a hash of the content →
 *   shard buffers → every `shardTokens` train tokens: write both splits' shards, then the manifest.
 *
 * Memory: one shard buffer per split, one document (≤ maxDocumentChars) being assembled, and a fixed
 * number of ~1 MiB batches in flight, plus 8 bytes per distinct document for the duplicate set.
 * Resume: the manifest records the last reader position whose documents are all in listed shards;
 * a rerun with the same arguments skips the files and documents before it and reloads the document
 * hashes from the shards, so the result equals an uninterrupted run.
 * Bad input never stops the run: unreadable or binary files and read errors (a truncated .gz) are reported
 * with the file name and skipped (the documents of a failing file that were complete before the error are
 * kept; the one being read is dropped), empty documents are counted. Invalid UTF-8 is read as U+FFFD with a
 * warning and the document is kept (README: never an error): a few bad bytes must not cost a whole book.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { uniformAt } from '../util/random.ts';
import { readCorpus, type CorpusChunk } from './corpus.ts';
import { DocumentAssembler, isJsonlPath, listSources, type DocumentState, type SourceFile } from './prepare-sources.ts';
import { EncodePool, encodePieces, type EncodedPieces } from './prepare-worker.ts';
import {
  MANIFEST, ShardError, readManifest, readShardHashes, writeManifest,
  type PrepareCounts, type ShardEntry, type ShardManifest,
} from './shards.ts';
import { Grow, ShardBuilder } from './shard-builder.ts';

export interface PrepareOptions {
  /** A tokenizer, or a tokenizer.json / model directory. */
  tokenizer: Tokenizer | string;
  corpus: string[];
  out: string;
  /** Share of documents for the validation split (default 0.005). */
  valFraction?: number;
  /** Encoding threads (default: all cores; 0 = on the main thread). */
  workers?: number;
  jsonlField?: string;
  /** 'file': a text file (or JSONL record) is a document; 'blank-line': blank lines separate documents. */
  documents?: 'file' | 'blank-line';
  /** Train tokens per shard (default 16M). */
  shardTokens?: number;
  /** Longer documents are cut into parts of about this many characters (default 8M). */
  maxDocumentChars?: number;
  seed?: number;
  /** fsync every shard and manifest (default true). */
  durable?: boolean;
  warn?: (message: string) => void;
  onProgress?: (p: PrepareProgress) => void;
  /** Called after each shard is listed in the manifest (tests interrupt a run here). */
  onShard?: (entry: ShardEntry) => void;
}

export interface PrepareProgress {
  bytesRead: number;
  totalBytes: number;
  filesDone: number;
  files: number;
  documents: number;
  tokens: number;
  seconds: number;
}

export interface PrepareResult {
  dir: string;
  manifest: ShardManifest;
  /** The run continued an interrupted one. */
  resumed: boolean;
  /** The directory was already complete: nothing was done. */
  alreadyComplete: boolean;
  seconds: number;
  /** Text read per second in this run (MB = 10⁶ bytes of UTF-8 text). */
  mbPerSecond: number;
}

const UNIT_CHARS = 1 << 20;

/** 52 bits of SHA-1: exactly representable as a double; collisions negligible below ~10⁷ documents. */
function hash52(digest: Buffer): number {
  return digest.readUIntBE(0, 6) * 16 + (digest[6]! >> 4);
}

export function tokenizerHash(tokenizer: Tokenizer): string {
  return createHash('sha256').update(JSON.stringify(tokenizer.toJSON())).digest('hex');
}

interface DocState extends DocumentState {
  hash: ReturnType<typeof createHash>;
  sawText: boolean;
  invalid: boolean;
  bytes: number;
}

interface Unit {
  pieces: string[];
  /** `abandoned`: the document's file failed while it was being read (an empty piece marks it in order). */
  meta: Array<{ doc: DocState; last: boolean; abandoned?: boolean }>;
}

const comparePosition = (a: readonly number[], b: readonly number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;

function emptyCounts(): PrepareCounts {
  return { documentsRead: 0, trainDocuments: 0, valDocuments: 0, trainTokens: 0, valTokens: 0, segments: 0, duplicates: 0, empty: 0, invalidUtf8: 0, incomplete: 0, splitLong: 0, textBytes: 0 };
}

export async function prepareData(o: PrepareOptions): Promise<PrepareResult> {
  const t0 = performance.now();
  const warn = o.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new ShardError(`data prepare: --out ${o.out} is a file, not a directory`);
  const tokenizer = typeof o.tokenizer === 'string' ? loadTokenizer(o.tokenizer) : o.tokenizer;
  const options: ShardManifest['options'] = {
    valFraction: o.valFraction ?? 0.005, seed: o.seed ?? 0, jsonlField: o.jsonlField ?? 'text', documents: o.documents ?? 'file',
    shardTokens: o.shardTokens ?? 1 << 24, maxDocumentChars: o.maxDocumentChars ?? 8 << 20,
  };
  if (!(options.valFraction >= 0 && options.valFraction < 1)) throw new RangeError(`data prepare: valFraction must be in [0, 1), got ${options.valFraction}`);
  if (!(options.shardTokens >= 1)) throw new RangeError(`data prepare: shardTokens must be ≥ 1, got ${options.shardTokens}`);
  // A part must hold at least one character, or cutting a long document would never advance.
  if (!(Number.isInteger(options.maxDocumentChars) && options.maxDocumentChars >= 1)) {
    throw new RangeError(`data prepare: maxDocumentChars must be an integer ≥ 1, got ${options.maxDocumentChars}`);
  }
  const durable = o.durable ?? true;
  const sources = listSources(o.corpus);
  const tokenizerInfo = {
    sha256: tokenizerHash(tokenizer), type: tokenizer.type, vocabSize: tokenizer.vocabSize,
    specialTokens: Object.fromEntries(Object.entries(tokenizer.specialTokens).filter(([, v]) => typeof v === 'string')) as Record<string, string>,
  };
  const dtype = tokenizer.vocabSize <= 65535 ? 'uint16' : 'uint32';

  // A previous run into the same directory: finished, resumable, or something else.
  let manifest: ShardManifest;
  const seen = new Set<number>();
  let resumed = false;
  if (existsSync(`${o.out}/${MANIFEST}`)) {
    const old = readManifest(o.out);
    const same = old.tokenizer.sha256 === tokenizerInfo.sha256 && JSON.stringify(old.options) === JSON.stringify(options)
      && old.sources.length === sources.length && old.sources.every((s, i) => s.path === sources[i]!.path && s.bytes === sources[i]!.bytes && s.mtimeMs === sources[i]!.mtimeMs);
    if (!same) throw new ShardError(`${o.out} holds data prepared from other inputs, tokenizer or options; choose another --out (or delete it)`);
    if (old.complete) return { dir: o.out, manifest: old, resumed: false, alreadyComplete: true, seconds: (performance.now() - t0) / 1000, mbPerSecond: 0 };
    manifest = old;
    for (const s of manifest.shards) for (const h of readShardHashes(o.out, s)) seen.add(h);
    const from = manifest.resumeAfter?.[0] ?? 0;
    manifest.sources.forEach((s, i) => { if (i >= from) s.status = 'pending'; });
    resumed = true;
  } else {
    if (existsSync(o.out) && readdirSync(o.out).some((n) => !n.startsWith('.'))) {
      throw new ShardError(`${o.out} is not empty and has no ${MANIFEST}; choose an empty or new --out directory`);
    }
    mkdirSync(o.out, { recursive: true });
    manifest = {
      format: 'primer-shards', version: 1, complete: false, dtype, tokenizer: tokenizerInfo, options,
      sources: sources.map((s) => ({ path: s.path, bytes: s.bytes, mtimeMs: s.mtimeMs, status: 'pending' as const, documents: 0 })),
      shards: [], resumeAfter: null, counts: emptyCounts(), warnings: [],
    };
    tokenizer.save(o.out);
    writeManifest(o.out, manifest, durable);
  }
  const counts = manifest.counts;
  const resumeAfter = manifest.resumeAfter;
  const report = (m: string) => {
    warn(m);
    // A resumed run reads the files after the resume point again: do not list their warnings twice.
    if (manifest.warnings.length < 200 && !manifest.warnings.includes(m)) manifest.warnings.push(m);
  };

  const train = new ShardBuilder();
  const val = new ShardBuilder();
  const shardIndex = { train: manifest.shards.filter((s) => s.split === 'train').length, val: manifest.shards.filter((s) => s.split === 'val').length };
  let lastApplied: [number, number, number] | null = resumeAfter;

  const flush = (final: boolean): void => {
    const written: ShardEntry[] = [];
    for (const [split, b] of [['train', train], ['val', val]] as const) {
      if (b.documents === 0) continue;
      const entry = b.write(o.out, `${split}-${String(shardIndex[split]++).padStart(5, '0')}`, dtype, durable);
      manifest.shards.push(entry);
      written.push(entry);
    }
    manifest.resumeAfter = lastApplied;
    manifest.complete = final;
    writeManifest(o.out, manifest, durable);
    for (const e of written) o.onShard?.(e);
  };

  // The in-order apply step: a document is decided when its last piece arrives.
  const staging = new Grow(1 << 16);
  let stagingSegments: number[] = [];
  let stagingDoc: DocState | null = null;
  const apply = (unit: Unit, r: EncodedPieces): void => {
    unit.meta.forEach(({ doc, last, abandoned }, k) => {
      if (abandoned) {
        counts.incomplete++;
        staging.length = 0;
        stagingSegments = [];
        stagingDoc = null;
        return;
      }
      if (doc !== stagingDoc) {
        staging.length = 0; // a document abandoned after a read error leaves its pieces here
        stagingSegments = [];
        stagingDoc = doc;
      }
      const t0k = k === 0 ? 0 : r.tokenEnds[k - 1]!;
      const base = staging.length;
      staging.append(r.ids.subarray(t0k, r.tokenEnds[k]));
      for (let s = k === 0 ? 0 : r.segmentCounts[k - 1]!; s < r.segmentCounts[k]!; s++) stagingSegments.push(base + r.segmentEnds[s]!);
      if (!last) return;
      stagingDoc = null;
      lastApplied = doc.position;
      counts.documentsRead++;
      counts.textBytes += doc.bytes;
      if (doc.position[2] > 0) counts.splitLong++;
      const h = hash52(doc.hash.digest());
      if (!doc.sawText || staging.length === 0) counts.empty++;
      else if (seen.has(h)) counts.duplicates++;
      else {
        seen.add(h);
        if (doc.invalid) counts.invalidUtf8++;
        const isVal = options.valFraction > 0 && uniformAt(options.seed ^ 0x5eed, h >>> 0) < options.valFraction;
        (isVal ? val : train).add(staging.data.subarray(0, staging.length), stagingSegments, h);
        counts.segments += stagingSegments.length;
        if (isVal) {
          counts.valDocuments++;
          counts.valTokens += staging.length;
        } else {
          counts.trainDocuments++;
          counts.trainTokens += staging.length;
        }
        manifest.sources[doc.position[0]]!.documents++;
      }
      staging.length = 0;
      stagingSegments = [];
      if (train.tokens.length >= options.shardTokens) flush(false);
    });
  };

  // Batches go to the workers; results are applied in submission order, a bounded number in flight.
  const threads = o.workers ?? availableParallelism();
  const pool = threads > 0 ? new EncodePool(tokenizer, threads) : null;
  const inflight: Array<{ unit: Unit; result: Promise<EncodedPieces> | EncodedPieces }> = [];
  let unit: Unit = { pieces: [], meta: [] };
  let unitChars = 0;
  const drain = async (keep: number): Promise<void> => {
    while (inflight.length > keep) {
      const head = inflight.shift()!;
      apply(head.unit, await head.result);
    }
  };
  const submit = async (): Promise<void> => {
    if (unit.pieces.length === 0) return;
    const u = unit;
    unit = { pieces: [], meta: [] };
    unitChars = 0;
    inflight.push({ unit: u, result: pool ? pool.encode(u.pieces) : encodePieces(tokenizer, u.pieces) });
    await drain(pool ? 2 * threads : 0);
  };

  let chunkInvalidUtf8 = false;
  const sink = {
    begin(position: [number, number, number]): DocState {
      const skip = resumeAfter !== null && comparePosition(position, resumeAfter) <= 0;
      return { position, skip, hash: createHash('sha1'), sawText: false, invalid: false, bytes: 0 };
    },
    piece(doc: DocumentState, text: string, last: boolean): void {
      const d = doc as DocState;
      if (d.skip) return;
      d.hash.update(text);
      d.bytes += Buffer.byteLength(text);
      if (!d.sawText && /\S/.test(text)) d.sawText = true;
      // Only U+FFFD that the reader produced from bad bytes counts (counts.invalidUtf8); a correctly
      // encoded U+FFFD is text like any other.
      if (chunkInvalidUtf8 && text.includes('\uFFFD')) d.invalid = true;
      unit.pieces.push(text);
      unit.meta.push({ doc: d, last });
      unitChars += text.length;
    },
    abandon(doc: DocumentState): void {
      const d = doc as DocState;
      if (d.skip) return;
      unit.pieces.push('');
      unit.meta.push({ doc: d, last: false, abandoned: true });
    },
  };

  const totalBytes = sources.reduce((n, s) => n + s.bytes, 0);
  let bytesDone = sources.slice(0, resumeAfter?.[0] ?? 0).reduce((n, s) => n + s.bytes, 0);
  let textBytes = 0;
  const progress = (filesDone: number, inFile: number) => o.onProgress?.({
    bytesRead: bytesDone + inFile, totalBytes, filesDone, files: sources.length,
    documents: counts.trainDocuments + counts.valDocuments, tokens: counts.trainTokens + counts.valTokens, seconds: (performance.now() - t0) / 1000,
  });
  try {
    for (let f = resumeAfter?.[0] ?? 0; f < sources.length; f++) {
      const src: SourceFile = sources[f]!;
      const entry = manifest.sources[f]!;
      if (src.error) {
        entry.status = 'error';
        entry.message = `cannot read (${src.error})`;
        report(`${src.path}: cannot read (${src.error}); skipped`);
        continue;
      }
      const assembler = new DocumentAssembler(f, sink, options.documents === 'blank-line' && !isJsonlPath(src.path), options.maxDocumentChars);
      let fileText = 0;
      const fileWarnings: string[] = [];
      // Only errors of the reader are the file's fault; anything thrown while processing (a full
      // disk, an interruption) must stop the run, so the two are told apart here.
      const chunks = readCorpus([src.path], { jsonlField: options.jsonlField, warn: (m) => fileWarnings.push(m) })[Symbol.asyncIterator]();
      let readError: Error | null = null;
      try {
        for (;;) {
          let next: IteratorResult<CorpusChunk>;
          try {
            next = await chunks.next();
          } catch (e) {
            readError = e as Error;
            break;
          }
          if (next.done) break;
          const chunk = next.value;
          chunkInvalidUtf8 = chunk.invalidUtf8;
          assembler.push(chunk.doc, chunk.text, chunk.end);
          const b = Buffer.byteLength(chunk.text);
          fileText += b;
          textBytes += b;
          if (unitChars >= UNIT_CHARS) await submit();
          progress(f, Math.min(src.bytes, fileText));
        }
      } finally {
        if (!readError) await chunks.return?.(undefined); // closes the file when processing failed
      }
      if (readError) {
        const lost = assembler.abandon();
        if (lost) sink.abandon(lost);
        const message = readError.message;
        const empty = /the corpus is empty/.test(message);
        entry.status = empty ? 'skipped' : 'error';
        entry.message = empty ? 'no text' : message;
        if (!empty) report(`${src.path}: read error after ${fileText} bytes of text (${message}); the document being read was dropped, the rest of the file skipped`);
        else if (fileWarnings.length === 0) report(`${src.path}: no text; skipped`);
      } else {
        entry.status = 'done';
      }
      for (const m of fileWarnings) report(m);
      bytesDone += src.bytes;
      progress(f + 1, 0);
    }
    await submit();
    await drain(0);
    if (counts.trainDocuments + counts.valDocuments === 0) {
      writeManifest(o.out, manifest, durable);
      throw new ShardError(`data prepare: no documents left from ${sources.length} file(s) (all empty, unreadable or duplicates)`);
    }
    flush(true);
  } finally {
    await pool?.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { dir: o.out, manifest, resumed, alreadyComplete: false, seconds, mbPerSecond: textBytes / 1e6 / Math.max(seconds, 1e-9) };
}
