/**
 * Data formats `primer finetune` accepts, as users write them: CoNLL tokens with spaces, CoNLL-U,
 * JSONL keys that also occur as values, CSV with a BOM, and SQuAD 2.0 unanswerable questions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTokenTagged, parseJsonlExamples, parseDelimitedExamples, TaskDataError, type QAExample } from '../../src/tasks/data.ts';
import { encodeWords, alignLabels } from '../../src/tasks/encode.ts';
import { prepareQAFeatures, predictAnswers } from '../../src/tasks/qa.ts';
import { squadMetrics } from '../../src/tasks/metrics.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-formats-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'new', 'york', 'is', 'big', 'un', '##bel', 'where', '?', 'paris', 'the', 'capital', '.'];
const tokenizer = new WordPieceTokenizer({ vocab: VOCAB });

test('a tab-separated CoNLL token with a space ("New York") is one word: labelled on its first sub-token', () => {
  const [ex] = readTokenTagged(file('ner.conll', 'New York\tB-LOC\nis\tO\nbig\tO\n'));
  assert.deepEqual(ex!.tokens, ['New York', 'is', 'big']);
  const { encoding, wordIds } = encodeWords(tokenizer, ex!.tokens);
  assert.deepEqual(encoding.ids.map((id) => VOCAB[id]), ['[CLS]', 'new', 'york', 'is', 'big', '[SEP]']);
  assert.deepEqual(wordIds, [null, 0, 0, 1, 2, null]);
  assert.deepEqual([...alignLabels(wordIds, [7, 8, 9])], [-100, 7, -100, 8, 9, -100]);
  assert.throws(() => encodeWords(tokenizer, ['big', ' ']), /word 1 \(" "\) is empty or only whitespace/);
});

test('CoNLL-U: FORM and UPOS, comments, multiword ranges and empty nodes skipped', () => {
  const conllu = [
    '# sent_id = 1', '# text = New York isn\'t big', '1\tNew York\tNew York\tPROPN\tNNP\t_\t3\tnsubj\t_\t_',
    '2-3\tisn\'t\t_\t_\t_\t_\t_\t_\t_\t_', '2\tis\tbe\tAUX\tVBZ\t_\t0\troot\t_\t_', '3\tn\'t\tnot\tPART\tRB\t_\t2\tadvmod\t_\t_',
    '3.1\tbig\tbig\tADJ\tJJ\t_\t_\t_\t2:xcomp\t_', '', '# sent_id = 2', '1\tbig\tbig\tADJ\tJJ\t_\t0\troot\t_\tSpaceAfter=No', '',
  ].join('\n');
  const ex = readTokenTagged(file('ud.conllu', conllu));
  assert.deepEqual(ex.map((e) => [e.tokens, e.tags]), [[['New York', 'is', 'n\'t'], ['PROPN', 'AUX', 'PART']], [['big'], ['ADJ']]]);
  assert.deepEqual(ex[0]!.where![1], { file: 'ud.conllu', line: 5, column: 9 });
  // "2\tis\tbe\tAUX": UPOS starts at column 9. XPOS instead, by field number:
  assert.deepEqual(readTokenTagged(file('ud2.conllu', conllu), { tagField: 4 })[0]!.tags, ['NNP', 'VBZ', 'RB']);
  assert.throws(() => readTokenTagged(file('short.conllu', '1\tbig\tbig\n')), (e: unknown) => e instanceof TaskDataError && /short\.conllu:1:10: expected the tab-separated CoNLL-U fields/.test(e.message));
});

test('JSONL: an error about a key points at the key, not at an equal string value before it', () => {
  assert.throws(() => parseJsonlExamples('{"text": "label", "label": null}\n', 'k.jsonl'), (e: unknown) => {
    assert.ok(e instanceof TaskDataError);
    assert.equal(e.message, 'k.jsonl:1:19: "label" must be a string, number or boolean, got null');
    return true;
  });
  const [ex] = parseJsonlExamples('{"text": "label", "label": "x"}\n', 'k.jsonl');
  assert.deepEqual(ex!.where, { file: 'k.jsonl', line: 1, column: 19 });
});

test('CSV with a UTF-8 BOM: columns on the first line are counted as an editor shows them', () => {
  assert.throws(() => parseDelimitedExamples('\uFEFFtext,label\nfoo,pos\n', 'bom.csv', ',', { textColumn: 'review' }), (e: unknown) => {
    assert.ok(e instanceof TaskDataError);
    assert.equal(e.message, 'bom.csv:1:11: no text column "review" in the header (columns: "text", "label")');
    return true;
  });
});

test('SQuAD 2.0: "no answer" wins when token 0 scores above the best span, and is scored right', () => {
  const context = 'Paris is the capital.';
  const examples: QAExample[] = [
    { id: 'a', context, question: 'where?', answers: [{ text: 'Paris', start: 0 }] },
    { id: 'u', context, question: 'where?', answers: [] },
  ];
  const features = prepareQAFeatures(tokenizer, examples, { maxLength: 16, stride: 2 });
  // [CLS] where ? [SEP] paris is the capital . [SEP]: 1 window each, context tokens at 4..8.
  assert.equal(features.length, 2);
  const logits = (cls: number, at: number) => Array.from({ length: 10 }, (_, k) => (k === 0 ? cls : k === at ? 2 : 0));
  // Best span "paris" scores 2 + 2 = 4; "no answer" 1 + 1 = 2 for question a and 3 + 3 = 6 for u.
  const starts = [logits(1, 4), logits(3, 4)];
  const ends = [logits(1, 4), logits(3, 4)];
  const v2 = predictAnswers(examples, features, starts, ends, { nullAnswer: true });
  assert.deepEqual([...v2], [['a', 'Paris'], ['u', '']]);
  assert.deepEqual(squadMetrics(v2, examples), { exactMatch: 1, f1: 1, count: 2 });
  // SQuAD 1.1 (no unanswerable questions): always a span, as before.
  const v1 = predictAnswers(examples, features, starts, ends);
  assert.deepEqual([...v1], [['a', 'Paris'], ['u', 'Paris']]);
  assert.deepEqual(squadMetrics(v1, examples), { exactMatch: 0.5, f1: 0.5, count: 2 });
});

test('a CSV header naming the text or label column twice is refused at the second one', () => {
  assert.throws(() => parseDelimitedExamples('text,label,text\nhello,pos,other\n', 'dup.csv', ','), {
    message: 'dup.csv:1:12: the header names the text column "text" twice (fields 1 and 3); rename one',
  });
  // Another repeated column that is not used stays allowed.
  assert.equal(parseDelimitedExamples('text,note,label,note\nhello,a,pos,b\n', 'ok.csv', ',')[0]!.text, 'hello');
});
