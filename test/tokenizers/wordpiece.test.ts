import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { BertNormalizer } from '../../src/tokenizers/normalizer.ts';
import { bertPreTokenize } from '../../src/tokenizers/bert-pretokenizer.ts';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
/** A small bert-base-uncased-like vocabulary (ids: specials 0..4, then in order). */
const WORDS = [
  'hello', ',', 'world', '!', 'una', '##ff', '##able', 'the', 'cafe', 'naive', 'ca', 'va', '?', '.', 'un', '##believ',
  'i', "'", 't', 'don', 'we', 'can', 'go', 'a', '##b', '##c', 'b', 'c', 'x', '##x', '😀', '##😀', '##👍🏽', 'resume',
  '今', '天', '气', '真', '好', '，', '我', '们', '去', '公', '园', '吧', '。', '𠀀', '𠀁', '-',
];
const VOCAB = [...SPECIALS, ...WORDS];
const tok = new WordPieceTokenizer({ vocab: VOCAB });
const id = (t: string): number => VOCAB.indexOf(t);

/** Each token's source text, normalized, must spell the token (without "##"). */
function assertOffsetsSpellTokens(t: WordPieceTokenizer, text: string): void {
  const enc = t.encode(text, null, { addSpecialTokens: false });
  const norm = t.normalizer ?? new BertNormalizer({ cleanText: false, handleChineseChars: false, lowercase: false });
  let last = 0;
  enc.tokens.forEach((token, i) => {
    const [s, e] = enc.offsets[i];
    assert.ok(s >= last && e > s && e <= text.length, `offsets ${s},${e} of ${token} in ${JSON.stringify(text)}`);
    last = s;
    if (token === '[UNK]') return;
    const surface = token.startsWith('##') ? token.slice(2) : token;
    assert.equal(norm.normalize(text.slice(s, e)).trim(), surface, `token ${token} at ${s},${e} of ${JSON.stringify(text)}`);
  });
}

