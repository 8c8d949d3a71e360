/** Metrics against values worked out by hand (and sklearn / the official SQuAD script conventions). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classificationReport, tokenClassificationReport, normalizeAnswer, exactMatch, f1Score, squadMetrics,
} from '../../src/tasks/metrics.ts';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} ≠ ${b}`);

test('classification report: accuracy, per-class P/R/F1, macro-F1 and confusion matrix', () => {
  // true  a a a b b c;  pred a a b b b b.  c is never predicted.
  const r = classificationReport([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 1], ['a', 'b', 'c']);
  close(r.accuracy, 4 / 6, 'accuracy');
  assert.deepEqual(r.confusion, [[2, 1, 0], [0, 2, 0], [0, 1, 0]]);
  const [a, b, c] = r.perClass as [typeof r.perClass[0], typeof r.perClass[0], typeof r.perClass[0]];
  close(a.precision, 1, 'P(a)'); close(a.recall, 2 / 3, 'R(a)'); close(a.f1, 0.8, 'F1(a)'); assert.equal(a.support, 3);
  close(b.precision, 0.5, 'P(b)'); close(b.recall, 1, 'R(b)'); close(b.f1, 2 / 3, 'F1(b)'); assert.equal(b.support, 2);
  // Never predicted: precision 0 (zero_division=0), F1 0 — a number, not NaN.
  assert.equal(c.precision, 0); assert.equal(c.recall, 0); assert.equal(c.f1, 0); assert.equal(c.support, 1);
  close(r.macroF1, (0.8 + 2 / 3 + 0) / 3, 'macro-F1');
  close(r.weightedF1, (0.8 * 3 + (2 / 3) * 2) / 6, 'weighted F1');
  assert.equal(r.count, 6);
});

test('a prediction outside the label set (-1: none) is wrong and belongs to no class', () => {
  const r = classificationReport([0, 1, 1], [0, -1, 1], ['x', 'y']);
  close(r.accuracy, 2 / 3, 'accuracy');
  assert.deepEqual(r.confusion, [[1, 0], [0, 1]]);
  close(r.perClass[1]!.recall, 0.5, 'R(y)');
  close(r.perClass[1]!.precision, 1, 'P(y)');
  assert.throws(() => classificationReport([0, 5], [0, 0], ['x', 'y']), /true label 5/);
  assert.throws(() => classificationReport([0], [0, 1], ['x']), /1 true labels but 2 predictions/);
});

test('token report skips -100 and gives token accuracy and per-tag F1', () => {
  const r = tokenClassificationReport([[0, 1, -100], [2, 2]], [[0, 2, 1], [2, 0]], ['DET', 'NOUN', 'VERB']);
  close(r.tokenAccuracy, 2 / 4, 'token accuracy');
  assert.equal(r.count, 4);
  // DET: tp1 pred2 true1 → P .5 R 1; NOUN: tp0 → 0; VERB: tp1 pred2 true2 → P .5 R .5
  close(r.perClass[0]!.f1, 2 / 3, 'F1(DET)');
  assert.equal(r.perClass[1]!.f1, 0);
  close(r.perClass[2]!.f1, 0.5, 'F1(VERB)');
  close(r.macroF1, (2 / 3 + 0 + 0.5) / 3, 'macro-F1');
});

test('SQuAD normalisation, exact match and token F1 follow the official script', () => {
  assert.equal(normalizeAnswer('The  Cat, sat!'), 'cat sat');
  assert.equal(normalizeAnswer('An apple-a-day'), 'appleaday');
  assert.equal(exactMatch('the Cat', 'cat.'), 1);
  assert.equal(exactMatch('cats', 'cat'), 0);
  close(f1Score('a big red dog', 'big dog barked'), 2 / 3, 'F1'); // 2 common of 3 and 3 tokens
  close(f1Score('dog dog', 'dog'), 2 / 3, 'F1 with repeats'); // P 1/2, R 1
  assert.equal(f1Score('', ''), 1);
  assert.equal(f1Score('x', ''), 0);
  const m = squadMetrics(new Map([['q1', 'Denver Broncos'], ['q2', 'in 1990']]), [
    { id: 'q1', answers: [{ text: 'Broncos' }, { text: 'the Denver Broncos' }] },
    { id: 'q2', answers: [{ text: '1989' }] },
    { id: 'q3', answers: [{ text: 'anything' }] }, // unanswered: 0
  ]);
  close(m.exactMatch, 1 / 3, 'EM');
  close(m.f1, 1 / 3, 'F1'); // q1 1, q2 0 (no common token), q3 0
});
