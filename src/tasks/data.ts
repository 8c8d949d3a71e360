/**
 * Labelled data for fine-tuning: readers for CSV/TSV/JSONL (text classification, single texts or
 * pairs), CoNLL-style token/tag files and SQuAD-layout QA JSON; label maps; stratified subsampling
 * and seeded train/val/test splits. Every complaint about the data names file, line and column.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseDelimited } from './csv.ts';
import { jsonErrorLocation } from '../io/json.ts';
import { TaskDataError } from '../models/labels.ts';

export { TaskDataError } from '../models/labels.ts';

/** Where a value came from in its file (1-based line and column). */
export interface Location {
  file: string;
  line: number;
  column: number;
}

export interface TextExample {
  text: string;
  textPair?: string;
  /** Absent for unlabelled data (inference). */
  label?: string;
  /** Where the label (or, unlabelled, the text) is in the file, for unknown-label errors. */
  where?: Location;
  /** A stable id (e.g. document id) for excluding evaluation data from pre-training. */
  id?: string;
  /** Examples sharing a group (e.g. chunks of one document) always land in the same split. */
  group?: string;
}

export interface TokenExample {
  tokens: string[];
  tags: string[];
  /** Per token, where its tag is (for unknown-tag errors). */
  where?: Location[];
  id?: string;
  group?: string;
}

export interface QAExample {
  id: string;
  title?: string;
  context: string;
  question: string;
  /** Character spans into `context`; several references for evaluation sets. */
  answers: Array<{ text: string; start: number }>;
}

export interface ColumnOptions {
  /** Column (CSV/TSV header name or JSONL key) holding the text. Default 'text'. */
  textColumn?: string;
  /** Second text of a pair (e.g. 'text_pair', 'hypothesis'); none by default. */
  textPairColumn?: string;
  /** Default 'label'; null reads unlabelled data. */
  labelColumn?: string | null;
  /** Default: from the extension (.csv, .tsv/.tab, .jsonl/.ndjson). */
  format?: 'csv' | 'tsv' | 'jsonl';
}

/** Reads a labelled (or, with labelColumn null, unlabelled) text file. */
export function readTextExamples(path: string, options: ColumnOptions = {}): TextExample[] {
  refuseDirectory(path, '.csv, .tsv or .jsonl');
  const format = options.format ?? formatOf(path);
  const content = readFileSync(path, 'utf8');
  return format === 'jsonl' ? parseJsonlExamples(content, basename(path), options) : parseDelimitedExamples(content, basename(path), format === 'tsv' ? '\t' : ',', options);
}

function formatOf(path: string): 'csv' | 'tsv' | 'jsonl' {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new RangeError(`${basename(path)}: cannot tell the format from the extension "${ext}": text examples are read from .csv, .tsv (.tab) or .jsonl (.ndjson) files`);
}

/**
 * A directory would otherwise surface as a bare EISDIR, or, without an extension, as a complaint
 * about its (empty) extension that never says the path is not a file.
 */
function refuseDirectory(path: string, wanted: string): void {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new RangeError(`${path} is a directory; give a ${wanted} file`);
}

/** CSV or TSV text with a header row naming the columns. */
export function parseDelimitedExamples(content: string, file: string, delimiter: string, options: ColumnOptions = {}): TextExample[] {
  const records = parseDelimited(content, delimiter, file);
  if (records.length === 0) throw new TaskDataError(file, 1, 1, 'the file is empty (expected a header row)');
  const [header, ...rows] = records as [(typeof records)[0], ...typeof records];
  const names = header.fields.map((f) => f.value.trim());
  const index = (column: string, role: string): number => {
    const k = names.indexOf(column);
    if (k < 0) {
      throw new TaskDataError(file, header.line, header.endColumn, `no ${role} column "${column}" in the header (columns: ${names.map((n) => JSON.stringify(n)).join(', ')})`);
    }
    // Which of two same-named columns is meant is a guess (Python's csv.DictReader takes the last).
    const again = names.indexOf(column, k + 1);
    if (again >= 0) {
      const f = header.fields[again]!;
      throw new TaskDataError(file, f.line, f.column, `the header names the ${role} column "${column}" twice (fields ${k + 1} and ${again + 1}); rename one`);
    }
    return k;
  };
  const textIdx = index(options.textColumn ?? 'text', 'text');
  const pairIdx = options.textPairColumn ? index(options.textPairColumn, 'text pair') : -1;
  const labelColumn = options.labelColumn === undefined ? 'label' : options.labelColumn;
  const labelIdx = labelColumn === null ? -1 : index(labelColumn, 'label');
  if (rows.length === 0) throw new TaskDataError(file, header.endLine + 1, 1, 'no data rows after the header');
  return rows.map((row) => {
    if (row.fields.length !== names.length) {
      const extra = row.fields[names.length];
      const [line, column] = extra ? [extra.line, extra.column] : [row.endLine, row.endColumn];
      const verb = extra ? 'too many' : 'too few';
      throw new TaskDataError(file, line, column, `ragged row: ${row.fields.length} fields but the header has ${names.length} (${verb} fields; quote values that contain "${delimiter === '\t' ? '\\t' : delimiter}")`);
    }
    const cell = (k: number) => row.fields[k]!;
    const text = nonEmpty(cell(textIdx).value, file, cell(textIdx), names[textIdx]!);
    const ex: TextExample = { text };
    if (pairIdx >= 0) ex.textPair = nonEmpty(cell(pairIdx).value, file, cell(pairIdx), names[pairIdx]!);
    if (labelIdx >= 0) {
      const f = cell(labelIdx);
      if (f.value.trim() === '') throw new TaskDataError(file, f.line, f.column, `empty label in column "${names[labelIdx]}"`);
      ex.label = f.value.trim();
      ex.where = { file, line: f.line, column: f.column };
    } else {
      ex.where = { file, line: cell(textIdx).line, column: cell(textIdx).column };
    }
    return ex;
  });
}

