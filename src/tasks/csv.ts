/**
 * RFC 4180 CSV/TSV parsing that remembers where every field starts, so that errors about the data
 * (a ragged row, an empty text, an unknown label) can name file, line and column.
 *
 * Rules: fields are separated by the delimiter, records by CRLF or LF; a field that starts with a
 * double quote is quoted — it may contain delimiters, newlines and "" (an escaped quote) and must be
 * followed by a delimiter or the end of the record. A quote inside an unquoted field is kept as is
 * (lenient, like Python's csv module). A trailing newline does not start an empty record; blank lines
 * are skipped.
 */
import { TaskDataError } from '../models/labels.ts';

export interface CsvField {
  value: string;
  quoted: boolean;
  /** Where the field starts (its opening quote for a quoted field). */
  line: number;
  column: number;
}

export interface CsvRecord {
  fields: CsvField[];
  /** Line of the record's first field. */
  line: number;
  /** Line and column just past the record's last character (for "missing field" errors). */
  endLine: number;
  endColumn: number;
}

export function parseDelimited(content: string, delimiter: string, file: string): CsvRecord[] {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new RangeError(`parseDelimited: the delimiter must be one character other than a quote or newline, got ${JSON.stringify(delimiter)}`);
  }
  const records: CsvRecord[] = [];
  let i = content.charCodeAt(0) === 0xfeff ? 1 : 0; // a UTF-8 BOM is not part of the first header
  let line = 1;
  let lineStart = i; // editors do not show a BOM, so it takes no column
  let fields: CsvField[] = [];
  const n = content.length;
  const col = (at: number) => at - lineStart + 1;

  while (i < n) {
    const fieldLine = line;
    const fieldColumn = col(i);
    const fieldStart = i;
    let value = '';
    if (content[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new TaskDataError(file, fieldLine, fieldColumn, 'unterminated quoted field (no closing ")');
        const ch = content[i]!;
        if (ch === '"') {
          if (content[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (ch === '\n') {
          line++;
          lineStart = i + 1;
        }
        value += ch;
        i++;
      }
      const next = content[i];
      if (i < n && next !== delimiter && next !== '\n' && next !== '\r') {
        throw new TaskDataError(file, line, col(i), `unexpected ${JSON.stringify(next)} after a closing quote (a quote inside a quoted field is written "")`);
      }
    } else {
      const start = i;
      while (i < n && content[i] !== delimiter && content[i] !== '\n' && content[i] !== '\r') i++;
      value = content.slice(start, i);
    }
    fields.push({ value, quoted: content[fieldStart] === '"', line: fieldLine, column: fieldColumn });
    if (i < n && content[i] === delimiter) {
      i++;
      if (i >= n || content[i] === '\n' || content[i] === '\r') fields.push({ value: '', quoted: false, line, column: col(i) }); // "a,b," ends in an empty field
      else continue;
    }
    // End of record.
    const endLine = line;
    const endColumn = col(i);
    if (content[i] === '\r') i++;
    if (content[i] === '\n') i++;
    line++;
    lineStart = i;
    const blank = fields.length === 1 && fields[0]!.value === '' && !fields[0]!.quoted;
    if (!blank) records.push({ fields, line: fields[0]!.line, endLine, endColumn });
    fields = [];
  }
  return records;
}
