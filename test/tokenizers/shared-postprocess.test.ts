/** Encoding assembly: truncation (HF's arithmetic), padding, post-processors and their tokenizer.json form. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Encoding } from '../../src/tokenizers/types.ts';
import {
  BertProcessing, ByteLevelProcessing, RobertaProcessing, SequenceProcessing, TemplateProcessing, emptyEncoding,
  encodeBatchWithPipeline, encodeWithPipeline, padEncoding, postProcessorFromJSON, pushToken, truncateEncodings,
  type PostProcessor, type SequenceEncoder,
} from '../../src/tokenizers/postprocess.ts';

/** A whitespace "tokenizer" over a fixed vocabulary, enough to drive the pipeline. */
function toyEncoder(postProcessor: PostProcessor | null, withPad = true): SequenceEncoder {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a', 'b', 'c', 'd', 'e', 'f', 'g'];
  return {
    postProcessor,
    padSpec: () => (withPad ? { id: 0, token: '[PAD]' } : null),
    encodeSequence(text: string, sequenceId: number): Encoding {
      const enc = emptyEncoding();
      for (const m of text.matchAll(/\S+/g)) {
        const id = vocab.indexOf(m[0]);
        pushToken(enc, id < 0 ? 1 : id, id < 0 ? '[UNK]' : m[0], m.index, m.index + m[0].length, sequenceId, false);
      }
      return enc;
    },
  };
}

function seq(n: number, sequenceId = 0): Encoding {
  const enc = emptyEncoding();
  for (let i = 0; i < n; i++) pushToken(enc, 100 + i, `t${i}`, i, i + 1, sequenceId, false);
  return enc;
}

test('longest_first truncation follows HF: the shorter side is kept when it fits, else both get half', () => {
  const cases: Array<[number, number, number, number, number]> = [
    // [len a, len b, max, expected a, expected b]
    [3, 10, 8, 3, 5], [10, 3, 8, 5, 3], [6, 6, 8, 4, 4], [6, 7, 9, 4, 5], [7, 6, 9, 5, 4], [2, 2, 8, 2, 2], [5, 9, 3, 1, 2], [9, 9, 0, 0, 0],
  ];
  for (const [la, lb, max, ea, eb] of cases) {
    const [a, b] = truncateEncodings(seq(la), seq(lb, 1), max);
    assert.deepEqual([a.ids.length, b!.ids.length], [ea, eb], `${la} + ${lb} → ${max}`);
  }
  const [single] = truncateEncodings(seq(10), null, 4, 'longest_first', 'left');
  assert.deepEqual(single.ids, [106, 107, 108, 109]);
  const [a1, b1] = truncateEncodings(seq(6), seq(3, 1), 5, 'only_first');
  assert.deepEqual([a1.ids.length, b1!.ids.length], [2, 3]);
  const [a2, b2] = truncateEncodings(seq(3), seq(6, 1), 5, 'only_second');
  assert.deepEqual([a2.ids.length, b2!.ids.length], [3, 2]);
  assert.throws(() => truncateEncodings(seq(6), seq(3, 1), 2, 'only_first'), /other sequence alone has 3 tokens/);
});

