/**
 * The experiment's data: a built-in task or a user's CSV/TSV/JSONL file with a seeded stratified split,
 * and errors that name file, line and column for bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBudgets, loadExperimentData } from '../../src/tasks/experiment-data.ts';
import { TaskDataError } from '../../src/tasks/data.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-experiment-data-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** n rows per class, "review" and "stars" columns, "good"/"bad"/… labels. */
function csv(name: string, classes: string[], n: number): string {
  const rows = classes.flatMap((c) => Array.from({ length: n }, (_, i) => `"${c} text number ${i}, with a comma",x,${c}`));
  return file(name, ['review,other,stars', ...rows].join('\n') + '\n');
}

/** The error is a TaskDataError at exactly file:line:column, with a message matching `what`. */
function throwsAt(fn: () => unknown, where: string, what: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TaskDataError, `expected a TaskDataError, got ${e}`);
    assert.equal(`${e.file}:${e.line}:${e.column}`, where);
    assert.match(e.message, what);
    assert.ok(e.message.startsWith(`${where}: `));
    return true;
  });
}

test('a good CSV: columns by name, a seeded stratified 70/10/20 split, labels from train', () => {
  const path = csv('good.csv', ['good', 'bad'], 50);
  const d = loadExperimentData({ data: path, textColumn: 'review', labelColumn: 'stars' });
  assert.equal(d.name, 'good.csv');
  assert.equal(d.kind, 'classification');
  assert.deepEqual(d.labels.labels, ['bad', 'good']);
  assert.deepEqual([d.train.length, d.val.length, d.test.length], [70, 10, 20]);
  for (const split of [d.train, d.val, d.test]) assert.equal(split.filter((x) => x.label === 'good').length * 2, split.length, 'stratified: both classes alike');
  assert.equal(new Set([...d.train, ...d.val, ...d.test].map((x) => x.text)).size, 100, 'disjoint and complete');
  assert.equal(d.train[0]!.text, 'good text number 0, with a comma');
  assert.match(d.source, /good\.csv \(100 rows\); 10% validation and 20% test cut from it by a stratified split with seed 0/);
  // Same seed, same split; another seed, another split.
  assert.deepEqual(loadExperimentData({ data: path, textColumn: 'review', labelColumn: 'stars' }).test.map((x) => x.text), d.test.map((x) => x.text));
  assert.notDeepEqual(loadExperimentData({ data: path, textColumn: 'review', labelColumn: 'stars', splitSeed: 1 }).test.map((x) => x.text), d.test.map((x) => x.text));
  checkBudgets([16, 64], d.train, 'good.csv');
});

test('JSONL and TSV, with given validation and test files (only the missing split is cut from --data)', () => {
  const rows = (label: string, n: number, tag: string) => Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${tag} ${label} ${i}`, label }));
  const train = file('train.jsonl', [...rows('a', 20, 'tr'), ...rows('b', 20, 'tr'), ...rows('c', 20, 'tr')].join('\n') + '\n');
  const val = file('val.tsv', 'text\tlabel\nfirst\ta\nsecond\tc\n');
  const test = file('test.jsonl', [...rows('b', 3, 'te'), ...rows('c', 2, 'te')].join('\n'));
  const d = loadExperimentData({ data: train, valData: val, testData: test });
  assert.deepEqual(d.labels.labels, ['a', 'b', 'c']);
  assert.deepEqual([d.train.length, d.val.length, d.test.length], [60, 2, 5]);
  const v = loadExperimentData({ data: train, valData: val });
  assert.deepEqual([v.train.length, v.val.length, v.test.length], [48, 2, 12]);
  assert.match(v.source, /validation .*val\.tsv; 20% test cut from it/);
});

test('a built-in task: its canonical split; --task and --data are exclusive', () => {
  const d = loadExperimentData({ task: 'sentiment' });
  assert.equal(d.name, 'sentiment');
  assert.deepEqual(d.labels.labels, ['negative', 'positive']);
  assert.deepEqual([d.train.length, d.val.length, d.test.length], [2100, 300, 600]);
  assert.throws(() => loadExperimentData({ task: 'sentiment', data: 'x.csv' }), /exclusive/);
  assert.throws(() => loadExperimentData({}), /--task NAME .* or --data FILE is required/);
  assert.throws(() => loadExperimentData({ data: join(dir, 'nope.csv') }), /--data: .*nope\.csv does not exist/);
  // Built-in examples carry no file position: the budget error names the task.
  assert.throws(() => checkBudgets([16, 4096], d.train, 'sentiment'), /^RangeError: sentiment: 4096 labels requested .* train split has only 2100 examples/);
});

test('missing column: file, the header line and column', () => {
  const path = csv('cols.csv', ['good', 'bad'], 5);
  // The header "review,other,stars" ends at column 19.
  throwsAt(() => loadExperimentData({ data: path, textColumn: 'text', labelColumn: 'stars' }), 'cols.csv:1:19', /no text column "text" in the header \(columns: "review", "other", "stars"\)/);
  throwsAt(() => loadExperimentData({ data: path, textColumn: 'review' }), 'cols.csv:1:19', /no label column "label"/);
  const j = file('cols.jsonl', '{"text": "fine", "label": "a"}\n{"text": "no label here"}\n');
  throwsAt(() => loadExperimentData({ data: j }), 'cols.jsonl:2:26', /no label column "label" \(keys: "text"\)/);
});

test('one class only: the first row\'s label cell', () => {
  const path = file('one.csv', 'text,label\nfine,yes\n"also fine",yes\nok,yes\n');
  throwsAt(() => loadExperimentData({ data: path }), 'one.csv:2:6', /only one class \("yes"\) in column "label" of all 3 rows; a classifier needs examples of at least two classes/);
});

test('empty text and a validation label never seen in train', () => {
  const empty = file('empty.csv', 'text,label\nfine,a\n  ,b\n');
  throwsAt(() => loadExperimentData({ data: empty }), 'empty.csv:3:1', /empty text in column "text"/);
  const train = csv('tr.csv', ['good', 'bad'], 5);
  const val = file('unknown.csv', 'review,other,stars\nfine,x,good\nhm,x,meh\n');
  throwsAt(() => loadExperimentData({ data: train, valData: val, textColumn: 'review', labelColumn: 'stars' }), 'unknown.csv:3:6', /unknown label "meh" \(the model knows: bad, good\)/);
});

test('a budget larger than the train split, or smaller than the number of classes: the last train row', () => {
  const path = csv('small.csv', ['good', 'bad', 'ugly'], 10);
  const d = loadExperimentData({ data: path, textColumn: 'review', labelColumn: 'stars' });
  assert.equal(d.train.length, 21);
  // The last of the train split's rows in the file (31 lines with the header; label in column 36).
  const lastLine = Math.max(...d.train.map((x) => x.where!.line));
  throwsAt(() => checkBudgets([16, 64], d.train, 'small.csv'), `small.csv:${lastLine}:1`, /64 labels requested \(--labels 16,64\) but the train split has only 21 examples \(the data ends here; 10% validation and 20% test are held out/);
  throwsAt(() => checkBudgets([2, 16], d.train, 'small.csv'), `small.csv:${lastLine}:1`, /a budget of 2 labels is smaller than the 3 classes/);
  assert.throws(() => checkBudgets([0], d.train, 'small.csv'), /--labels must be positive integers/);
  checkBudgets([3, 21], d.train, 'small.csv');
});