function nonEmpty(value: string, file: string, at: { line: number; column: number }, column: string): string {
  if (value.trim() === '') throw new TaskDataError(file, at.line, at.column, `empty text in column "${column}"`);
  return value;
}

/** One JSON object per line; blank lines are skipped. Columns are the objects' keys. */
export function parseJsonlExamples(content: string, file: string, options: ColumnOptions = {}): TextExample[] {
  const textKey = options.textColumn ?? 'text';
  const labelKey = options.labelColumn === undefined ? 'label' : options.labelColumn;
  const out: TextExample[] = [];
  const lines = content.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, i) => {
    const lineText = raw.replace(/\r$/, '');
    if (lineText.trim() === '') return;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(lineText);
    } catch (e) {
      const at = jsonErrorLocation(lineText, e);
      throw new TaskDataError(file, line, at?.column ?? 1, `invalid JSON: ${at?.reason ?? (e as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new TaskDataError(file, line, 1, 'expected a JSON object per line');
    const rec = obj as Record<string, unknown>;
    // The key, not an equal string value earlier on the line ({"text": "label", "label": …}): a key is followed by a colon.
    const keyColumn = (key: string) => {
      const quoted = JSON.stringify(key);
      for (let at = lineText.indexOf(quoted); at >= 0; at = lineText.indexOf(quoted, at + 1)) {
        if (/^\s*:/.test(lineText.slice(at + quoted.length))) return at + 1;
      }
      return 1;
    };
    const str = (key: string, role: string): string => {
      if (!(key in rec)) {
        throw new TaskDataError(file, line, lineText.length + 1, `no ${role} column "${key}" (keys: ${Object.keys(rec).map((k) => JSON.stringify(k)).join(', ')})`);
      }
      const v = rec[key];
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw new TaskDataError(file, line, keyColumn(key), `"${key}" must be a string, number or boolean, got ${v === null ? 'null' : typeof v}`);
      }
      return String(v);
    };
    const text = str(textKey, 'text');
    if (text.trim() === '') throw new TaskDataError(file, line, keyColumn(textKey), `empty text in column "${textKey}"`);
    const ex: TextExample = { text };
    if (options.textPairColumn) {
      ex.textPair = str(options.textPairColumn, 'text pair');
      if (ex.textPair.trim() === '') throw new TaskDataError(file, line, keyColumn(options.textPairColumn), `empty text in column "${options.textPairColumn}"`);
    }
    if (labelKey !== null) {
      const label = str(labelKey, 'label').trim();
      if (label === '') throw new TaskDataError(file, line, keyColumn(labelKey), `empty label in column "${labelKey}"`);
      ex.label = label;
      ex.where = { file, line, column: keyColumn(labelKey) };
    } else {
      ex.where = { file, line, column: keyColumn(textKey) };
    }
    out.push(ex);
  });
  if (out.length === 0) throw new TaskDataError(file, 1, 1, 'no examples in the file');
  return out;
}

// ---- token-tagged (CoNLL-style) ------------------------------------------------------------------

export interface TokenFileOptions {
  /** Which whitespace/tab-separated field is the tag: default the last (CoNLL-2003: token POS chunk NER), CoNLL-U's UPOS (3). */
  tagField?: number;
  /**
   * CoNLL-U (Universal Dependencies: ID FORM LEMMA UPOS … MISC, tab-separated): the token is FORM, not
   * the first field, "#" lines are comments, and multiword ranges ("3-4") and empty nodes ("8.1") are
   * not words of the sentence. Default: files named .conllu.
   */
  conllu?: boolean;
}

/** "token<TAB or spaces>tag" per line, a blank line between sentences; -DOCSTART- lines are skipped. */
export function parseTokenTagged(content: string, file: string, options: TokenFileOptions = {}): TokenExample[] {
  const conllu = options.conllu ?? false;
  const tokenField = conllu ? 1 : 0;
  const out: TokenExample[] = [];
  let current: TokenExample = { tokens: [], tags: [], where: [] };
  const flush = () => {
    if (current.tokens.length) out.push(current);
    current = { tokens: [], tags: [], where: [] };
  };
  content.replace(/^\uFEFF/, '').split('\n').forEach((raw, i) => {
    const text = raw.replace(/\r$/, '');
    if (text.trim() === '') return flush();
    if (conllu && text.startsWith('#')) return;
    const line = i + 1;
    // Tab-separated when the line has tabs (tokens may then contain spaces), else whitespace runs.
    const fields: Array<{ value: string; column: number }> = [];
    const re = text.includes('\t') || conllu ? /[^\t]+/g : /\S+/g;
    for (let m = re.exec(text); m; m = re.exec(text)) fields.push({ value: m[0].trim(), column: m.index + 1 + m[0].search(/\S|$/) });
    if (fields[0]?.value === '-DOCSTART-') return flush();
    if (conllu && /^\d+[-.]\d+$/.test(fields[0]?.value ?? '')) return;
    if (conllu && fields.length < 4) throw new TaskDataError(file, line, text.length + 1, `expected the tab-separated CoNLL-U fields ID FORM LEMMA UPOS … (${fields.length} on this line)`);
    if (fields.length < 2) throw new TaskDataError(file, line, text.length + 1, 'expected "token<TAB>tag" (a tag is missing)');
    const k = options.tagField ?? (conllu ? 3 : fields.length - 1);
    const tag = fields[k];
    if (!tag || k === tokenField) throw new TaskDataError(file, line, text.length + 1, `no tag field ${k} on this line (${fields.length} fields)`);
    current.tokens.push(fields[tokenField]!.value);
    current.tags.push(tag.value);
    current.where!.push({ file, line, column: tag.column });
  });
  flush();
  if (out.length === 0) throw new TaskDataError(file, 1, 1, 'no tagged sentences in the file');
  return out;
}

export function readTokenTagged(path: string, options: TokenFileOptions = {}): TokenExample[] {
  refuseDirectory(path, 'CoNLL (token<TAB>tag)');
  return parseTokenTagged(readFileSync(path, 'utf8'), basename(path), { ...options, conllu: options.conllu ?? extname(path).toLowerCase() === '.conllu' });
}

// ---- SQuAD ------------------------------------------------------------------------------------

/** SQuAD v1.1/v2.0 layout: {data: [{title, paragraphs: [{context, qas: [{id, question, answers}]}]}]}. */
export function parseSquad(json: unknown, file: string): QAExample[] {
  const fail = (path: string, msg: string): never => {
    throw new TaskDataError(file, 1, 1, `${path}: ${msg}`);
  };
  const obj = (v: unknown, path: string) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(path, 'expected an object'));
  const arr = (v: unknown, path: string) => (Array.isArray(v) ? v : fail(path, 'expected an array'));
  const str = (v: unknown, path: string) => (typeof v === 'string' ? v : fail(path, 'expected a string'));
  const out: QAExample[] = [];
  arr(obj(json, '(root)').data, 'data').forEach((article, a) => {
    const art = obj(article, `data[${a}]`);
    const title = typeof art.title === 'string' ? art.title : undefined;
    arr(art.paragraphs, `data[${a}].paragraphs`).forEach((paragraph, p) => {
      const pp = `data[${a}].paragraphs[${p}]`;
      const par = obj(paragraph, pp);
      const context = str(par.context, `${pp}.context`);
      if (context.trim() === '') fail(`${pp}.context`, 'empty context');
      arr(par.qas, `${pp}.qas`).forEach((qa, q) => {
        const qp = `${pp}.qas[${q}]`;
        const qq = obj(qa, qp);
        const question = str(qq.question, `${qp}.question`);
        if (question.trim() === '') fail(`${qp}.question`, 'empty question');
        const id = typeof qq.id === 'string' || typeof qq.id === 'number' ? String(qq.id) : fail(`${qp}.id`, 'expected a string id');
        const answers = arr(qq.answers ?? [], `${qp}.answers`).map((ans, k) => {
          const ap = `${qp}.answers[${k}]`;
          const an = obj(ans, ap);
          const text = str(an.text, `${ap}.text`);
          const start = an.answer_start;
          if (typeof start !== 'number' || !Number.isInteger(start) || start < 0) fail(`${ap}.answer_start`, 'expected a non-negative integer');
          if (context.slice(start as number, (start as number) + text.length) !== text) {
            fail(`${ap}`, `context at answer_start ${start} reads ${JSON.stringify(context.slice(start as number, (start as number) + text.length))}, not the answer ${JSON.stringify(text)}`);
          }
          return { text, start: start as number };
        });
        out.push({ id, title, context, question, answers });
      });
    });
  });
  return out;
}

export function readSquad(path: string): QAExample[] {
  refuseDirectory(path, 'SQuAD .json');
  let json: unknown;
  const text = readFileSync(path, 'utf8');
  try {
    json = JSON.parse(text);
  } catch (e) {
    const at = jsonErrorLocation(text, e);
    throw new TaskDataError(basename(path), at?.line ?? 1, at?.column ?? 1, `invalid JSON: ${at?.reason ?? (e as Error).message}`);
  }
  return parseSquad(json, basename(path));
}

export { stratifiedSample, splitDataset, shuffled } from './labels.ts';
export { LabelMap } from '../models/labels.ts';
