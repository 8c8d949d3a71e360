/**
 * `primer classify` and `primer tag` on input they cannot use: an empty or whitespace-only --text is
 * refused by its position before anything is printed (a byte-level tokenizer would otherwise label
 * "   " as if it were a review, and "" failed deep in batching without naming the input); Chinese is
 * tagged per character; `primer answer` names a window too small for the question, and conflicting flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuestionAnswering, SequenceClassifier, TokenClassifier } from '../../src/models/heads.ts';
import { loadBackbone, saveTaskModelDir } from '../../src/models/model-dir.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { classifyTexts, splitWords, tagTexts } from '../../src/tasks/task-infer.ts';
import { bestSpans } from '../../src/tasks/qa.ts';
import { makeTinyModelDir } from '../adapt/fixtures.ts';
import { primerInProcess as primer } from '../helpers/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-task-infer-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const base = makeTinyModelDir(root);
const tokenizer = loadTokenizer(base);
const clfDir = join(root, 'clf');
saveTaskModelDir(clfDir, new SequenceClassifier(loadBackbone(base), ['neg', 'pos'], { seed: 1 }), tokenizer);
const tagDir = join(root, 'tagger');
saveTaskModelDir(tagDir, new TokenClassifier(loadBackbone(base), ['O', 'X'], { seed: 1 }), tokenizer);

test('classify: an empty or whitespace-only --text is refused by its number, nothing printed, exit 1', async () => {
  let r = await primer(['classify', '--model', clfDir, '--text', '']);
  assert.equal(r.error, 'primer: error: classify: text 1 is empty');
  assert.equal(r.exitCode, 1);
  r = await primer(['classify', '--model', clfDir, '--text', 'the sky is blue', '   ']);
  assert.equal(r.error, 'primer: error: classify: text 2 is empty (only whitespace)');
  assert.deepEqual(r.out, [], 'no text is classified when one is refused');
  assert.equal(r.exitCode, 1);
  r = await primer(['classify', '--model', clfDir, '--text', 'the sky is blue', ' snow ']);
  assert.equal(r.error, null);
  assert.equal(r.out.length, 2);
  assert.match(r.out[1]!, /^(neg|pos)\t\d\.\d{4}\t snow $/);
});

test('tag: an empty or whitespace-only --text is refused by its number too', async () => {
  let r = await primer(['tag', '--model', tagDir, '--text', 'the sky', '']);
  assert.equal(r.error, 'primer: error: tag: text 2 is empty');
  assert.deepEqual(r.out, []);
  assert.equal(r.exitCode, 1);
  r = await primer(['tag', '--model', tagDir, '--text', '\t ']);
  assert.equal(r.error, 'primer: error: tag: text 1 is empty (only whitespace)');
  r = await primer(['tag', '--model', tagDir, '--text', 'the sky']);
  assert.equal(r.error, null);
  assert.match(r.out[0]!, /^the\/(O|X) sky\/(O|X)$/);
});

test('classifyTexts and tagTexts refuse blank texts in the library as well', () => {
  const clf = new SequenceClassifier(loadBackbone(base), ['neg', 'pos'], { seed: 1 });
  assert.throws(() => classifyTexts(clf, tokenizer, ['snow', ' \n']), { name: 'RangeError', message: 'classify: text 2 is empty (only whitespace)' });
  assert.equal(classifyTexts(clf, tokenizer, ['snow'])[0]!.text, 'snow');
  const tagger = new TokenClassifier(loadBackbone(base), ['O', 'X'], { seed: 1 });
  assert.throws(() => tagTexts(tagger, tokenizer, ['']), { name: 'RangeError', message: 'tag: text 1 is empty' });
});

test('tag: Chinese is tagged per character (each Han character a word, as BERT splits it), not one tag per clause', async () => {
  assert.deepEqual(splitWords('今天天气真好，我们去公园吧。'), ['今', '天', '天', '气', '真', '好', '，', '我', '们', '去', '公', '园', '吧', '。']);
  assert.deepEqual(splitWords('我在New York工作'), ['我', '在', 'New', 'York', '工', '作']);
  // Combining marks stay with their letters: Devanagari vowel signs and a decomposed accent.
  assert.deepEqual(splitWords('नमस्ते दुनिया'), ['नमस्ते', 'दुनिया']);
  assert.deepEqual(splitWords('cafe\u0301 au lait'), ['cafe\u0301', 'au', 'lait']);
  const r = await primer(['tag', '--model', tagDir, '--json', '--text', '公园里有花。']);
  assert.equal(r.error, null);
  const tagged = JSON.parse(r.out[0]!) as Array<{ word: string; tag: string | null }>;
  assert.deepEqual(tagged.map((t) => t.word), ['公', '园', '里', '有', '花', '。']);
  assert.ok(tagged.every((t) => t.tag === 'O' || t.tag === 'X'));
});

test('answer: a window too small for the question names the numbers and the way out; --context and --context-file conflict', async () => {
  const qaDir = join(root, 'qa');
  saveTaskModelDir(qaDir, new QuestionAnswering(loadBackbone(base), { seed: 1 }), tokenizer);
  const question = 'What color is the apple?';
  const fixed = tokenizer.encode(question, 'x').sequenceIds.filter((s) => s !== 1).length;
  let r = await primer(['answer', '--model', qaDir, '--question', question, '--context', 'The apple is red.', '--max-length', String(fixed + 2)]);
  assert.equal(r.error, `primer: error: answer: the question and special tokens take ${fixed} of the ${fixed + 2} tokens per window, leaving 2 for the context, `
    + `which must be more than the stride of ${Math.floor((fixed + 2) / 4)} tokens: shorten the question, use longer windows or a smaller stride`);
  assert.equal(r.exitCode, 1);
  r = await primer(['answer', '--model', qaDir, '--question', question, '--context', 'The apple is red.', '--stride', '500']);
  assert.match(r.error!, /leaving \d+ for the context, which must be more than the stride of 500 tokens/);
  const file = join(root, 'context.txt');
  writeFileSync(file, 'The apple is red.\n');
  r = await primer(['answer', '--model', qaDir, '--question', question, '--context', 'The sky is blue.', '--context-file', file]);
  assert.equal(r.error, 'primer: error: give --context or --context-file, not both');
  r = await primer(['answer', '--model', qaDir, '--question', question, '--context-file', join(root, 'missing.txt')]);
  assert.equal(r.error, `primer: error: --context-file ${join(root, 'missing.txt')} is not a readable file`);
  r = await primer(['answer', '--model', qaDir, '--question', question, '--context-file', file, '--json']);
  assert.equal(r.error, null);
  const span = JSON.parse(r.out[0]!) as { answer: string; start: number; end: number };
  assert.equal('The apple is red.\n'.slice(span.start, span.end), span.answer);
});

test('answer scores a span as the question-answering pipeline does: p_start·p_end over the context tokens and [CLS]', async () => {
  // Synthetic window: [CLS] q q [SEP] c c c [SEP], context tokens at 4–6.
  const feature = {
    exampleIndex: 0, ids: [101, 5, 6, 102, 7, 8, 9, 102], typeIds: [0, 0, 0, 0, 1, 1, 1, 1], startPosition: 0, endPosition: 0,
    offsets: [null, null, null, null, [0, 3], [4, 7], [8, 11], null] as Array<[number, number] | null>,
  };
  const example = { id: 'x', question: 'q', context: 'red big box', answers: [] };
  const starts = [[2, 9, 9, 9, 0.5, 1.5, -1, 9]];
  const ends = [[1, 9, 9, 9, -2, 0.25, 1, 9]];
  const softmax = (l: number[], keep: number[]) => {
    const z = keep.reduce((s, i) => s + Math.exp(l[i]!), 0);
    return (i: number) => Math.exp(l[i]!) / z;
  };
  const ps = softmax(starts[0]!, [0, 4, 5, 6]);
  const pe = softmax(ends[0]!, [0, 4, 5, 6]);
  const [span] = bestSpans([example], [feature], starts, ends, { probability: { clsId: 101 } });
  assert.equal(span!.text, 'big box'); // start 5, end 6: the best p_start·p_end among spans inside the context
  assert.ok(Math.abs(span!.score - ps(5) * pe(6)) < 1e-12, `${span!.score} vs ${ps(5) * pe(6)}`);
  // Without [CLS] (a GPT-2 has none) the context alone is normalised; run_qa.py's logit sum is the default.
  const [gptSpan] = bestSpans([example], [feature], starts, ends, { probability: { clsId: null } });
  assert.ok(Math.abs(gptSpan!.score - softmax(starts[0]!, [4, 5, 6])(5) * softmax(ends[0]!, [4, 5, 6])(6)) < 1e-12);
  assert.equal(bestSpans([example], [feature], starts, ends)[0]!.score, 1.5 + 1);

  // The command: its score is that probability (it printed the logit sum, e.g. −2.61).
  const qaDir = join(root, 'qa-score');
  saveTaskModelDir(qaDir, new QuestionAnswering(loadBackbone(base), { seed: 3 }), tokenizer);
  const r = await primer(['answer', '--model', qaDir, '--question', 'What color is the apple?', '--context', 'The apple on the table is red and the pear is green.', '--json']);
  const out = JSON.parse(r.out[0]!) as { score: number };
  assert.ok(out.score > 0 && out.score <= 1, `score ${out.score}`);
});
