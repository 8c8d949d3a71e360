/**
 * Reading a text corpus: files and directories (recursively), plain text (.txt, .md, …), JSON Lines
 * (one document per line, text in a configurable field) and gzip of either.
 *
 * Text is streamed in chunks of about 1 MiB cut at whitespace, so a 100 MB single-line file never
 * becomes one giant string. Bad input is handled, not fatal: binary files are skipped with a warning
 * naming the file, invalid UTF-8 is decoded with U+FFFD replacement characters and a warning, bad
 * JSONL lines are counted and skipped; a corpus with no text at all is an error.
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { extname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { PrimerError } from '../io/errors.ts';

export class CorpusError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CORPUS', message, options);
  }
}

/** A read or decompression failure as a CorpusError naming the file (zlib's own messages name none). */
function unreadable(file: string, err: unknown): CorpusError {
  const e = err as NodeJS.ErrnoException;
  const gzip = typeof e.code === 'string' && e.code.startsWith('Z_');
  const what = gzip ? `is not a valid gzip file or is truncated (${e.message})` : `could not be read (${e.message})`;
  return new CorpusError(`${file}: ${what}`, { cause: err });
}

/** A piece of one document. Documents longer than the chunk size arrive as several pieces. */
export interface CorpusChunk {
  /** Running document number across the whole corpus (0, 1, 2, …). */
  doc: number;
  source: string;
  text: string;
  /** True on the last piece of the document. */
  end: boolean;
  /**
   * True when bytes of this piece (text files: of this piece or the reading since the previous one)
   * were not valid UTF-8 and became U+FFFD. A correctly encoded U+FFFD in the source does not count.
   */
  invalidUtf8: boolean;
}

export interface CorpusOptions {
  /** JSONL field holding the text (default "text"). */
  jsonlField?: string;
  /** Target chunk size in characters (default 1 MiB). */
  chunkChars?: number;
  /** Where warnings go (default: console.warn). */
  warn?: (message: string) => void;
}

const TEXT_EXTENSIONS = new Set(['.txt', '.text', '.md', '.jsonl', '.ndjson']);

function isJsonl(path: string): boolean {
  const p = path.endsWith('.gz') ? path.slice(0, -3) : path;
  return ['.jsonl', '.ndjson'].includes(extname(p).toLowerCase());
}

function hasTextExtension(path: string): boolean {
  const p = path.endsWith('.gz') ? path.slice(0, -3) : path;
  return TEXT_EXTENSIONS.has(extname(p).toLowerCase());
}

/**
 * Expands paths into a sorted list of files: a directory contributes every text file below it
 * (.txt/.text/.md/.jsonl/.ndjson, optionally .gz); a file named explicitly is read whatever its extension.
 */
export function listCorpusFiles(paths: readonly string[]): string[] {
  if (paths.length === 0) throw new CorpusError('no corpus paths given');
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const full = join(dir, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (st.isFile() && hasTextExtension(full)) out.push(full);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new CorpusError(`corpus path not found: ${p}`);
    const st = statSync(p);
    if (st.isDirectory()) walk(p);
    else out.push(p);
  }
  return out;
}

function openStream(path: string): Readable {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  return path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
}

/**
 * Binary sniffing on the first bytes, like git and grep: a NUL byte, or more than 10% control
 * characters other than tab/newline/CR/form feed/escape, means "not text".
 */
export function looksBinary(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  let control = 0;
  for (const b of head) {
    if (b === 0) return true;
    if (b < 32 && b !== 9 && b !== 10 && b !== 13 && b !== 12 && b !== 27) control++;
  }
  return control / head.length > 0.1;
}

/** Counts U+FFFD in decoded text that were not U+FFFD (EF BF BD) in the input bytes. */
function countReplacements(text: string, bytes: Uint8Array): number {
  let decoded = 0;
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) decoded++;
  if (decoded === 0) return 0;
  let genuine = 0;
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xef && bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) genuine++;
  return Math.max(0, decoded - genuine);
}

