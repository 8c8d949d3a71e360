/** BPE files: tokenizer.json written and read back, HF-style fixtures, legacy files, malformed input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { BpeTokenizer } from '../../src/tokenizers/bpe.ts';
import { loadTokenizer, tokenizerFromJSON } from '../../src/tokenizers/index.ts';
import { TORTURE, gutenbergBooks, loadGpt2 } from './bpe-fixtures.ts';

function tinyHfJson(mergesStyle: 'strings' | 'pairs'): Record<string, unknown> {
  const merges = [['a', 'b'], ['ab', 'c'], ['Ġ', 'ab']];
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
      vocab: { '<|endoftext|>': 0, a: 1, b: 2, c: 3, Ġ: 4, ab: 5, abc: 6, Ġab: 7 },
      merges: mergesStyle === 'strings' ? merges.map((m) => m.join(' ')) : merges,
    },
  };
}

function sample(): string {
  const books = gutenbergBooks();
  return books.map((b) => b.text.slice(0, 30_000)).join('\n') + TORTURE.join('\n');
}

test('HF-format tokenizer.json loads with merges as "a b" strings and as ["a","b"] pairs', () => {
  for (const style of ['strings', 'pairs'] as const) {
    const tok = tokenizerFromJSON(tinyHfJson(style));
    assert.equal(tok.type, 'bpe');
    assert.deepEqual(tok.encode('abc ab cab<|endoftext|>').ids, [6, 7, 4, 3, 5, 0], style);
    assert.deepEqual(tok.encode('abc ab cab<|endoftext|>').tokens, ['abc', 'Ġab', 'Ġ', 'c', 'ab', '<|endoftext|>']);
    assert.equal(tok.decode([6, 7, 4, 3, 5, 0]), 'abc ab cab<|endoftext|>');
    assert.equal(tok.vocabSize, 8);
  }
});

test('post_processor TemplateProcessing from tokenizer.json adds its specials and type ids', () => {
  const json = tinyHfJson('pairs');
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [0], tokens: ['<|endoftext|>'] } },
  };
  const tok = tokenizerFromJSON(json);
  assert.deepEqual(tok.encode('abc').ids, [0, 6]);
  const pair = tok.encode('abc', 'ab');
  assert.deepEqual(pair.ids, [6, 0, 5]);
  assert.deepEqual(pair.typeIds, [0, 0, 1]);
  assert.deepEqual(pair.specialTokensMask, [0, 1, 0]);
  assert.deepEqual(tok.encode('abc', null, { addSpecialTokens: false }).ids, [6]);
  assert.deepEqual((tok.toJSON() as { post_processor: unknown }).post_processor, json.post_processor);
});

test('tokenizer.json written by Primer loads back identically (GPT-2: same ids on a corpus)', () => {
  const gpt2 = loadGpt2();
  const json = JSON.parse(JSON.stringify(gpt2.toJSON()));
  const again = tokenizerFromJSON(json) as BpeTokenizer;
  const text = sample();
  assert.deepEqual(again.encodeIds(text), gpt2.encodeIds(text));
  assert.deepEqual(JSON.parse(JSON.stringify(again.toJSON())), json);
  assert.equal(again.vocabSize, 50257);

  const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-'));
  try {
    gpt2.save(dir);
    for (const path of [dir, join(dir, 'tokenizer.json'), join(dir, 'vocab.json')]) {
      const loaded = loadTokenizer(path) as BpeTokenizer;
      assert.deepEqual(loaded.encodeIds(text), gpt2.encodeIds(text), path);
      assert.deepEqual(loaded.specialTokens, gpt2.specialTokens, path);
    }
    // Legacy files alone (no tokenizer.json): vocab.json + merges.txt.
    const legacy = join(dir, 'legacy');
    mkdirSync(legacy);
    for (const name of ['vocab.json', 'merges.txt']) copyFileSync(join(dir, name), join(legacy, name));
    const fromLegacy = loadTokenizer(legacy) as BpeTokenizer;
    assert.deepEqual(fromLegacy.encodeIds(text), gpt2.encodeIds(text));
    assert.deepEqual(fromLegacy.specialTokens, { bos: '<|endoftext|>', eos: '<|endoftext|>' });
    assert.equal(readFileSync(join(legacy, 'merges.txt'), 'utf8').split('\n')[0], '#version: 0.2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('@huggingface/tokenizers loads Primer\'s tokenizer.json and produces the same ids', () => {
  const gpt2 = loadGpt2();
  const hf = new HfTokenizer(JSON.parse(JSON.stringify(gpt2.toJSON())), {});
  const text = gutenbergBooks()[0].text.slice(0, 100_000) + TORTURE.join('\n');
  for (const piece of text.split(/(?<=\n)/)) {
    assert.deepEqual(hf.encode(piece, { add_special_tokens: false }).ids, Array.from(gpt2.encodeIds(piece)), JSON.stringify(piece));
  }
});

const MALFORMED: Array<[string, (j: Record<string, any>) => unknown, RegExp]> = [
  ['merge is a number', (j) => (j.model.merges[1] = 12), /^tokenizer\.json: model\.merges\[1\] must be "a b" or \["a","b"\]/],
  ['merge without a space', (j) => (j.model.merges[0] = 'ab'), /^tokenizer\.json: model\.merges\[0\] must be "a b" or \["a","b"\]/],
  ['merge with three parts', (j) => (j.model.merges[2] = ['a', 'b', 'c']), /model\.merges\[2\] must be "a b" or \["a","b"\]/],
  ['merge of an unknown token', (j) => (j.model.merges[2] = ['Ġ', 'zz']), /model\.merges\[2\] uses "zz", which is not in model\.vocab/],
  ['merge result missing', (j) => delete j.model.vocab.abc, /model\.merges\[1\] makes "abc", which is not in model\.vocab/],
  ['negative id', (j) => (j.model.vocab.a = -1), /model\.vocab\["a"\] must be a non-negative integer, got number -1/],
  ['duplicate id', (j) => (j.model.vocab.b = 1), /model\.vocab\["b"\] reuses id 1, already given to "a"/],
  ['no model', (j) => delete j.model, /^tokenizer\.json: model must be an object, got undefined/],
  ['merges not an array', (j) => (j.model.merges = 'a b'), /model\.merges must be an array/],
  ['unknown model type', (j) => (j.model.type = 'Unigram'), /model\.type "Unigram" is not supported/],
  ['added token without content', (j) => delete j.added_tokens[0].content, /added_tokens\[0\]\.content must be a string/],
  ['added token with a bad id', (j) => (j.added_tokens[0].id = 'x'), /added_tokens\[0\]\.id must be a non-negative integer/],
  ['unknown post-processor', (j) => (j.post_processor = { type: 'Foo' }), /post_processor\.type "Foo" is not supported/],
  ['template without its special', (j) => (j.post_processor = { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }], pair: [], special_tokens: {} }), /post_processor\.special_tokens has no entry for "\[CLS\]"/],
  ['another pre-tokenizer', (j) => (j.pre_tokenizer = { type: 'Whitespace' }), /pre_tokenizer\.type "Whitespace" is not supported/],
  ['a split regex with an atomic group', (j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '(?>\\w+)' }, behavior: 'Isolated' }, { type: 'ByteLevel', use_regex: false }] }), /pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex cannot be used: \(\?> .* at position 0/],
  ['an unsupported normalizer', (j) => (j.normalizer = { type: 'Lowercase' }), /normalizer\.type "Lowercase" is not supported/],
  ['byte fallback', (j) => (j.model.byte_fallback = true), /model\.byte_fallback is not supported/],
  ['unk token missing', (j) => (j.model.unk_token = '<unk>'), /model\.unk_token "<unk>" is not in model\.vocab/],
  ['a decoder of another kind', (j) => (j.decoder = { type: 'WordPiece' }), /decoder\.type must be "ByteLevel"/],
];

test('malformed tokenizer.json: the error names the field', () => {
  for (const [what, mutate, message] of MALFORMED) {
    const json = tinyHfJson('pairs') as Record<string, any>;
    mutate(json);
    assert.throws(() => tokenizerFromJSON(json), (e: Error) => e.name === 'TokenizerFormatError' && message.test(e.message), what);
  }
  assert.throws(() => tokenizerFromJSON([]), /^TokenizerFormatError: tokenizer\.json: \(root\) must be an object, got an array/);
});

test('malformed legacy files and invalid JSON: the error names the file and line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-bad-'));
  try {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1, ab: 2 }));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b\nab\n');
    assert.throws(() => loadTokenizer(dir), /^TokenizerFormatError: merges\.txt: line 3 must be "a b" or \["a","b"\]/);
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b\nab c\n');
    assert.throws(() => loadTokenizer(dir), /merges\.txt: line 3 uses "c", which is not in vocab\.json/);
    writeFileSync(join(dir, 'vocab.json'), '{"a": 0,');
    assert.throws(() => loadTokenizer(dir), /vocab\.json: \(file\) is not valid JSON/);
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(() => loadTokenizer(dir), /tokenizer\.json: \(file\) is not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model config.json or another JSON file given as the tokenizer: the error names that file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-config-'));
  try {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1, ab: 2 }));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b\n');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }));
    assert.throws(() => loadTokenizer(join(dir, 'config.json')),
      { message: `loadTokenizer: ${join(dir, 'config.json')} is a model config, not a tokenizer; give its directory ${dir} or ${join(dir, 'tokenizer.json')}` });
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ a: [1] }));
    assert.throws(() => loadTokenizer(join(dir, 'other.json')), { message: 'other.json: (root)["a"] must be a non-negative integer, got an array' });
    writeFileSync(join(dir, 'mine.json'), JSON.stringify({ a: 0, b: 1 }));
    assert.throws(() => loadTokenizer(join(dir, 'mine.json')), { message: 'merges.txt: line 2 makes "ab", which is not in mine.json' });
    assert.equal(loadTokenizer(join(dir, 'vocab.json')).vocabSize, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
