/** Readers name file, line and column for every bad input; subsampling and splits are seeded and sound. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readTextExamples, readTokenTagged, readSquad, parseSquad, TaskDataError, LabelMap, stratifiedSample, splitDataset,
} from '../../src/tasks/data.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-tasks-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

/** Asserts a TaskDataError at file:line:column whose message matches. */
function throwsAt(fn: () => unknown, name: string, line: number, column: number, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TaskDataError, `expected TaskDataError, got ${String(e)}`);
    assert.equal(e.file, name);
    assert.equal(e.line, line, `line in: ${e.message}`);
    assert.equal(e.column, column, `column in: ${e.message}`);
    assert.match(e.message, new RegExp(`^${name.replace('.', '\\.')}:${line}:${column}: `));
    assert.match(e.message, message);
    return true;
  });
}

test('CSV: RFC 4180 quoting (delimiters, newlines and "" inside quotes), CRLF, pairs and label columns', () => {
  const p = file('ok.csv', 'premise,hypothesis,gold\r\n"A man, tall",He is tall,entail\r\n"Line one\nline two","Say ""hi""",neutral\r\nx,y,1\r\n');
  const ex = readTextExamples(p, { textColumn: 'premise', textPairColumn: 'hypothesis', labelColumn: 'gold' });
  assert.deepEqual(ex.map((e) => [e.text, e.textPair, e.label]), [
    ['A man, tall', 'He is tall', 'entail'], ['Line one\nline two', 'Say "hi"', 'neutral'], ['x', 'y', '1'],
  ]);
  // The third row starts on line 5 because the second spans lines 3-4; its label is at column 5.
  assert.deepEqual(ex[2]!.where, { file: 'ok.csv', line: 5, column: 5 });
  const tsv = readTextExamples(file('ok.tsv', 'label\ttext\npos\tgood, very good\n'));
  assert.deepEqual(tsv.map((e) => [e.text, e.label]), [['good, very good', 'pos']]);
});

