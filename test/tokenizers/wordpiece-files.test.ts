import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { TokenizerFormatError } from '../../src/tokenizers/json-fields.ts';

/** bert-base-uncased's tokenizer.json layout, with a tiny vocabulary (specials not at 0..4, as in the real file). */
function bertStyleJSON(): Record<string, any> {
  const words = ['[PAD]', '[unused0]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'quick', 'brown', 'fox', 'jump', '##ed', '##s', 'over',
    'lazy', 'dog', '.', ',', '!', 'a', '##b', 'b', 'cafe', '1', '2', '##2', '你', '好', '，'];
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '[PAD]'), special(2, '[UNK]'), special(3, '[CLS]'), special(4, '[SEP]'), special(5, '[MASK]')],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [3], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [4], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
      vocab: Object.fromEntries(words.map((w, i) => [w, i])),
    },
  };
}

const SAMPLES = [
  'The quick brown fox jumped over the lazy dog.',
  'THE FOX JUMPS, the dog... Café! ab 122 你好，[MASK] dog',
  'a [SEP]b[CLS] unknownword jumpedjumped',
  '',
];

test('a hand-made HF-style BERT tokenizer.json loads and encodes as BertTokenizerFast would', () => {
  const tok = WordPieceTokenizer.fromJSON(bertStyleJSON());
  const enc = tok.encode('The quick brown fox jumped over the lazy dog.');
  assert.deepEqual(enc.tokens, ['[CLS]', 'the', 'quick', 'brown', 'fox', 'jump', '##ed', 'over', 'the', 'lazy', 'dog', '.', '[SEP]']);
  assert.deepEqual(enc.ids, [3, 6, 7, 8, 9, 10, 11, 13, 6, 14, 15, 16, 4]);
  const pair = tok.encode('Café 122', '你好，[MASK]');
  assert.deepEqual(pair.tokens, ['[CLS]', 'cafe', '1', '##2', '##2', '[SEP]', '你', '好', '，', '[MASK]', '[SEP]']);
  assert.deepEqual(pair.typeIds, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(pair.offsets.slice(6, 10), [[0, 1], [1, 2], [2, 3], [3, 9]]);
  assert.equal(tok.vocabSize, 29);
  assert.deepEqual(tok.specialTokens, { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' });
  assert.equal(tok.decode(enc.ids, { skipSpecialTokens: true }), 'the quick brown fox jumped over the lazy dog.');

  // The same file read by @huggingface/tokenizers (JS port of HF's pipeline) gives the same ids.
  const hf = new HfJsTokenizer(bertStyleJSON(), {});
  for (const text of SAMPLES) assert.deepEqual(tok.encode(text).ids, hf.encode(text).ids, JSON.stringify(text));

  // BertProcessing instead of TemplateProcessing encodes identically.
  const json = bertStyleJSON();
  json.post_processor = { type: 'BertProcessing', sep: ['[SEP]', 4], cls: ['[CLS]', 3] };
  const viaBertProcessing = WordPieceTokenizer.fromJSON(json);
  for (const text of SAMPLES) assert.deepEqual(viaBertProcessing.encode(text, 'the dog').ids, tok.encode(text, 'the dog').ids);
  assert.deepEqual(viaBertProcessing.toJSON().post_processor, json.post_processor);
});

test('tokenizer.json written by Primer loads back identically (incl. tricky token names)', () => {
  const json = bertStyleJSON();
  json.model.vocab = { ...json.model.vocab, '##__proto__': 29, constructor: 30, '0': 31, '10': 32 };
  json.normalizer.strip_accents = false;
  json.truncation = { direction: 'Right', max_length: 128, strategy: 'LongestFirst', stride: 0 };
  const tok = WordPieceTokenizer.fromJSON(json);
  const written = JSON.parse(JSON.stringify(tok.toJSON()));
  const again = WordPieceTokenizer.fromJSON(written);
  assert.deepEqual(again.toJSON(), written);
  assert.deepEqual(written.model.vocab, json.model.vocab);
  assert.deepEqual(written.added_tokens, json.added_tokens);
  assert.deepEqual(written.post_processor, json.post_processor);
  assert.deepEqual(written.normalizer, json.normalizer);
  assert.deepEqual(written.truncation, json.truncation);
  assert.equal(again.tokenToId('constructor'), 30);
  assert.equal(again.tokenToId('__proto__'), undefined);
  for (const text of SAMPLES) assert.deepEqual(again.encode(text, 'constructor 10').ids, tok.encode(text, 'constructor 10').ids);
});

test('save() writes tokenizer.json + vocab.txt; both load back to the same tokenizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-wp-'));
  try {
    const tok = WordPieceTokenizer.fromJSON(bertStyleJSON());
    tok.save(dir);
    const fromJson = WordPieceTokenizer.fromJSON(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')));
    assert.deepEqual(fromJson.toJSON(), tok.toJSON());
    const lines = readFileSync(join(dir, 'vocab.txt'), 'utf8').split('\n');
    assert.equal(lines.length, 30); // 29 tokens + the final newline
    assert.equal(lines[3], '[CLS]');
    assert.equal(lines[11], '##ed');
    const fromTxt = WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'), { lowercase: true });
    for (let id = 0; id < tok.vocabSize; id++) assert.equal(fromTxt.idToToken(id), tok.idToToken(id));
    for (const text of SAMPLES) assert.deepEqual(fromTxt.encode(text, 'fox').ids, tok.encode(text, 'fox').ids, JSON.stringify(text));
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.do_lower_case, true);
    assert.equal(config.mask_token, '[MASK]');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('legacy vocab.txt: CRLF lines, cased option, repeated lines, and saveVocab', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-wp-'));
  try {
    const path = join(dir, 'vocab.txt');
    writeFileSync(path, ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'Hello', 'hello', '##s', '!', 'é'].join('\r\n') + '\r\n');
    const cased = WordPieceTokenizer.fromVocabFile(path, { lowercase: false });
    assert.deepEqual(cased.encode('Hellos hello! é').tokens, ['[CLS]', 'Hello', '##s', 'hello', '!', 'é', '[SEP]']);
    const uncased = WordPieceTokenizer.fromVocabFile(path);
    assert.deepEqual(uncased.encode('Hellos HELLO! É').tokens, ['[CLS]', 'hello', '##s', 'hello', '!', '[UNK]', '[SEP]']);
    const out = join(dir, 'out.txt');
    cased.saveVocab(out);
    assert.equal(readFileSync(out, 'utf8'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'Hello', 'hello', '##s', '!', 'é', ''].join('\n'));
    writeFileSync(path, 'a\nb\n');
    assert.throws(() => WordPieceTokenizer.fromVocabFile(path), /\[UNK\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed tokenizer.json: the error names the field', () => {
  const cases: Array<[string, (j: Record<string, any>) => void, RegExp]> = [
    ['model missing', (j) => delete j.model, /tokenizer\.json: model must be an object/],
    ['model type', (j) => (j.model.type = 'BPE'), /model\.type/],
    ['vocab not an object', (j) => (j.model.vocab = ['a']), /model\.vocab must be an object/],
    ['vocab id negative', (j) => (j.model.vocab.fox = -1), /model\.vocab\["fox"\]/],
    ['vocab id reused', (j) => (j.model.vocab.fox = 8), /model\.vocab\["fox"\] reuses id 8/],
    ['unk not in vocab', (j) => (j.model.unk_token = '<unk>'), /model\.unk_token/],
    ['prefix type', (j) => (j.model.continuing_subword_prefix = 5), /model\.continuing_subword_prefix/],
    ['max chars', (j) => (j.model.max_input_chars_per_word = 1.5), /model\.max_input_chars_per_word/],
    ['normalizer flag', (j) => (j.normalizer.lowercase = 'yes'), /normalizer\.lowercase/],
    ['normalizer type', (j) => (j.normalizer = { type: 'NFKC' }), /normalizer\.type/],
    ['pre-tokenizer type', (j) => (j.pre_tokenizer = { type: 'Whitespace' }), /pre_tokenizer\.type/],
    ['decoder type', (j) => (j.decoder = { type: 'ByteLevel' }), /decoder\.type/],
    ['decoder cleanup', (j) => (j.decoder.cleanup = 1), /decoder\.cleanup/],
    ['template special', (j) => delete j.post_processor.special_tokens['[SEP]'], /post_processor\.special_tokens/],
    ['post-processor type', (j) => (j.post_processor = { type: 'Magic' }), /post_processor\.type/],
    ['added token content', (j) => (j.added_tokens[1].content = 7), /added_tokens\[1\]\.content/],
    ['added token id vs vocab', (j) => (j.added_tokens[4].id = 6), /added_tokens\[4\]\.id/],
    ['added_tokens not a list', (j) => (j.added_tokens = {}), /added_tokens must be an array/],
    ['truncation', (j) => (j.truncation = 5), /truncation/],
  ];
  for (const [name, breakIt, pattern] of cases) {
    const json = bertStyleJSON();
    breakIt(json);
    assert.throws(() => WordPieceTokenizer.fromJSON(json), (e: unknown) => {
      assert.ok(e instanceof TokenizerFormatError, `${name}: ${String(e)}`);
      assert.match((e as Error).message, pattern, name);
      return true;
    });
  }
  assert.throws(() => WordPieceTokenizer.fromJSON('{}'), /\(root\)/);
});

test('loadTokenizer on a .txt that is not a vocab says it was read as one and what to give instead', async () => {
  const { loadTokenizer } = await import('../../src/tokenizers/index.ts');
  const dir = mkdtempSync(join(tmpdir(), 'primer-notvocab-'));
  try {
    const corpus = join(dir, 'corpus.txt');
    writeFileSync(corpus, 'It was a bright cold day in April,\nand the clocks were striking thirteen.\n');
    assert.throws(() => loadTokenizer(corpus), {
      message: `loadTokenizer: ${corpus} was read as a WordPiece vocab.txt (one token per line) and is not one: ${corpus}: the unk token "[UNK]" is not one of its lines. `
        + 'Give a tokenizer.json, a vocab.txt, or the directory that holds the tokenizer files',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