/** Where to cut a chunk: after the last newline, else the last space, else anywhere (never inside a surrogate pair). */
function cutPoint(text: string, target: number): number {
  const nl = text.lastIndexOf('\n', target - 1);
  if (nl > target / 2) return nl + 1;
  const sp = text.lastIndexOf(' ', target - 1);
  if (sp > target / 2) return sp + 1;
  const c = text.charCodeAt(target - 1);
  return c >= 0xd800 && c <= 0xdbff ? target - 1 : target;
}

interface FileReport {
  binary: boolean;
  invalidUtf8: number;
  /** JSONL: non-blank lines, those with a string text field, and the keys of the first JSON object. */
  lines?: number;
  withField?: number;
  keys?: string[];
}

/** Streams a plain-text file as one document in chunks. */
async function* readTextFile(path: string, chunkChars: number, report: FileReport): AsyncGenerator<{ text: string; invalid: boolean }> {
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
  let pending = '';
  let invalidSinceYield = false;
  let first = true;
  for await (const buf of openStream(path) as AsyncIterable<Buffer>) {
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    if (first) {
      first = false;
      if (looksBinary(bytes.subarray(0, 8192))) {
        report.binary = true;
        return;
      }
    }
    const text = decoder.decode(bytes, { stream: true });
    const invalid = countReplacements(text, bytes);
    report.invalidUtf8 += invalid;
    if (invalid > 0) invalidSinceYield = true;
    pending += text;
    while (pending.length >= chunkChars) {
      const cut = cutPoint(pending, chunkChars);
      yield { text: pending.slice(0, cut), invalid: invalidSinceYield };
      invalidSinceYield = false;
      pending = pending.slice(cut);
    }
  }
  const tail = decoder.decode();
  const invalid = countReplacements(tail, new Uint8Array(0));
  report.invalidUtf8 += invalid;
  pending += tail;
  if (pending.length > 0) yield { text: pending, invalid: invalidSinceYield || invalid > 0 };
}

/**
 * Splits a byte stream into lines (without the newline and a trailing CR), each decoded on its own:
 * strictly first, so that bytes that are not UTF-8 are told apart from a correctly encoded U+FFFD.
 */
async function* readLines(stream: AsyncIterable<Buffer>): AsyncGenerator<{ line: string; invalid: number }> {
  const strict = new TextDecoder('utf-8', { fatal: true });
  const lossy = new TextDecoder('utf-8', { fatal: false });
  // `invalid`: how many sequences became U+FFFD, so JSONL warnings count sequences as text files' do.
  const decode = (bytes: Buffer): { line: string; invalid: number } => {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length;
    const b = bytes.subarray(0, end);
    try {
      return { line: strict.decode(b), invalid: 0 };
    } catch {
      const line = lossy.decode(b);
      return { line, invalid: Math.max(1, countReplacements(line, b)) };
    }
  };
  let pending: Buffer[] = [];
  for await (const buf of stream) {
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      const piece = buf.subarray(start, nl);
      yield decode(pending.length > 0 ? Buffer.concat([...pending, piece]) : piece);
      pending = [];
      start = nl + 1;
    }
    if (start < buf.length) pending.push(buf.subarray(start));
  }
  if (pending.length > 0) yield decode(Buffer.concat(pending));
}