test('BERT template: [CLS] A [SEP] B [SEP] with type ids, masks, offsets; truncation leaves room for specials', () => {
  const bert = TemplateProcessing.bert(['[CLS]', 2], ['[SEP]', 3]);
  const p = toyEncoder(bert);
  const enc = encodeWithPipeline(p, 'a b c', 'd e');
  assert.deepEqual(enc.tokens, ['[CLS]', 'a', 'b', 'c', '[SEP]', 'd', 'e', '[SEP]']);
  assert.deepEqual(enc.ids, [2, 4, 5, 6, 3, 7, 8, 3]);
  assert.deepEqual(enc.typeIds, [0, 0, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(enc.specialTokensMask, [1, 0, 0, 0, 1, 0, 0, 1]);
  assert.deepEqual(enc.sequenceIds, [null, 0, 0, 0, null, 1, 1, null]);
  assert.deepEqual(enc.offsets, [[0, 0], [0, 1], [2, 3], [4, 5], [0, 0], [0, 1], [2, 3], [0, 0]]);
  const cut = encodeWithPipeline(p, 'a b c d e f', 'g a b', { maxLength: 7 });
  assert.deepEqual(cut.tokens, ['[CLS]', 'a', 'b', '[SEP]', 'g', 'a', '[SEP]']);
  const padded = encodeWithPipeline(p, 'a', null, { maxLength: 6, padding: 'max_length' });
  assert.deepEqual(padded.ids, [2, 4, 3, 0, 0, 0]);
  assert.deepEqual(padded.attentionMask, [1, 1, 1, 0, 0, 0]);
  assert.deepEqual(padded.sequenceIds, [null, 0, null, null, null, null]);
  const plain = encodeWithPipeline(p, 'a b', 'c', { addSpecialTokens: false });
  assert.deepEqual(plain.ids, [4, 5, 6]);
  assert.deepEqual(plain.typeIds, [0, 0, 1]);
  assert.deepEqual(new BertProcessing(['[CLS]', 2], ['[SEP]', 3]).process(p.encodeSequence('a', 0), p.encodeSequence('b', 1), true), bert.process(p.encodeSequence('a', 0), p.encodeSequence('b', 1), true));
});

test('batch padding: longest, max_length, multiple-of, left side; no pad token is an error', () => {
  const p = toyEncoder(TemplateProcessing.bert(['[CLS]', 2], ['[SEP]', 3]));
  const batch = encodeBatchWithPipeline(p, ['a', 'a b c', ['a', 'b']], { padding: 'longest' });
  assert.deepEqual(batch.map((e) => e.ids), [[2, 4, 3, 0, 0], [2, 4, 5, 6, 3], [2, 4, 3, 5, 3]]);
  assert.deepEqual(batch[0].attentionMask, [1, 1, 1, 0, 0]);
  const multiple = encodeBatchWithPipeline(p, ['a', 'a b c'], { padding: 'longest', padToMultipleOf: 4, paddingSide: 'left' });
  assert.deepEqual(multiple.map((e) => e.ids), [[0, 0, 0, 0, 0, 2, 4, 3], [0, 0, 0, 2, 4, 5, 6, 3]]);
  const fixed = encodeBatchWithPipeline(p, ['a b c d e f g'], { padding: 'max_length', maxLength: 4 });
  assert.deepEqual(fixed[0].ids, [2, 4, 5, 3]);
  assert.throws(() => encodeBatchWithPipeline(toyEncoder(null, false), ['a', 'a b'], { padding: 'longest' }), /padding needs a pad token/);
  assert.throws(() => encodeWithPipeline(p, 'a', null, { padding: 'max_length' }), /needs maxLength/);
  const enc = padEncoding(seq(2), 4, { id: 9, token: '<p>', typeId: 1 }, 'left');
  assert.deepEqual(enc.typeIds, [1, 1, 0, 0]);
});

test('post-processors read and write tokenizer.json post_processor', () => {
  const jsons: unknown[] = [
    TemplateProcessing.bert(['[CLS]', 101], ['[SEP]', 102]).toJSON(),
    { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] },
    { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: true },
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, TemplateProcessing.fromStrings('<s> $A', '<s> $A <s>:1 $B:1', [['<s>', 1]]).toJSON()] },
  ];
  for (const json of jsons) assert.deepEqual(postProcessorFromJSON(json)!.toJSON(), json);
  assert.equal(postProcessorFromJSON(null), null);
  const bertTemplate = jsons[0] as { single: unknown[]; pair: unknown[] };
  assert.deepEqual(bertTemplate.pair[3], { Sequence: { id: 'B', type_id: 1 } });
  assert.throws(() => postProcessorFromJSON({ type: 'BertProcessing', sep: ['[SEP]'], cls: ['[CLS]', 1] }), /post_processor\.sep must be \[token, id\]/);
  assert.throws(() => postProcessorFromJSON({ type: 'TemplateProcessing', single: [{ Foo: 1 }], pair: [], special_tokens: {} }), /post_processor\.single\[0\] must be/);
});

test('RoBERTa and Sequence processors; ByteLevel trims the offsets of encoded spaces', () => {
  const roberta = new RobertaProcessing(['<s>', 0], ['</s>', 2], false);
  const p = toyEncoder(roberta);
  const pair = encodeWithPipeline(p, 'a b', 'c');
  assert.deepEqual(pair.tokens, ['<s>', 'a', 'b', '</s>', '</s>', 'c', '</s>']);
  assert.equal(roberta.addedTokens(true), 4);
  const seqProc = new SequenceProcessing([new ByteLevelProcessing(true), TemplateProcessing.fromStrings('[CLS] $A', '[CLS] $A $B:1', [['[CLS]', 2]])]);
  const enc = emptyEncoding();
  pushToken(enc, 7, 'ĠĠhi', 0, 4, 0, false);
  const out = seqProc.process(enc, null, true);
  assert.deepEqual(out.offsets, [[0, 0], [2, 4]]);
  assert.equal(seqProc.addedTokens(false), 1);
});
