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
