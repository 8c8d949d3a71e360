/**
 * How the label-efficiency experiment picks the method a budget reports: the Brier score on the
 * selection set (fewlabel.ts brierScore, recorded by methodScore) and chooseMethod (experiment-summary.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LabelMap } from '../../src/models/labels.ts';
import { brierScore, methodScore } from '../../src/tasks/fewlabel.ts';
import { chooseMethod, type MethodPoint } from '../../src/tasks/experiment-summary.ts';

test('Brier score by hand: two rows, three classes', () => {
  // Row 0 (y = 0): (0.7 − 1)² + 0.2² + 0.1² = 0.14; row 1 (y = 2): 0.5² + 0.5² + (0 − 1)² = 1.5.
  const p = Float64Array.from([0.7, 0.2, 0.1, 0.5, 0.5, 0]);
  assert.ok(Math.abs(brierScore(p, Int32Array.from([0, 2]), 3) - (0.14 + 1.5) / 2) < 1e-12);
  // Uniform binary guesses cost 0.5 whatever the labels; a sure wrong answer costs 2, a sure right one 0.
  assert.ok(Math.abs(brierScore(new Float64Array(8).fill(0.5), Int32Array.from([0, 1, 1, 0]), 2) - 0.5) < 1e-12);
  assert.equal(brierScore(Float64Array.from([0, 1, 1, 0]), Int32Array.from([0, 0]), 2), 1);
});

test('Brier score separates methods with the same selection accuracy', () => {
  // Both right on the same 3 of 4 selection rows; one wins by margins, the other scrapes by and is sure when wrong.
  const labels = new LabelMap(['neg', 'pos']);
  const selection = ['neg', 'neg', 'pos', 'pos'].map((label, i) => ({ text: `t${i}`, label }));
  const test_ = selection;
  const good = Float64Array.from([0.9, 0.1, 0.8, 0.2, 0.15, 0.85, 0.55, 0.45]);
  const poor = Float64Array.from([0.55, 0.45, 0.52, 0.48, 0.45, 0.55, 0.99, 0.01]);
  const [a, b] = [methodScore(labels, selection, test_, good, good), methodScore(labels, selection, test_, poor, poor)];
  assert.equal(a.selection, 0.75);
  assert.equal(b.selection, 0.75);
  assert.ok(a.selectionBrier! < b.selectionBrier! - 0.3, `${a.selectionBrier} vs ${b.selectionBrier}`);
});

const point = (method: string, selection: number, selectionBrier?: number): MethodPoint => ({ labels: 16, mean: 0.6, std: 0, n: 3, method, selection, ...(selectionBrier !== undefined ? { selectionBrier } : {}) });

test('chooseMethod: the lowest selection Brier score, even against a higher selection accuracy', () => {
  assert.equal(chooseMethod([point('prompt', 0.583, 0.49), point('anchor', 0.575, 0.46), point('lpft', 0.55, 0.48)])!.method, 'anchor');
});

test('chooseMethod: by accuracy (first of equals) when a candidate has no Brier score', () => {
  assert.equal(chooseMethod([point('prompt', 0.603, 0.49), point('anchor', 0.603), point('lpft', 0.55, 0.3)])!.method, 'prompt');
  assert.equal(chooseMethod([]), null);
});
