/**
 * TF-IDF against numbers worked out by hand (scikit-learn's TfidfVectorizer(ngram_range=(1, 2),
 * sublinear_tf=True) conventions), and the baseline end to end on a tiny task.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfidfVectorizer, analyze, exampleText, tfidfBaseline } from '../../src/tasks/tfidf.ts';
import type { TextExample } from '../../src/tasks/data.ts';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} ≠ ${b}`);

test('analyze: lowercase, runs of ≥ 2 Unicode word characters, unigrams then bigrams joined by a space', () => {
  assert.deepEqual(analyze('The cat, the DOG!'), ['the', 'cat', 'the', 'dog', 'the cat', 'cat the', 'the dog']);
  // One-character tokens ("a", "x", "I") are not tokens; a bigram joins neighbouring tokens only.
  assert.deepEqual(analyze('a dog I x saw'), ['dog', 'saw', 'dog saw']);
  // Unicode letters and digits and the underscore are word characters; apostrophes and dashes split.
  assert.deepEqual(analyze('Ünïcode café_2 don\'t well-known 42', { ngramRange: [1, 1] }), ['ünïcode', 'café_2', 'don', 'well', 'known', '42']);
  assert.deepEqual(analyze('Big Cat', { lowercase: false, ngramRange: [2, 2] }), ['Big Cat']);
});

test('tf-idf of three tiny documents, by hand', () => {
  // d1 "The cat sat"        the cat sat | the·cat cat·sat
  // d2 "the cat, the DOG!"  the×2 cat dog | the·cat cat·the the·dog
  // d3 "a dog"              dog ("a" is one character: no token)
  const v = new TfidfVectorizer();
  const X = v.fitTransform(['The cat sat', 'the cat, the DOG!', 'a dog']);
  assert.deepEqual([...v.vocabulary.keys()], ['cat', 'cat sat', 'cat the', 'dog', 'sat', 'the', 'the cat', 'the dog']);
  // n = 3 documents; idf = ln((1 + n)/(1 + df)) + 1.
  const idf2 = Math.log(4 / 3) + 1; // df = 2: cat, dog, the, "the cat"
  const idf1 = Math.log(4 / 2) + 1; // df = 1: "cat sat", "cat the", sat, "the dog"
  const expectedIdf = [idf2, idf1, idf1, idf2, idf1, idf2, idf2, idf1];
  expectedIdf.forEach((x, j) => close(v.idf[j]!, x, `idf[${j}]`));
  const row = (r: number) => {
    const out = new Map<number, number>();
    for (let p = X.indptr[r]!; p < X.indptr[r + 1]!; p++) out.set(X.indices[p]!, X.values[p]!);
    return out;
  };
  // d1: every tf is 1, so 1 + ln 1 = 1; norm over idf2 (cat, the, the cat) and idf1 (cat sat, sat).
  const n1 = Math.sqrt(3 * idf2 ** 2 + 2 * idf1 ** 2);
  const d1 = row(0);
  assert.deepEqual([...d1.keys()], [0, 1, 4, 5, 6]);
  close(d1.get(0)!, idf2 / n1, 'd1 cat');
  close(d1.get(1)!, idf1 / n1, 'd1 "cat sat"');
  close(d1.get(4)!, idf1 / n1, 'd1 sat');
  close(d1.get(5)!, idf2 / n1, 'd1 the');
  close(d1.get(6)!, idf2 / n1, 'd1 "the cat"');
  // d2: "the" twice → sublinear tf 1 + ln 2.
  const theW = (1 + Math.log(2)) * idf2;
  const n2 = Math.sqrt(theW ** 2 + 3 * idf2 ** 2 + 2 * idf1 ** 2);
  const d2 = row(1);
  assert.deepEqual([...d2.keys()], [0, 2, 3, 5, 6, 7]);
  close(d2.get(5)!, theW / n2, 'd2 the');
  close(d2.get(0)!, idf2 / n2, 'd2 cat');
  close(d2.get(3)!, idf2 / n2, 'd2 dog');
  close(d2.get(2)!, idf1 / n2, 'd2 "cat the"');
  close(d2.get(7)!, idf1 / n2, 'd2 "the dog"');
  // scikit-learn prints these rows as 0.393511 (cat) … 0.51742 (sat) and 0.554473 (the) … 0.430598 (the dog).
  assert.ok(Math.abs(d1.get(0)! - 0.393511) < 1e-6 && Math.abs(d1.get(4)! - 0.51742) < 1e-6);
  assert.ok(Math.abs(d2.get(5)! - 0.554473) < 1e-6 && Math.abs(d2.get(7)! - 0.430598) < 1e-6);
  // d3: a single term normalises to 1.
  assert.deepEqual([...row(2)], [[3, 1]]);
  // New text: only the fitted vocabulary counts ("bird", "cat bird" unknown); nothing known → an empty row.
  const T = v.transform(['Cat bird cat', 'zebra']);
  assert.deepEqual([...T.indptr], [0, 1, 1]);
  assert.equal(T.indices[0], 0);
  close(T.values[0]!, 1, '"Cat bird cat" → cat only');
  // Plain tf (sublinear off): d2's "the" weighs 2·idf.
  const plain = new TfidfVectorizer({ sublinearTf: false }).fitTransform(['The cat sat', 'the cat, the DOG!', 'a dog']);
  const n2p = Math.sqrt((2 * idf2) ** 2 + 3 * idf2 ** 2 + 2 * idf1 ** 2);
  close(plain.values[plain.indptr[1]! + 3]!, (2 * idf2) / n2p, 'plain-tf d2 the');
});

test('TfidfVectorizer: an empty vocabulary and transform before fit are errors', () => {
  assert.throws(() => new TfidfVectorizer().fit(['a b c', '! ?']), /empty vocabulary/);
  assert.throws(() => new TfidfVectorizer().transform(['x']), /call fit first/);
});

test('tfidfBaseline: learns a word-cued task, picks C on validation (first best), scores test', () => {
  const pos = ['great film', 'loved it, great', 'wonderful acting', 'great and wonderful', 'loved the story', 'wonderful, loved'];
  const neg = ['awful film', 'hated it, awful', 'boring acting', 'awful and boring', 'hated the story', 'boring, hated'];
  const mk = (texts: string[], label: string): TextExample[] => texts.map((text) => ({ text, label }));
  const train = [...mk(pos.slice(0, 4), 'positive'), ...mk(neg.slice(0, 4), 'negative')];
  const val = [...mk(pos.slice(4), 'positive'), ...mk(neg.slice(4), 'negative')];
  const test = mk(['a great story', 'wonderful', 'boring film', 'awful story', 'hated this'], 'x').map((x, i) => ({ ...x, label: i < 2 ? 'positive' : 'negative' }));
  const r = tfidfBaseline(train, val, test);
  assert.deepEqual(r.predictions, ['positive', 'positive', 'negative', 'negative', 'negative']);
  assert.equal(r.accuracy, 1);
  assert.equal(r.macroF1, 1);
  assert.deepEqual(r.scores.map((s) => s.C), [0.1, 1, 10, 100]);
  // Every C separates validation, so the first of the grid wins, as Python's max does.
  assert.equal(r.valAccuracy, 1);
  assert.equal(r.C, 0.1);
  // No validation: ref_tfidf.py's C = 10.
  const noVal = tfidfBaseline(train, [], test);
  assert.equal(noVal.C, 10);
  assert.equal(noVal.valAccuracy, null);
  // A wrong prediction and a test label never seen in train both count as errors.
  const odd = tfidfBaseline(train, val, [{ text: 'great', label: 'negative' }, { text: 'boring', label: 'neutral' }, { text: 'awful', label: 'negative' }]);
  close(odd.accuracy, 1 / 3, 'accuracy with an unseen label');
  assert.deepEqual(odd.predictions, ['positive', 'negative', 'negative']);
  // Labels {negative, neutral, positive}: negative P = R = 1/2 → F1 1/2; neutral and positive 0 → macro 1/6.
  close(odd.macroF1, 1 / 6, 'macro-F1 over the union of true and predicted labels');
  assert.throws(() => tfidfBaseline(mk(pos, 'positive'), val, test), /1 class \("positive"\)/);
});

test('a text pair is joined to its first text by a newline', () => {
  assert.equal(exampleText({ text: 'premise', textPair: 'hypothesis' }), 'premise\nhypothesis');
  assert.equal(exampleText({ text: 'alone' }), 'alone');
  assert.deepEqual(analyze(exampleText({ text: 'Good one', textPair: 'Really' }), { ngramRange: [2, 2] }), ['good one', 'one really']);
});
