/** Plain-text rendering of evaluation reports, and text input, for the fine-tuning commands. */
import { readFileSync } from 'node:fs';
import type { ClassificationReport } from '../tasks/metrics.ts';
import { clipColumns, displayWidth, padEndColumns, padStartColumns } from '../util/text-width.ts';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Accuracy, macro-F1, a per-class table and the confusion matrix (rows true, columns predicted). */
export function formatClassificationReport(r: ClassificationReport, o: { tokens?: boolean; maxClasses?: number } = {}): string {
  const unit = o.tokens ? 'tokens' : 'examples';
  const lines = [`${o.tokens ? 'token accuracy' : 'accuracy'} ${pct(r.accuracy)}   macro-F1 ${pct(r.macroF1)}   weighted-F1 ${pct(r.weightedF1)}   (${r.count} ${unit})`];
  const width = Math.max(5, ...r.perClass.map((c) => displayWidth(c.label)));
  lines.push('', `${'class'.padEnd(width)}  precision  recall     f1  support`);
  for (const c of r.perClass) {
    lines.push(`${padEndColumns(c.label, width)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}  ${pct(c.f1).padStart(6)}  ${String(c.support).padStart(7)}`);
  }
  // A confusion matrix wider than a terminal is not readable; the per-class table says the same then.
  if (r.perClass.length <= (o.maxClasses ?? 16)) {
    // Headers are cut and padded by terminal columns: a Chinese label is twice as wide as its length.
    const header = r.perClass.map((c) => clipColumns(c.label, 8));
    const cell = Math.max(4, ...r.confusion.flat().map((n) => String(n).length), ...header.map(displayWidth));
    lines.push('', 'confusion matrix (rows: true label, columns: predicted)');
    lines.push(`${''.padEnd(width)}  ${header.map((h) => padStartColumns(h, cell)).join(' ')}`);
    r.confusion.forEach((row, i) => lines.push(`${padEndColumns(r.perClass[i]!.label, width)}  ${row.map((n) => String(n).padStart(cell)).join(' ')}`));
  }
  return lines.join('\n');
}

export function formatQA(r: { exactMatch: number; f1: number; count: number }): string {
  return `exact match ${pct(r.exactMatch)}   F1 ${pct(r.f1)}   (${r.count} questions)`;
}

export function percent(x: number): string {
  return pct(x);
}

/**
 * --text values, or one text per stdin line: blank lines are skipped, or, with `aligned` (outputs that
 * do not repeat their input, such as embed's vectors, must match the input line for line), refused
 * with their line numbers.
 */
export function inputTexts(texts: string[] | undefined, o: { aligned?: string } = {}): string[] {
  if (texts?.length) return texts;
  if (process.stdin.isTTY) throw new RangeError('--text is required (or pipe one text per line on stdin)');
  const lines = readFileSync(0, 'utf8').split('\n').map((l) => l.trim());
  if (lines.at(-1) === '') lines.pop(); // the newline that ends the last line
  // An empty pipe (a file that did not exist, a filter that matched nothing) would print nothing and exit 0.
  if (!lines.some(Boolean)) throw new RangeError('stdin holds no text (pipe one text per line, or give --text)');
  if (!o.aligned) return lines.filter(Boolean);
  const blank = lines.flatMap((l, i) => (l ? [] : [i + 1]));
  if (blank.length) throw new RangeError(`${o.aligned}: stdin line${blank.length > 1 ? 's' : ''} ${blank.slice(0, 10).join(', ')}${blank.length > 10 ? ', …' : ''} ${blank.length > 1 ? 'are' : 'is'} empty; it writes one line per input line, so each needs text`);
  return lines;
}