test('BertTokenizer example: "Hello, world! Unaffable" → [CLS] hello , world ! una ##ff ##able [SEP]', () => {
  const text = 'Hello, world! Unaffable';
  const enc = tok.encode(text);
  assert.deepEqual(enc.tokens, ['[CLS]', 'hello', ',', 'world', '!', 'una', '##ff', '##able', '[SEP]']);
  assert.deepEqual(enc.ids, [2, 5, 6, 7, 8, 9, 10, 11, 3]);
  assert.deepEqual(enc.offsets, [[0, 0], [0, 5], [5, 6], [7, 12], [12, 13], [14, 17], [17, 19], [19, 23], [0, 0]]);
  assert.deepEqual(enc.typeIds, [0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(enc.attentionMask, [1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(enc.specialTokensMask, [1, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(enc.sequenceIds, [null, 0, 0, 0, 0, 0, 0, 0, null]);
  assert.equal(tok.decode(enc.ids), '[CLS] hello, world! unaffable [SEP]');
  assert.equal(tok.decode(enc.ids, { skipSpecialTokens: true }), 'hello, world! unaffable');
});

test('greedy longest match first: "unbeliev" is un ##believ, and a word with any unmatched rest is one [UNK]', () => {
  assert.deepEqual(tok.encode('unbeliev', null, { addSpecialTokens: false }).tokens, ['un', '##believ']);
  // "una" matches first but "##q" never does: the whole word becomes [UNK] (not una + [UNK]).
  assert.deepEqual(tok.encode('unaq', null, { addSpecialTokens: false }).tokens, ['[UNK]']);
  assert.deepEqual(tok.encode('abcx xx', null, { addSpecialTokens: false }).tokens, ['a', '##b', '##c', '##x', 'x', '##x']);
});

test('words over max_input_chars_per_word (100 code points) are [UNK]; exactly 100 is fine', () => {
  const w100 = 'x'.repeat(100);
  assert.deepEqual(tok.encode(w100, null, { addSpecialTokens: false }).ids, [id('x'), ...Array(99).fill(id('##x'))]);
  const enc = tok.encode('go ' + 'x'.repeat(101) + ' go', null, { addSpecialTokens: false });
  assert.deepEqual(enc.tokens, ['go', '[UNK]', 'go']);
  assert.deepEqual(enc.offsets[1], [3, 104]);
  // Code points, not UTF-16 units: 60 emoji are 120 units but only 60 characters.
  const emoji = '😀'.repeat(60);
  assert.deepEqual(tok.encode(emoji, null, { addSpecialTokens: false }).ids, [id('😀'), ...Array(59).fill(id('##😀'))]);
  const small = new WordPieceTokenizer({ vocab: VOCAB, maxInputCharsPerWord: 3 });
  assert.deepEqual(small.encode('abc abcx', null, { addSpecialTokens: false }).tokens, ['a', '##b', '##c', '[UNK]']);
});

test('accents are stripped when lowercasing; a cased tokenizer keeps them', () => {
  const enc = tok.encode('Café NAÏVE ça va? Résumé', null, { addSpecialTokens: false });
  assert.deepEqual(enc.tokens, ['cafe', 'naive', 'ca', 'va', '?', 'resume']);
  assert.deepEqual(enc.offsets, [[0, 4], [5, 10], [11, 13], [14, 16], [16, 17], [18, 24]]);
  const cased = new WordPieceTokenizer({ vocab: [...VOCAB, 'Café'], normalizer: { lowercase: false } });
  assert.deepEqual(cased.encode('Café cafe', null, { addSpecialTokens: false }).tokens, ['Café', 'cafe']);
  // Decomposed input (e + U+0301) gives the same tokens; the stripped mark belongs to no token (as in HF),
  // while a precomposed é is one source character and so inside its token's span.
  const nfd = tok.encode('Cafe\u0301!', null, { addSpecialTokens: false });
  assert.deepEqual(nfd.tokens, ['cafe', '!']);
  assert.deepEqual(nfd.offsets, [[0, 4], [5, 6]]);
  assert.deepEqual(tok.encode('Café!', null, { addSpecialTokens: false }).offsets, [[0, 4], [4, 5]]);
});

test('Chinese characters are split individually (incl. astral Extension B); control characters are dropped', () => {
  const enc = tok.encode('今天天气真好', null, { addSpecialTokens: false });
  assert.deepEqual(enc.tokens, ['今', '天', '天', '气', '真', '好']);
  assert.deepEqual(enc.offsets, [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]);
  const astral = tok.encode('𠀀𠀁x', null, { addSpecialTokens: false });
  assert.deepEqual(astral.tokens, ['𠀀', '𠀁', 'x']);
  assert.deepEqual(astral.offsets, [[0, 2], [2, 4], [4, 5]]);
  const ctl = tok.encode('hel\u0000lo\u200b wor\u0007ld\ufeff\t!', null, { addSpecialTokens: false });
  assert.deepEqual(ctl.tokens, ['hello', 'world', '!']);
  assert.deepEqual(ctl.offsets, [[0, 6], [8, 14], [16, 17]]);
});

test('[MASK] and the other specials are atomic in raw text; their neighbours are tokenized normally', () => {
  const text = '今天天气真[MASK]，我们去公园吧。';
  const enc = tok.encode(text);
  assert.deepEqual(enc.tokens, ['[CLS]', '今', '天', '天', '气', '真', '[MASK]', '，', '我', '们', '去', '公', '园', '吧', '。', '[SEP]']);
  assert.deepEqual(enc.offsets[6], [5, 11]);
  assert.equal(text.slice(...enc.offsets[6]), '[MASK]');
  assert.equal(enc.specialTokensMask[6], 1);
  // HF decodes with a space between CJK tokens; compactCjk (Primer's option) restores the original.
  const ids = tok.encode(text, null, { addSpecialTokens: false }).ids;
  assert.equal(tok.decode(ids), '今 天 天 气 真 [MASK] ， 我 们 去 公 园 吧 。');
  assert.equal(tok.decode(ids, { compactCjk: true }), text);
  // A special token glued to a word, and lowercase "[mask]" (specials are matched in the raw text only).
  assert.deepEqual(tok.encode('go[SEP]we', null, { addSpecialTokens: false }).tokens, ['go', '[SEP]', 'we']);
  assert.deepEqual(tok.encode('[mask]', null, { addSpecialTokens: false }).tokens, ['[UNK]', '[UNK]', '[UNK]']);
});

test('pair encoding: [CLS] A [SEP] B [SEP] with token type ids, offsets into each own text, truncation and padding', () => {
  const enc = tok.encode('Hello world', 'We can go!');
  assert.deepEqual(enc.tokens, ['[CLS]', 'hello', 'world', '[SEP]', 'we', 'can', 'go', '!', '[SEP]']);
  assert.deepEqual(enc.typeIds, [0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(enc.sequenceIds, [null, 0, 0, null, 1, 1, 1, 1, null]);
  assert.deepEqual(enc.offsets, [[0, 0], [0, 5], [6, 11], [0, 0], [0, 2], [3, 6], [7, 9], [9, 10], [0, 0]]);
  const cut = tok.encode('Hello world', 'We can go!', { maxLength: 7 });
  assert.deepEqual(cut.tokens, ['[CLS]', 'hello', 'world', '[SEP]', 'we', 'can', '[SEP]']);
  const padded = tok.encodeBatch(['Hello', ['we', 'go']], { padding: 'longest' });
  assert.deepEqual(padded[0].tokens, ['[CLS]', 'hello', '[SEP]', '[PAD]', '[PAD]']);
  assert.deepEqual(padded[0].attentionMask, [1, 1, 1, 0, 0]);
  assert.deepEqual(padded[1].ids, [2, id('we'), 3, id('go'), 3]);
});

test('decode: ## pieces join, HF cleanup of spaces before punctuation and in contractions', () => {
  const ids = tok.encode("Hello, world! I don't go. Can we?", null, { addSpecialTokens: false }).ids;
  assert.equal(tok.decode(ids), "hello, world! i don't go. can we?");
  assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), "hello , world ! i don ' t go . can we ?");
  assert.throws(() => tok.decode([9999]), /9999/);
});

test('round trip: decode(encode(s)) is the normalized, whitespace-collapsed text (covered vocabulary)', () => {
  const texts = [
    'Hello,   world!\n\nUnaffable…'.replace('…', '.'),
    "  HELLO\tworld! I don't go.  ",
    'Café, naïve ça va? Résumé.',
    '今天天气真好，我们去公园吧。',
    'hello 😀😀👍🏽 world',
    'un-unbeliev a-b-c 𠀀𠀁',
  ];
  for (const text of texts) {
    const enc = tok.encode(text, null, { addSpecialTokens: false });
    assert.ok(!enc.tokens.includes('[UNK]'), `${JSON.stringify(text)} must be covered: ${enc.tokens.join(' ')}`);
    // Without cleanup, decode gives exactly the pre-tokens of the normalized text joined by one space.
    const words = bertPreTokenize(tok.normalizer!.normalize(text)).map((w) => w.text);
    assert.equal(tok.decode(enc.ids, { cleanUpTokenizationSpaces: false }), words.join(' '), JSON.stringify(text));
    assertOffsetsSpellTokens(tok, text);
  }
  // With HF's cleanup, natural English punctuation comes back attached as written.
  const natural = "Hello, world! I don't go. Can we?";
  assert.equal(tok.decode(tok.encode(natural, null, { addSpecialTokens: false }).ids), tok.normalizer!.normalize(natural).replace(/\s+/g, ' ').trim());
  const chinese = '今天天气真好，我们去公园吧。';
  assert.equal(tok.decode(tok.encode(chinese, null, { addSpecialTokens: false }).ids, { compactCjk: true }), chinese);
});

test('offsets point at the source characters on English, accented, Chinese, astral and emoji text', () => {
  const texts = [
    'Hello, world! Unaffable',
    'CAFÉ naïve, RÉSUMÉ. Ça va?',
    'Cafe\u0301 re\u0301sume\u0301',
    '今天天气真好，我们去公园吧。',
    '𠀀x𠀁 😀😀 x😀👍🏽',
    '  we\u3000go\u00a0\u00a0hello\u2028world  ',
    'İ I x\u0000x\u200bx',
  ];
  for (const text of texts) assertOffsetsSpellTokens(tok, text);
  const noNorm = new WordPieceTokenizer({ vocab: [...VOCAB, 'Hello', 'Café'], normalizer: null });
  assertOffsetsSpellTokens(noNorm, 'Hello Café, 今天 😀');
});

test('encode never throws on invalid input: lone surrogates, controls, noise', () => {
  let seed = 7;
  const next = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const configs = [tok, new WordPieceTokenizer({ vocab: VOCAB, normalizer: null }), new WordPieceTokenizer({ vocab: VOCAB, normalizer: { cleanText: false, lowercase: false } })];
  for (let k = 0; k < 400; k++) {
    let s = '';
    const len = Math.floor(next() * 40);
    for (let i = 0; i < len; i++) {
      const r = next();
      s += r < 0.15 ? String.fromCharCode(0xd800 + Math.floor(next() * 0x800)) : r < 0.3 ? String.fromCharCode(Math.floor(next() * 32)) : r < 0.5 ? String.fromCodePoint(Math.floor(next() * 0x10ffff)) : 'hello [MASK] 今天 é,'[Math.floor(next() * 19)];
    }
    for (const t of configs) {
      const enc = t.encode(s, s.slice(3), { maxLength: 32, padding: 'max_length' });
      assert.equal(enc.ids.length, 32);
      for (const [a, b] of enc.offsets) assert.ok(a >= 0 && a <= b && b <= s.length);
      assert.equal(typeof t.decode(enc.ids), 'string');
    }
  }
  // clean_text drops the lone surrogate (category Cs) like any control character.
  const lone = tok.encode('a\ud800b', null, { addSpecialTokens: false });
  assert.deepEqual(lone.tokens, ['a', '##b']);
  assert.deepEqual(lone.offsets, [[0, 1], [2, 3]]);
  assert.deepEqual(new WordPieceTokenizer({ vocab: VOCAB, normalizer: null }).encode('a\ud800b x').tokens, ['[CLS]', '[UNK]', 'x', '[SEP]']);
  assert.deepEqual(tok.encode('\ud83d x').tokens, ['[CLS]', 'x', '[SEP]']);
  assert.deepEqual(tok.encode('').tokens, ['[CLS]', '[SEP]']);
});

test('vocabulary accessors and encodeIds fast path agree with encode', () => {
  assert.equal(tok.vocabSize, VOCAB.length);
  assert.equal(tok.tokenToId('##ff'), id('##ff'));
  assert.equal(tok.idToToken(id('una')), 'una');
  assert.equal(tok.tokenToId('nope'), undefined);
  assert.deepEqual(tok.specialTokens, { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' });
  for (const text of ['Hello, world! Unaffable', '今天天气真[MASK]，我们去公园吧。', 'Café 😀👍🏽 x\ud800']) {
    assert.deepEqual([...tok.encodeIds(text)], tok.encode(text, null, { addSpecialTokens: false }).ids);
  }
});
