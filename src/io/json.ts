/**
 * JSON files with errors people can act on: JSON.parse reports a character offset ("at position 52")
 * or, for an unexpected token, only a snippet of the text, while editors show lines and columns.
 */
import { readFileSync } from 'node:fs';

export interface JsonErrorLocation {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units (what editors count for all but astral characters). */
  column: number;
  /** The parser's message without its position or snippet, e.g. "Expected ',' or '}' after property value". */
  reason: string;
}

const END = 'Unexpected end of JSON input';

function positionIn(message: string): number | null {
  const m = /\bat position (\d+)/.exec(message);
  return m ? Number(m[1]) : null;
}

/**
 * Where a text that JSON.parse refuses goes wrong. "Unexpected token" messages carry no position in
 * Node 20, so it is found by parsing prefixes: a prefix that ends before the bad character fails only
 * for ending early (or parses), one that includes it fails for another reason.
 */
export function jsonErrorLocation(text: string, error: unknown): JsonErrorLocation | null {
  const message = error instanceof Error ? error.message : String(error);
  const reason = message
    .replace(/^(Unexpected token '[\s\S]+?'), [\s\S]* is not valid JSON$/, '$1')
    .replace(/ at position \d+(?: \(line \d+ column \d+\))?$/, '')
    .replace(/ in JSON$/, '');
  const lineColumn = /\(line (\d+) column (\d+)\)/.exec(message);
  if (lineColumn) return { line: Number(lineColumn[1]), column: Number(lineColumn[2]), reason };
  let position = message === END ? text.length : positionIn(message);
  if (position === null) {
    const failsWithin = (k: number): boolean => {
      try {
        JSON.parse(text.slice(0, k));
        return false;
      } catch (e) {
        const m = (e as Error).message;
        const at = positionIn(m);
        return m !== END && !(at !== null && at >= k);
      }
    };
    if (!failsWithin(text.length)) return null;
    let [lo, hi] = [0, text.length]; // failsWithin(lo) is false (or lo = 0), failsWithin(hi) is true
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (failsWithin(mid)) hi = mid;
      else lo = mid;
    }
    position = hi - 1;
  }
  position = Math.min(position, text.length);
  const before = text.slice(0, position);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: position - lineStart + 1, reason };
}

/** "not valid JSON at line 3, column 7: Expected ',' or '}' after property value" (or without the place when unknown). */
export function describeJsonError(text: string, error: unknown): string {
  if (text.trim() === '') return 'not valid JSON: the file is empty';
  const at = jsonErrorLocation(text, error);
  return at ? `not valid JSON at line ${at.line}, column ${at.column}: ${at.reason}` : `not valid JSON: ${(error as Error).message}`;
}

/**
 * Reads and parses a JSON file; a parse error becomes `fail("PATH: not valid JSON at line L, column C: …")`
 * so each caller keeps its own error class. Read errors (missing file, permissions) are thrown as they are.
 */
export function readJsonFile(path: string, fail: (message: string, cause: unknown) => Error): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw fail(`${path}: ${describeJsonError(text, e)}`, e);
  }
}
