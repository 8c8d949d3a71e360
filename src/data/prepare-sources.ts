/**
 * The reading half of `primer data prepare`: which files make up the corpus (tolerating entries that
 * cannot be read) and how a file's text becomes documents and pieces of documents.
 *
 * Pieces are what the workers encode. A document longer than one chunk arrives as several pieces,
 * each cut right after a non-whitespace character (a cut no pre-tokenizer joins across), and a
 * document longer than maxDocumentChars is closed and continued as a new document ("part"), so the
 * memory held for one document stays bounded whatever the input.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CorpusError } from './corpus.ts';

const TEXT_EXTENSIONS = new Set(['.txt', '.text', '.md', '.jsonl', '.ndjson']);

function withoutGz(path: string): string {
  return path.endsWith('.gz') ? path.slice(0, -3) : path;
}

export function isJsonlPath(path: string): boolean {
  return ['.jsonl', '.ndjson'].includes(extname(withoutGz(path)).toLowerCase());
}

export interface SourceFile {
  path: string;
  bytes: number;
  mtimeMs: number;
  /** Why it cannot be read (listed so that it is reported, then skipped). */
  error?: string;
}

/**
 * Files of the corpus in a stable order: explicit files as given, directories walked recursively in
 * sorted order (text extensions only, optionally .gz). A path that does not exist at all is an error
 * (most likely a typo); an entry inside a directory that cannot be stat'ed is listed with its error.
 */
export function listSources(paths: readonly string[]): SourceFile[] {
  if (paths.length === 0) throw new CorpusError('no corpus paths given');
  const out: SourceFile[] = [];
  const add = (path: string, explicit: boolean): void => {
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      if (explicit) throw new CorpusError(`corpus path not found: ${path}`);
      out.push({ path, bytes: 0, mtimeMs: 0, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
      return;
    }
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = readdirSync(path).sort();
      } catch (e) {
        out.push({ path, bytes: 0, mtimeMs: 0, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
        return;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const full = join(path, name);
        let isDir = false;
        try {
          isDir = statSync(full).isDirectory();
        } catch {
          // reported by add() below when it is a text file name
        }
        if (isDir || TEXT_EXTENSIONS.has(extname(withoutGz(full)).toLowerCase())) add(full, false);
      }
    } else {
      out.push({ path, bytes: st.size, mtimeMs: st.mtimeMs });
    }
  };
  for (const p of paths) add(p, true);
  return out;
}

/** A document, or a part of one, as the reader sees it. `position` = [file, document in file, part]. */
export interface DocumentState {
  position: [number, number, number];
  /** Skipped because a previous run already stored it (resume). */
  skip: boolean;
}

export interface PieceSink {
  /** A new document (or part) starts; returns its state. */
  begin(position: [number, number, number]): DocumentState;
  piece(doc: DocumentState, text: string, last: boolean): void;
}

/** Position of the cut after the last non-whitespace character (0 when there is none). */
function lastSafeCut(text: string): number {
  let i = text.length;
  while (i > 0 && /\s/.test(text[i - 1]!)) i--;
  return i;
}

/**
 * Where to close a part that may take `budget` more characters of `text`: after the last line break
 * in the second half of the budget, else after the last whitespace there, else at the budget (a
 * "word" longer than half a part). Parts then end between lines or words, so no word is cut in two.
 */
function partCut(text: string, budget: number): number {
  const window = text.slice(0, budget);
  const half = Math.floor(budget / 2);
  const line = window.lastIndexOf('\n');
  if (line >= half) return line + 1;
  for (let i = budget - 1; i >= half; i--) if (/\s/.test(window[i]!)) return i + 1;
  return budget;
}

const BLANK_LINE = /\n[ \t\r\f\v]*\n\s*/g;

/**
 * Turns the chunks of one file into documents and pieces. `blankLines`: documents are separated by
 * blank lines (else the file, or the JSONL record, is one document).
 */
export class DocumentAssembler {
  private doc: DocumentState | null = null;
  private docIndex = -1;
  private part = 0;
  private docChars = 0;
  private carry = '';
  private rawDoc = -1;

  constructor(private readonly file: number, private readonly sink: PieceSink, private readonly blankLines: boolean, private readonly maxDocumentChars: number) {}

  private start(): DocumentState {
    this.docIndex++;
    this.part = 0;
    this.docChars = 0;
    return (this.doc = this.sink.begin([this.file, this.docIndex, 0]));
  }

  private emit(text: string, last: boolean): void {
    // Close parts while the document would outgrow maxDocumentChars; the rest continues as a new part.
    while (this.docChars + text.length > this.maxDocumentChars) {
      const budget = this.maxDocumentChars - this.docChars;
      let cut = partCut(text, budget);
      const c = text.charCodeAt(cut - 1);
      if (c >= 0xd800 && c <= 0xdbff && cut > 1) cut--; // never split a surrogate pair
      this.sink.piece(this.doc ?? this.start(), text.slice(0, cut), true);
      this.part++;
      this.docChars = 0;
      this.doc = this.sink.begin([this.file, this.docIndex, this.part]);
      text = text.slice(cut);
    }
    const doc = this.doc ?? this.start();
    this.docChars += text.length;
    this.sink.piece(doc, text, last);
    if (last) this.doc = null;
  }

  /** Feeds one corpus chunk (chunk.doc numbers the reader's documents; `end` closes one). */
  push(rawDoc: number, text: string, end: boolean): void {
    if (rawDoc !== this.rawDoc) {
      this.rawDoc = rawDoc;
      this.carry = '';
      this.doc = null;
    }
    let rest = this.carry + text;
    this.carry = '';
    if (this.blankLines) {
      BLANK_LINE.lastIndex = 0;
      let start = 0;
      for (let m = BLANK_LINE.exec(rest); m; m = BLANK_LINE.exec(rest)) {
        const body = rest.slice(start, m.index);
        if (body.length > 0 || this.doc) this.emit(body, true);
        start = m.index + m[0].length;
      }
      rest = rest.slice(start);
    }
    if (end) {
      // Blank-line documents never include their separators, and the end of the file is one.
      if (this.blankLines) rest = rest.slice(0, lastSafeCut(rest));
      if (rest.length > 0 || this.doc) this.emit(rest, true);
      this.doc = null;
      return;
    }
    const cut = lastSafeCut(rest);
    if (cut > 0) this.emit(rest.slice(0, cut), false);
    this.carry = rest.slice(cut);
  }

  /** The document in progress when reading failed (it will not be stored), or null. */
  abandon(): DocumentState | null {
    const d = this.doc;
    this.doc = null;
    this.carry = '';
    return d;
  }
}
