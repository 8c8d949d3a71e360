/**
 * Extractive QA windows and span mapping (transformers' run_qa.py semantics) on a hand-made context,
 * and the QuestionAnswering head on the bert-tiny fixture end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { QuestionAnswering } from '../../src/models/heads.ts';
import { prepareQAFeatures, collateFeatures, bestSpans, predictAnswers } from '../../src/tasks/qa.ts';
import type { QAExample } from '../../src/tasks/data.ts';

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'un', '##bel', '##ie', '##vable', 'play', '##ing', '.', 'is', 'dog', 'sat', 'on', 'mat', 'ran', 'to', 'park', 'a', 'bird', 'sang', 'in', 'tree', 'where', 'did', 'run', '?', ',', 'who'];
const tokenizer = new WordPieceTokenizer({ vocab: VOCAB });

const context = 'The cat sat on the mat. The dog ran to the park. A bird sang in the tree.';
//  context tokens: the cat sat on the mat . the dog ran to the park . a bird sang in the tree .
//                  0   1   2   3  4   5   6 7   8   9   10 11  12   13 14 15  16   17 18  19  20
const answerStart = context.indexOf('the park');
const example: QAExample = { id: 'q1', context, question: 'Where did the dog run?', answers: [{ text: 'the park', start: answerStart }] };
// [CLS] where did the dog run ? [SEP] = 8 tokens, + [SEP] at the end: room = 15 − 9 = 6 context
// tokens per window; stride 4 → windows start every 2 tokens: [0,6) [2,8) … [16,21).
const features = prepareQAFeatures(tokenizer, [example], { maxLength: 15, stride: 4 });

test('windows: question kept whole, context cut with the stride, token types and offsets', () => {
  assert.equal(features.length, 9);
  const ctxRanges = features.map((f) => {
    const ctx = f.offsets.map((o, k) => (o ? k : -1)).filter((k) => k >= 0);
    return [ctx[0], ctx.length];
  });
  assert.deepEqual(ctxRanges, [[8, 6], [8, 6], [8, 6], [8, 6], [8, 6], [8, 6], [8, 6], [8, 6], [8, 5]]);
  const f4 = features[4]!; // context tokens 8..13
  assert.deepEqual(f4.ids.map((id) => VOCAB[id]), ['[CLS]', 'where', 'did', 'the', 'dog', 'run', '?', '[SEP]', 'dog', 'ran', 'to', 'the', 'park', '.', '[SEP]']);
  assert.deepEqual(f4.typeIds, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  // Consecutive windows share `stride` = 4 context tokens.
  const tokensOf = (i: number) => features[i]!.offsets.filter((o) => o !== null).map((o) => o![0]);
  assert.deepEqual(tokensOf(4).slice(2), tokensOf(5).slice(0, 4));
  assert.deepEqual(f4.offsets.slice(8, 14).map((o) => context.slice(o![0], o![1])), ['dog', 'ran', 'to', 'the', 'park', '.']);
});

test('labels: the answer appears whole in two windows; windows it crosses point at [CLS]', () => {
  const labels = features.map((f) => [f.startPosition, f.endPosition]);
  // Answer tokens 11-12: whole in windows [8,14) and [10,16); cut by [6,12) and [12,18).
  assert.deepEqual(labels, [[0, 0], [0, 0], [0, 0], [0, 0], [11, 12], [9, 10], [0, 0], [0, 0], [0, 0]]);
  for (const f of [features[4]!, features[5]!]) {
    assert.equal(context.slice(f.offsets[f.startPosition]![0], f.offsets[f.endPosition]![1]), 'the park');
    assert.equal(f.offsets[f.startPosition]![0], answerStart);
  }
  // An answer inside a word split into subwords maps to all of its pieces.
  const ex2: QAExample = { id: 'q2', context: 'The unbelievable cat is playing.', question: 'who is playing?', answers: [{ text: 'unbelievable cat', start: 4 }] };
  const [f] = prepareQAFeatures(tokenizer, [ex2], { maxLength: 32, stride: 8 });
  assert.deepEqual(f!.ids.slice(f!.startPosition, f!.endPosition + 1).map((id) => VOCAB[id]), ['un', '##bel', '##ie', '##vable', 'cat']);
});

test('best span: character mapping across windows, the max answer length, no question tokens', () => {
  const zeros = () => features.map((f) => new Float64Array(f.ids.length));
  const start = zeros();
  const end = zeros();
  start[4]![11] = 5; end[4]![12] = 5; // "the park" in window 4
  start[5]![9] = 3; end[5]![10] = 3; //  and, less sure, in window 5
  let [best] = bestSpans([example], features, start, end);
  assert.deepEqual(best, { text: 'the park', start: answerStart, end: answerStart + 8, score: 10, featureIndex: 4 });
  start[5]![9] = 6; end[5]![10] = 6; // window 5 now more confident: same characters
  [best] = bestSpans([example], features, start, end);
  assert.deepEqual([best!.text, best!.start, best!.featureIndex], ['the park', answerStart, 5]);
  // A long span "dog ran to the park." (6 tokens) only wins when the max answer length allows it.
  start[4]![8] = 20; end[4]![13] = 20;
  assert.equal(bestSpans([example], features, start, end, { maxAnswerLength: 30 })[0]!.text, 'dog ran to the park.');
  // At most 3 tokens: start "the" (5) + end "." (20) beats "dog" alone (20 + 0).
  assert.equal(bestSpans([example], features, start, end, { maxAnswerLength: 3 })[0]!.text, 'the park.');
  // Logits on the question or [CLS] never produce a span.
  start[0]![1] = 99; end[0]![2] = 99; start[0]![0] = 99;
  assert.equal(predictAnswers([example], features, start, end, { maxAnswerLength: 3 }).get('q1'), 'the park.');
});

test('a question too long for the window is refused with the numbers', () => {
  assert.throws(() => prepareQAFeatures(tokenizer, [example], { maxLength: 12, stride: 4 }), /leaving 3 for the context — must be more than the stride 4/);
});

test('QA head on bert-tiny: windows through the model, predicted spans are context substrings', () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'bert-tiny');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as BertConfig;
  const weights = readSafetensors(join(dir, 'model.safetensors'));
  const bert = new Bert(config);
  bert.loadStateDict(new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const)));
  const model = new QuestionAnswering(bert.bert, { seed: 3 }).eval();
  const batch = collateFeatures(tokenizer, features);
  assert.deepEqual([batch.batch, batch.length], [9, 15]);
  assert.deepEqual([...batch.attentionMask.subarray(8 * 15)], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]); // last window is shorter
  assert.deepEqual([...batch.startPositions], [0, 0, 0, 0, 11, 12 - 3, 0, 0, 0]);
  const out = noGrad(() => model.forward(batch, batch.startPositions, batch.endPositions));
  assert.deepEqual(out.startLogits.shape, [9, 15]);
  assert.ok(Number.isFinite(out.loss!.item()) && out.loss!.item() > 0);
  const rows = (t: { data: ArrayLike<number> }) => features.map((_, i) => Array.from(t.data).slice(i * 15, (i + 1) * 15));
  const [span] = bestSpans([example], features, rows(out.startLogits), rows(out.endLogits), { maxAnswerLength: 4 });
  assert.ok(span, 'a span was found');
  assert.equal(context.slice(span.start, span.end), span.text);
  const f = features[span.featureIndex]!;
  const inside = f.offsets.filter((o) => o && o[0] >= span.start && o[1] <= span.end).length;
  assert.ok(inside >= 1 && inside <= 4, `${inside} tokens in the span`);
});

test('byte-level BPE: word alignment skips bare spaces, answers are trimmed of the space a token carries', async () => {
  const { trainTokenizer } = await import('../../src/tokenizers/index.ts');
  const { encodeWords } = await import('../../src/tasks/encode.ts');
  const texts = [context, 'unbelievable things happen', 'playing games is fun'];
  const bpe = trainTokenizer({ type: 'bpe', vocabSize: 300, texts: Array(20).fill(texts).flat(), minFrequency: 1 });
  const words = ['The', 'unbelievable', 'cat', 'is', 'playing', '.'];
  const { encoding, wordIds } = encodeWords(bpe, words);
  // Every word is covered, in order, and only by tokens inside it.
  assert.deepEqual([...new Set(wordIds.filter((w) => w !== null))], [0, 1, 2, 3, 4, 5]);
  wordIds.forEach((w, k) => {
    if (w === null) return assert.equal(encoding.tokens[k]!.replace(/Ġ/g, ''), '', `token ${encoding.tokens[k]} has no word`);
    assert.ok(words[w]!.includes(encoding.tokens[k]!.replace(/^Ġ/, '')), `${encoding.tokens[k]} in ${words[w]}`);
  });
  const feats = prepareQAFeatures(bpe, [example], { maxLength: 24, stride: 6 });
  const labelled = feats.map((f, i) => [i, f.startPosition, f.endPosition]).filter(([, s]) => s !== 0);
  assert.ok(labelled.length >= 1, 'the answer is inside at least one window');
  const start = feats.map((f) => new Float64Array(f.ids.length));
  const end = feats.map((f) => new Float64Array(f.ids.length));
  const [fi, s, e] = labelled[0]!;
  start[fi!]![s!] = 1;
  end[fi!]![e!] = 1;
  const [span] = bestSpans([example], feats, start, end);
  assert.deepEqual([span!.text, span!.start], ['the park', answerStart]);
});
