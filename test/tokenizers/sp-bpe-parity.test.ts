/**
 * SentencePiece-style BPE (Llama 2 / TinyLlama legacy layout, and the newer Metaspace layout) against
 * @huggingface/tokenizers on tokenizer.json files built per the HF spec (llama-fixtures.ts): ids, decode
 * and round trip on the GPT-2 parity test's texts and Chinese, byte fallback for characters the
 * vocabulary lacks (emoji, rare CJK), unk fusing, offsets and file round trip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/util/random.ts';
import { loadTokenizer, tokenizerFromJSON } from '../../src/tokenizers/index.ts';
import { SentencePieceBpeTokenizer } from '../../src/tokenizers/sp-bpe.ts';
import { runDecoders } from '../../src/tokenizers/sp-decoders.ts';
import { INVALID, TORTURE, WHITESPACE_DIFFERENCES, gutenbergBooks, randomUnicodeString } from './bpe-fixtures.ts';
import { CHINESE_TEXT, llama2Json, metaspaceJson, reference, sentencePieceVocab } from './llama-fixtures.ts';

const LAYOUTS = [
  { name: 'Llama 2 layout (Prepend + Replace normalizer)', json: () => llama2Json(), eatsLeadingSpace: false },
  // Its decoder drops the first token's leading "▁" whether prepended or typed: " x" decodes to "x", as in HF.
  { name: 'Metaspace layout (prepend_scheme first)', json: () => metaspaceJson(), eatsLeadingSpace: true },
];

function texts(seed: number, randomCount: number): string[] {
  const rng = new Rng(seed);
  const out = [...TORTURE, ...INVALID, ...WHITESPACE_DIFFERENCES, TORTURE.join(''), TORTURE.join(' \n'), ...CHINESE_TEXT.split('\n'), CHINESE_TEXT];
  out.push('Hello<s>world</s> <s> x', '<s>Hello', ' leading space', 'emoji 😀🙃 and 𠀀𪚥 rare CJK', '\u2581already\u2581metaspace');
  for (let i = 0; i < randomCount; i++) out.push(randomUnicodeString(rng, 30));
  return out;
}

for (const layout of LAYOUTS) {
  test(`${layout.name}: same ids and decode as @huggingface/tokenizers on the torture set, Chinese and 3,000 random strings`, () => {
    const json = layout.json();
    const ours = tokenizerFromJSON(json);
    assert.ok(ours instanceof SentencePieceBpeTokenizer);
    const ref = reference(json);
    let fallbacks = 0;
    for (const s of texts(5, 3000)) {
      assert.deepEqual(ours.encode(s).ids, ref.encode(s).ids, JSON.stringify(s));
      const plain = ref.encode(s, { add_special_tokens: false }).ids;
      assert.deepEqual(Array.from(ours.encodeIds(s)), plain, JSON.stringify(s));
      if (plain.length === 0) continue;
      fallbacks += plain.filter((id: number) => id >= 3 && id < 259).length;
      const text = ours.decode(plain);
      // A leading U+FEFF in a byte run: the JS library's TextDecoder drops it as a BOM; the Rust crate (and we) keep it.
      if (!s.includes('\ufeff')) {
        assert.equal(text, ref.decode(plain), JSON.stringify(s));
        assert.equal(ours.decode(plain, { skipSpecialTokens: true }), ref.decode(plain, { skip_special_tokens: true }), JSON.stringify(s));
      }
      // Valid text comes back exactly, apart from "▁" (read as a space) and the added-token sections.
      if (!/[\p{Cs}\u2581]|<\/?s>/u.test(s)) assert.equal(text, layout.eatsLeadingSpace && s.startsWith(' ') ? s.slice(1) : s, JSON.stringify(s));
    }
    assert.ok(fallbacks > 10_000, `byte-fallback tokens seen: ${fallbacks}`);
  });
}

test('Llama 2 layout: same ids as @huggingface/tokenizers on 100 KB of Gutenberg text, and it decodes back', () => {
  const json = llama2Json();
  const ours = tokenizerFromJSON(json) as SentencePieceBpeTokenizer;
  const ref = reference(json);
  for (const book of gutenbergBooks().slice(0, 2)) {
    const text = book.text.slice(30_000, 80_000);
    const expected = ref.encode(text).ids;
    const ids = ours.encode(text).ids;
    const at = ids.findIndex((id, i) => id !== expected[i]);
    assert.equal(at, -1, `${book.name}: first difference at token ${at}`);
    assert.equal(ids.length, expected.length);
    assert.ok(ids.length > 9_000);
    assert.equal(ours.decode(ids, { skipSpecialTokens: true }), text);
  }
});

test('byte fallback: characters missing from the vocabulary become their UTF-8 bytes, and decode back', () => {
  const tok = tokenizerFromJSON(llama2Json()) as SentencePieceBpeTokenizer;
  const byteId = (b: number) => 3 + b;
  // 😀 is F0 9F 98 80; 𪚥 (CJK Extension B) is F0 AA 9A A5; neither is a token.
  assert.equal(tok.tokenToId('😀'), undefined);
  const ids = Array.from(tok.encodeIds('😀𪚥'));
  assert.deepEqual(ids, [tok.tokenToId('\u2581')!, ...[0xf0, 0x9f, 0x98, 0x80, 0xf0, 0xaa, 0x9a, 0xa5].map(byteId)]);
  assert.equal(tok.decode(ids), '😀𪚥');
  const enc = tok.encode('a 😀', null, { addSpecialTokens: false });
  assert.deepEqual(enc.tokens.slice(-4), ['<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
  // Each byte token points at the whole character (2 UTF-16 units), as HF does.
  assert.deepEqual(enc.offsets.slice(-4), [[2, 4], [2, 4], [2, 4], [2, 4]]);
  assert.deepEqual(enc.offsets[0], [0, 1]);
  // Half a character: the Rust crate's ByteFallback gives one U+FFFD per byte of an invalid run.
  assert.equal(tok.decode([byteId(0xf0), byteId(0x9f), tok.tokenToId('a')!]), '\ufffd\ufffda');
});

test('without byte fallback, unknown characters become <unk>, consecutive ones fused (fuse_unk)', () => {
  const json = llama2Json();
  json.model.byte_fallback = false;
  const ours = tokenizerFromJSON(json) as SentencePieceBpeTokenizer;
  const ref = reference(json);
  for (const s of ['a 😀😀😀 b', '𠀀x𠀁', 'emoji 😀🙃 and 𠀀𪚥 rare CJK']) {
    assert.deepEqual(ours.encode(s).ids, ref.encode(s).ids, s);
  }
  const enc = ours.encode('a 😀😀😀 b', null, { addSpecialTokens: false });
  assert.deepEqual(enc.tokens, ['\u2581a', '\u2581', '<unk>', '\u2581b']);
  assert.deepEqual(enc.offsets[2], [2, 8]);
  json.model.fuse_unk = false;
  assert.equal(tokenizerFromJSON(json).encode('😀😀😀', null, { addSpecialTokens: false }).tokens.filter((t) => t === '<unk>').length, 3);
});

test('Llama 2 layout: offsets point into the original text; pairs get <s> before each sequence', () => {
  const tok = tokenizerFromJSON(llama2Json());
  const enc = tok.encode('Hello world');
  assert.deepEqual(enc.tokens, ['<s>', '\u2581Hello', '\u2581world']);
  assert.deepEqual(enc.offsets, [[0, 0], [0, 5], [5, 11]]);
  assert.deepEqual(tok.encode('Hi', 'there').ids, reference(llama2Json()).encode('Hi', { text_pair: 'there' }).ids);
  assert.equal(tok.decode(enc.ids), '<s> Hello world');
  assert.equal(tok.decode(enc.ids, { skipSpecialTokens: true }), 'Hello world');
  assert.deepEqual(tok.specialTokens, { unk: '<unk>', cls: '<s>', sep: '</s>', bos: '<s>', eos: '</s>' });
});

test('decoder steps: Replace, ByteFallback, Fuse, Strip and Metaspace as the HF chain applies them', () => {
  const llama2 = [
    { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ] as const;
  assert.equal(runDecoders(llama2, ['\u2581\u2581Hi', '<0xE4>', '<0xB8>', '<0xAD>', '\u2581x']), ' Hi中 x');
  assert.equal(runDecoders([{ type: 'Strip', content: 'x', start: 2, stop: 1 }], ['xxxaxx']), 'xax');
  assert.equal(runDecoders([{ type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true }], ['\u2581a\u2581b', '\u2581c']), 'a b c');
});

test('SentencePiece-style tokenizer.json: saved, loaded back (with tokenizer_config roles), same ids; bad files name the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-spbpe-'));
  try {
    for (const json of [llama2Json(), metaspaceJson()]) {
      const tok = tokenizerFromJSON(json) as SentencePieceBpeTokenizer;
      tok.save(dir);
      const back = loadTokenizer(dir);
      assert.ok(back instanceof SentencePieceBpeTokenizer);
      for (const s of [CHINESE_TEXT, ...TORTURE.slice(0, 40)]) assert.deepEqual(back.encode(s).ids, tok.encode(s).ids);
      const written = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
      assert.deepEqual(reference(written).encode(CHINESE_TEXT).ids, tok.encode(CHINESE_TEXT).ids);
      assert.equal(JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')).bos_token, '<s>');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const v = sentencePieceVocab();
  const bad: Array<[(j: Record<string, any>) => void, RegExp]> = [
    [(j) => (j.pre_tokenizer = { type: 'Whitespace' }), /pre_tokenizer\.type "Whitespace" is not supported for SentencePiece-style BPE/],
    [(j) => (j.decoder.decoders[3] = { type: 'CTC' }), /decoder\.decoders\[3\]\.type "CTC" is not supported/],
    [(j) => (j.normalizer.normalizers[0] = { type: 'Prepend' }), /normalizer\.normalizers\[0\]\.prepend must be a string/],
    [(j) => (j.model.merges[0] = 'nospace'), /model\.merges\[0\] must be "a b"/],
    [(j) => (j.model.unk_token = '<nope>'), /model\.unk_token "<nope>" is not in model\.vocab/],
  ];
  for (const [mutate, message] of bad) {
    const json = llama2Json(v);
    mutate(json);
    assert.throws(() => tokenizerFromJSON(json), (e: Error) => e.name === 'TokenizerFormatError' && message.test(e.message), String(message));
  }
});

test('Metaspace split: true cuts words before each "▁" (the Rust crate; the JS library never splits)', () => {
  const vocab = { '<unk>': 0, '\u2581': 1, a: 2, b: 3, '\u2581a': 4, '\u2581\u2581': 5, '\u2581b': 6 };
  const merges = [['\u2581', '\u2581'], ['\u2581', 'a'], ['\u2581', 'b']];
  const json = (split: boolean) => ({
    added_tokens: [], normalizer: null, post_processor: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split },
    model: { type: 'BPE', unk_token: '<unk>', fuse_unk: true, byte_fallback: false, vocab, merges },
  });
  const whole = tokenizerFromJSON(json(false));
  const words = tokenizerFromJSON(json(true));
  assert.deepEqual(whole.encode('a  b').tokens, ['\u2581a', '\u2581\u2581', 'b']);
  assert.deepEqual(words.encode('a  b').tokens, ['\u2581a', '\u2581', '\u2581b']);
  assert.deepEqual(words.encode('a  b').offsets, [[0, 1], [1, 2], [2, 4]]);
  assert.equal(words.decode(words.encode('a  b').ids), 'a  b');
});
