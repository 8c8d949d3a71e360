/**
 * The experiment's ensemble of few-label methods (fewlabel.ts ensembleScore): the mean of the members'
 * class probabilities, argmax per example, scored like any method.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LabelMap } from '../../src/models/labels.ts';
import { argmaxProbabilities, ensembleScore, methodScore } from '../../src/tasks/fewlabel.ts';

const labels = new LabelMap(['a', 'b', 'c']);
const ex = (label: string, i: number) => ({ text: `text ${i}`, label });
const selection = [ex('a', 0), ex('b', 1)];
const test_ = [ex('a', 2), ex('b', 3), ex('c', 4), ex('c', 5)];

test('soft voting: two members right on different halves, the mean of their probabilities right on all', () => {
  // Member 1 is sure and right on rows 0–1, unsure and wrong on rows 2–3; member 2 the other way round.
  const p1 = Float64Array.from([0.9, 0.05, 0.05, 0.05, 0.9, 0.05, 0.4, 0.35, 0.25, 0.3, 0.4, 0.3]);
  const p2 = Float64Array.from([0.3, 0.4, 0.3, 0.4, 0.35, 0.25, 0.05, 0.05, 0.9, 0.05, 0.05, 0.9]);
  const sel = Float64Array.from([0.8, 0.1, 0.1, 0.1, 0.8, 0.1]);
  const m1 = methodScore(labels, selection, test_, sel, p1);
  const m2 = methodScore(labels, selection, test_, sel, p2);
  assert.deepEqual([...argmaxProbabilities(p1, 3)], [0, 1, 0, 1]);
  assert.equal(m1.accuracy, 0.5);
  assert.equal(m2.accuracy, 0.5);
  const e = ensembleScore(labels, selection, test_, [m1, m2, { selection: 1, accuracy: 1, macroF1: 1 }])!;
  assert.equal(e.accuracy, 1);
  assert.equal(e.selection, 1);
  assert.equal(e.macroF1, 1);
  assert.ok(Math.abs(e.probabilities!.test[8]! - (0.25 + 0.9) / 2) < 1e-12);
  assert.match(e.detail!, /2 methods/);
});

test('an ensemble needs two members with probabilities', () => {
  const p = Float64Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 0.5 : 0.25));
  assert.equal(ensembleScore(labels, selection, test_, [methodScore(labels, selection, test_, p.subarray(0, 6), p), { selection: 0, accuracy: 0, macroF1: 0 }]), null);
});
