import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, padEndColumns } from '../../src/util/text-width.ts';
import { formatClassificationReport } from '../../src/cli/finetune-format.ts';
import { classificationReport } from '../../src/tasks/metrics.ts';

test('terminal widths: CJK and fullwidth characters take two columns, combining marks none', () => {
  assert.equal(displayWidth('good'), 4);
  assert.equal(displayWidth('好'), 2);
  assert.equal(displayWidth('今天，好'), 8); // the fullwidth comma too
  assert.equal(displayWidth('e\u0301'), 1); // e + combining acute
  assert.equal(displayWidth('한국'), 4);
  assert.equal(padEndColumns('好的', 6), '好的  ');
  assert.equal(padEndColumns('ok', 6), 'ok    ');
});

test('a classification report with Chinese labels keeps its columns aligned', () => {
  const labels = ['正面', '负面', 'neutral'];
  const report = classificationReport(Int32Array.from([0, 1, 2, 0]), Int32Array.from([0, 1, 2, 1]), labels);
  const rows = formatClassificationReport(report).split('\n').filter((l) => /^(正面|负面|neutral|class) /.test(l));
  assert.equal(rows.length, 7); // header, 3 per-class rows, 3 confusion rows
  const perClass = rows.slice(0, 4);
  // The precision column ends at the same terminal column in the header and in every row.
  const end = (l: string) => displayWidth(l.slice(0, l.startsWith('class') ? l.indexOf('precision') + 9 : l.indexOf('%') + 1));
  assert.deepEqual(perClass.map(end), perClass.map(() => end(perClass[0]!)));
});

test('the confusion matrix puts each Chinese column label right above its counts', () => {
  const labels = ['正面', '负面', '非常非常非常负面的'];
  const report = classificationReport(Int32Array.from([0, 1, 2, 0]), Int32Array.from([0, 1, 2, 1]), labels);
  const lines = formatClassificationReport(report).split('\n');
  const at = lines.indexOf('confusion matrix (rows: true label, columns: predicted)');
  const [header, ...rows] = lines.slice(at + 1, at + 1 + 1 + labels.length);
  // The terminal column where each run of non-spaces ends.
  const ends = (l: string) => [...l.matchAll(/\S+/g)].map((m) => displayWidth(l.slice(0, m.index! + m[0].length)));
  for (const row of rows) assert.deepEqual(ends(row!).slice(1), ends(header!), `${header}\n${row}`);
  // Labels longer than 8 columns are cut to 8 columns ("非常非常"), never to half a character.
  assert.deepEqual(header!.trim().split(/ +/), ['正面', '负面', '非常非常']);
});