/** Streams a JSON Lines file: one document per line, text taken from `field`. */
async function* readJsonlFile(path: string, field: string, warn: (m: string) => void, report: FileReport): AsyncGenerator<{ text: string; invalid: boolean }> {
  let lineNo = 0;
  let bad = 0;
  let firstBad = '';
  for await (const { line, invalid } of readLines(openStream(path) as AsyncIterable<Buffer>)) {
    lineNo++;
    if (lineNo === 1 && line.includes('\0')) {
      report.binary = true;
      return;
    }
    if (line.trim() === '') continue;
    report.invalidUtf8 += invalid;
    report.lines = (report.lines ?? 0) + 1;
    let value: unknown;
    try {
      const obj = JSON.parse(line) as unknown;
      if (typeof obj === 'object' && obj !== null && !Array.isArray(obj)) {
        report.keys ??= Object.keys(obj);
        value = (obj as Record<string, unknown>)[field];
      }
    } catch {
      value = undefined;
    }
    if (typeof value === 'string') report.withField = (report.withField ?? 0) + 1;
    else {
      if (bad++ === 0) firstBad = `line ${lineNo}`;
      continue;
    }
    if (value.length > 0) yield { text: value, invalid: invalid > 0 };
  }
  if (bad > 0) warn(`${path}: skipped ${bad} line(s) that are not JSON objects with a string "${field}" field (first: ${firstBad})`);
}

/**
 * Streams the documents of a corpus. A text file is one document; each JSONL line is one document.
 * Throws CorpusError when no text is found at all.
 */
export async function* readCorpus(paths: readonly string[], opts: CorpusOptions = {}): AsyncGenerator<CorpusChunk> {
  const warn = opts.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  const chunkChars = opts.chunkChars ?? 1 << 20;
  const field = opts.jsonlField ?? 'text';
  const files = listCorpusFiles(paths);
  let doc = 0;
  let sawText = false;
  const fieldless: Array<{ file: string; keys?: string[] }> = [];
  for (const file of files) {
    const report: FileReport = { binary: false, invalidUtf8: 0 };
    try {
      if (isJsonl(file)) {
        for await (const { text, invalid } of readJsonlFile(file, field, warn, report)) {
          if (/\S/.test(text)) sawText = true;
          for (let i = 0; i < text.length; i += chunkChars) {
            yield { doc, source: file, text: text.slice(i, i + chunkChars), end: i + chunkChars >= text.length, invalidUtf8: invalid };
          }
          doc++;
        }
      } else {
        let previous: { text: string; invalid: boolean } | null = null;
        for await (const piece of readTextFile(file, chunkChars, report)) {
          if (previous !== null) yield { doc, source: file, text: previous.text, end: false, invalidUtf8: previous.invalid };
          previous = piece;
          if (!sawText && /\S/.test(piece.text)) sawText = true;
        }
        if (previous !== null) {
          yield { doc, source: file, text: previous.text, end: true, invalidUtf8: previous.invalid };
          doc++;
        }
      }
    } catch (e) {
      if (e instanceof PrimerError) throw e;
      throw unreadable(file, e);
    }
    if (report.binary) warn(`${file}: looks like a binary file (NUL bytes or control characters); skipped`);
    if (report.invalidUtf8 > 0) warn(`${file}: ${report.invalidUtf8} invalid UTF-8 sequence(s) replaced with U+FFFD`);
    if (report.lines && !report.withField) fieldless.push({ file, keys: report.keys });
  }
  // Records under another key than the text field are the likely cause, and a flag fixes it; "empty"
  // alone sent users looking for a blank file. ("the corpus is empty" stays: callers match it.)
  if (!sawText && fieldless.length > 0) {
    const [{ file, keys }] = fieldless as [(typeof fieldless)[0]];
    const more = fieldless.length > 1 ? `; ${fieldless.length - 1} more JSONL file(s) alike` : '';
    const why = keys === undefined
      ? `no line is a JSON object (JSON Lines holds one {"${field}": "…"} object per line)`
      : `no line has a string "${field}" field (keys: ${keys.slice(0, 8).map((k) => JSON.stringify(k)).join(', ') || 'none'}${keys.length > 8 ? ', …' : ''}; choose the field with --jsonl-field)`;
    throw new CorpusError(`the corpus is empty: ${file}: ${why}${more}`);
  }
  if (!sawText) {
    throw new CorpusError(`the corpus is empty: no text found in ${files.length} file(s) under ${paths.join(', ')}`);
  }
}