test('CSV/TSV errors: missing label column, ragged rows, empty texts, bad quotes', () => {
  throwsAt(() => readTextExamples(file('nolabel.csv', 'text,sentiment\nhello,pos\n')), 'nolabel.csv', 1, 15, /no label column "label" in the header \(columns: "text", "sentiment"\)/);
  throwsAt(() => readTextExamples(file('long.csv', 'text,label\n"a,b",pos\nhello,neg,extra\n')), 'long.csv', 3, 11, /ragged row: 3 fields but the header has 2 \(too many/);
  throwsAt(() => readTextExamples(file('short.csv', 'text,label\nfine,pos\n"multi\nline"\n')), 'short.csv', 4, 6, /ragged row: 1 fields but the header has 2 \(too few/);
  throwsAt(() => readTextExamples(file('short.tsv', 'text\tlabel\nonly text\n')), 'short.tsv', 2, 10, /ragged row/);
  throwsAt(() => readTextExamples(file('empty.csv', 'label,text\npos,ok\nneg,   \n')), 'empty.csv', 3, 5, /empty text in column "text"/);
  throwsAt(() => readTextExamples(file('emptypair.csv', 'text,pair,label\nok,"",pos\n'), { textPairColumn: 'pair' }), 'emptypair.csv', 2, 4, /empty text in column "pair"/);
  throwsAt(() => readTextExamples(file('nolab.csv', 'text,label\nok,\n')), 'nolab.csv', 2, 4, /empty label/);
  throwsAt(() => readTextExamples(file('quote.csv', 'text,label\n"open,pos\n')), 'quote.csv', 2, 1, /unterminated quoted field/);
  throwsAt(() => readTextExamples(file('quote2.csv', 'text,label\n"a"b,pos\n')), 'quote2.csv', 2, 4, /after a closing quote/);
  // Unlabelled data (inference) needs no label column.
  assert.equal(readTextExamples(file('unlab.csv', 'text\nhi\n'), { labelColumn: null })[0]!.label, undefined);
});

test('unknown labels at test time name the file, line and column of the label', () => {
  const train = readTextExamples(file('train.csv', 'text,label\ngood,pos\nbad,neg\n'));
  const labels = LabelMap.fromLabels(train.map((e) => e.label));
  assert.deepEqual(labels.labels, ['neg', 'pos']);
  assert.deepEqual([...labels.encode(train)], [1, 0]);
  const testSet = readTextExamples(file('test.csv', 'text,label\nfine,pos\n"so, so",neutral\n'));
  throwsAt(() => labels.encode(testSet), 'test.csv', 3, 10, /unknown label "neutral" \(the model knows: neg, pos\)/);
  const jsonl = readTextExamples(file('test.jsonl', '{"text": "ok", "label": "pos"}\n{"label": "meh", "text": "hmm"}\n'));
  throwsAt(() => labels.encode(jsonl), 'test.jsonl', 2, 2, /unknown label "meh"/);
  assert.deepEqual(LabelMap.fromConfig(labels.toConfig()).labels, ['neg', 'pos']);
  assert.deepEqual(labels.toConfig(), { id2label: { 0: 'neg', 1: 'pos' }, label2id: { neg: 0, pos: 1 } });
  assert.deepEqual(LabelMap.fromLabels(['10', '9', '2']).labels, ['2', '9', '10']); // numeric labels sort as numbers
});

test('JSONL: configurable keys, and errors with line and column', () => {
  const ok = readTextExamples(file('ok.jsonl', '{"q": "is it?", "a": "yes", "y": 1}\n\n{"q": "no?", "a": "no", "y": 0}\n'), { textColumn: 'q', textPairColumn: 'a', labelColumn: 'y' });
  assert.deepEqual(ok.map((e) => [e.text, e.textPair, e.label]), [['is it?', 'yes', '1'], ['no?', 'no', '0']]);
  throwsAt(() => readTextExamples(file('nol.jsonl', '{"text": "a", "label": "x"}\n{"text": "b"}\n')), 'nol.jsonl', 2, 14, /no label column "label" \(keys: "text"\)/);
  throwsAt(() => readTextExamples(file('emp.jsonl', '{"label": "x", "text": " "}\n')), 'emp.jsonl', 1, 16, /empty text in column "text"/);
  throwsAt(() => readTextExamples(file('bad.jsonl', '{"text": "a", "label": "x"}\n{"text": "b" "label": 1}\n')), 'bad.jsonl', 2, 14, /invalid JSON/);
});

test('CoNLL-style token/tag files: sentences, -DOCSTART-, tabs or spaces, errors and unknown tags', () => {
  const p = file('tags.conll', '-DOCSTART- O\n\nThe\tDET\nNew York\tNOUN\n\ncats NNS I-NP NOUN\nrun   VERB\n');
  const ex = readTokenTagged(p);
  assert.deepEqual(ex.map((e) => [e.tokens, e.tags]), [[['The', 'New York'], ['DET', 'NOUN']], [['cats', 'run'], ['NOUN', 'VERB']]]);
  const tags = new LabelMap(['DET', 'NOUN']);
  assert.deepEqual(tags.encodeTags(ex[0]!), [0, 1]);
  throwsAt(() => tags.encodeTags(ex[1]!), 'tags.conll', 7, 7, /unknown label "VERB"/);
  throwsAt(() => readTokenTagged(file('notag.conll', 'a X\nb\n')), 'notag.conll', 2, 2, /a tag is missing/);
});

test('SQuAD layout: answers checked against the context, errors name the JSON path', () => {
  const squad = { data: [{ title: 'T', paragraphs: [{ context: 'Paris is the capital of France.', qas: [{ id: 'q1', question: 'Capital?', answers: [{ text: 'Paris', answer_start: 0 }] }] }] }] };
  const p = file('squad.json', JSON.stringify(squad));
  assert.deepEqual(readSquad(p), [{ id: 'q1', title: 'T', context: 'Paris is the capital of France.', question: 'Capital?', answers: [{ text: 'Paris', start: 0 }] }]);
  squad.data[0]!.paragraphs[0]!.qas[0]!.answers[0]!.answer_start = 3;
  assert.throws(() => parseSquad(squad, 'squad.json'), /squad\.json:1:1: data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]: context at answer_start 3 reads "is is"/);
  throwsAt(() => readSquad(file('broken.json', '{"data": [\n  {"title": }]}')), 'broken.json', 2, 13, /invalid JSON/);
});

test('stratified subsampling keeps class proportions, is seeded, and smaller samples nest in larger ones', () => {
  const items = Array.from({ length: 1000 }, (_, i) => ({ i, label: i < 700 ? 'a' : i < 900 ? 'b' : 'c' }));
  const count = (xs: typeof items) => ['a', 'b', 'c'].map((l) => xs.filter((x) => x.label === l).length);
  const s100 = stratifiedSample(items, 100, (x) => x.label, 7);
  assert.deepEqual(count(s100), [70, 20, 10]);
  assert.deepEqual(count(stratifiedSample(items, 16, (x) => x.label, 7)), [11, 3, 2]); // 11.2, 3.2, 1.6 → largest remainder
  assert.deepEqual(stratifiedSample(items, 100, (x) => x.label, 7), s100, 'same seed, same sample');
  assert.notDeepEqual(stratifiedSample(items, 100, (x) => x.label, 8).map((x) => x.i), s100.map((x) => x.i));
  assert.equal(new Set(s100.map((x) => x.i)).size, 100, 'no repeats');
  const s400 = new Set(stratifiedSample(items, 400, (x) => x.label, 7).map((x) => x.i));
  assert.ok(s100.every((x) => s400.has(x.i)), 'the 100-label sample is inside the 400-label one');
  // Every class gets at least one example once n ≥ #classes.
  const rare = Array.from({ length: 100 }, (_, i) => ({ i, label: i === 0 ? 'b' : i === 1 ? 'c' : 'a' }));
  assert.deepEqual(count(stratifiedSample(rare, 3, (x) => x.label, 1) as typeof items), [1, 1, 1]);
});

test('splits are disjoint, cover everything, are deterministic for a seed, and keep groups together', () => {
  const items = Array.from({ length: 500 }, (_, i) => ({ i, doc: `d${Math.floor(i / 10)}`, label: i % 5 === 0 ? 'x' : 'y' }));
  const s = splitDataset(items, { val: 0.1, test: 0.2, seed: 3 });
  const ids = (xs: typeof items) => xs.map((x) => x.i);
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [350, 50, 100]);
  const all = [...ids(s.train), ...ids(s.val), ...ids(s.test)];
  assert.equal(new Set(all).size, 500, 'disjoint and complete');
  assert.deepEqual(splitDataset(items, { val: 0.1, test: 0.2, seed: 3 }), s, 'deterministic');
  assert.notDeepEqual(ids(splitDataset(items, { val: 0.1, test: 0.2, seed: 4 }).test), ids(s.test));
  const g = splitDataset(items, { val: 0.1, test: 0.2, seed: 3, groupOf: (x) => x.doc });
  const docsOf = (xs: typeof items) => new Set(xs.map((x) => x.doc));
  for (const d of docsOf(g.test)) assert.ok(!docsOf(g.train).has(d) && !docsOf(g.val).has(d), `document ${d} split across sets`);
  assert.deepEqual([g.train.length, g.val.length, g.test.length], [350, 50, 100]);
  const st = splitDataset(items, { val: 0.1, test: 0.2, seed: 3, stratifyBy: (x) => x.label });
  assert.equal(st.test.filter((x) => x.label === 'x').length, 20); // 20% of the 100 x's
  assert.throws(() => splitDataset(items, { val: 0.5, test: 0.5 }), /val \+ test < 1/);
});
