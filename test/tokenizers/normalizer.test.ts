import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BertNormalizer, isChineseChar, originalRange, identityNormalized } from '../../src/tokenizers/normalizer.ts';
import { bertPreTokenize, isBertPunctuation } from '../../src/tokenizers/bert-pretokenizer.ts';
import { seededRandom as rng } from '../helpers/seeded-random.ts';

/** Pieces that exercise every branch: accents (composed and combining), CJK incl. astral, emoji, controls, lone surrogates. */
const POOL = [
  'a', 'Z', 'q', ' ', '  ', '\t', '\n', '\r\n', '.', ',', '!', '$', '«', '»', '¿', '—', '\u3000', '\u00a0', '\u2028',
  'é', 'Ö', 'ñ', 'Å', 'e\u0301', 'q\u0323\u0301', 'q\u0301\u0323', '\u0301', 'ǅ', 'ẞ', 'ß', 'İ', 'Σ', 'ΟΔΟΣ', 'ﬁ',
  '今', '天', '𠀀', '𪜀', '丽', '한', 'ｶ', 'あ', '，', '。',
  '😀', '👍🏽', '👩\u200d👩\u200d👧', '🇫🇷', '❤️',
  '\u0000', '\u0007', '\u007f', '\u0085', '\u200b', '\ufeff', '\ufffd', '\u000b', '\u000c', '\u001f', '\ue000',
  '\ud800', '\udc00', '\udbff\u0041',
];

function randomText(next: () => number, pieces: number): string {
  let s = '';
  for (let i = 0; i < pieces; i++) s += POOL[Math.floor(next() * POOL.length)];
  return s;
}

const CONFIGS = [
  { lowercase: true },
  { lowercase: false },
  { lowercase: false, stripAccents: true },
  { lowercase: true, stripAccents: false },
  { cleanText: false, handleChineseChars: false, lowercase: true },
  { cleanText: false, lowercase: false },
];

test('HF semantics on hand-checked cases (uncased: lowercase + strip accents)', () => {
  const n = new BertNormalizer();
  assert.equal(n.effectiveStripAccents, true);
  assert.equal(n.normalize('Héllo Wörld, café naïve Ça'), 'hello world, cafe naive ca');
  // Control characters (Cc/Cf), NUL and U+FFFD are dropped; \t \n \r and other White_Space become ' '.
  assert.equal(n.normalize('a\u0000b\u200bc\u0007d\ufffde\ufeff\u0085f'), 'abcdef');
  assert.equal(n.normalize('a\tb\nc\r\nd\u3000e\u00a0f'), 'a b c  d e f');
  // Every CJK ideograph is surrounded by spaces; kana, hangul and CJK punctuation are not.
  assert.equal(n.normalize('BERT模型,好'), 'bert 模  型 , 好 ');
  assert.equal(n.normalize('あ，'), 'あ，');
  // Astral CJK Extension B is a Chinese character too.
  assert.equal(n.normalize('𠀀x'), ' 𠀀 x');
  // Rust's per-character lowercase: Σ is always σ (no final ς); İ → i + U+0307, whose mark is then stripped.
  assert.equal(n.normalize('ΟΔΟΣ'), 'οδοσ');
  assert.equal(n.normalize('İ'), 'i');
});

test('cased: no lowercase and, by default, no accent stripping; strip_accents can be forced either way', () => {
  const cased = new BertNormalizer({ lowercase: false });
  assert.equal(cased.effectiveStripAccents, false);
  assert.equal(cased.normalize('Héllo Wörld'), 'Héllo Wörld');
  assert.equal(new BertNormalizer({ lowercase: false, stripAccents: true }).normalize('Héllo'), 'Hello');
  assert.equal(new BertNormalizer({ lowercase: true, stripAccents: false }).normalize('Héllo'), 'héllo');
});

test('without clean_text lone surrogates become U+FFFD; with it they are dropped', () => {
  assert.equal(new BertNormalizer({ cleanText: false, lowercase: false }).normalize('a\ud800b\udc00'), 'a\ufffdb\ufffd');
  assert.equal(new BertNormalizer().normalize('a\ud800b\udc00'), 'ab');
  assert.equal(new BertNormalizer({ cleanText: false, lowercase: false }).normalizeWithOffsets('a\ud800b').text, 'a\ufffdb');
});

test('isChineseChar uses the ranges of HF _is_chinese_char', () => {
  for (const cp of [0x4e00, 0x9fff, 0x3400, 0x4dbf, 0x20000, 0x2a6df, 0x2a700, 0x2b73f, 0x2b740, 0x2b81f, 0x2b820, 0x2ceaf, 0xf900, 0xfaff, 0x2f800, 0x2fa1f]) {
    assert.equal(isChineseChar(cp), true, cp.toString(16));
  }
  for (const cp of [0x4dff, 0x3041, 0xac00, 0xff0c, 0x3002, 0x2a6e0, 0x2ceb0, 0x2fa20, 0x41]) assert.equal(isChineseChar(cp), false, cp.toString(16));
});

test('normalize and normalizeWithOffsets agree on 3000 random strings, every configuration', () => {
  const next = rng(1234);
  for (let i = 0; i < 500; i++) {
    const text = randomText(next, 1 + Math.floor(next() * 30));
    for (const cfg of CONFIGS) {
      const n = new BertNormalizer(cfg);
      const withOffsets = n.normalizeWithOffsets(text);
      assert.equal(withOffsets.text, n.normalize(text), `${JSON.stringify(cfg)} on ${JSON.stringify(text)}`);
      assert.equal(withOffsets.starts.length, withOffsets.text.length);
    }
  }
});

test('alignments point at the original characters each normalized unit came from', () => {
  const n = new BertNormalizer();
  const text = 'Héllo 今天 😀 e\u0301! İx';
  const norm = n.normalizeWithOffsets(text);
  assert.equal(norm.text, 'hello  今  天  😀 e! ix');
  const at = (sub: string, from = 0): string => {
    const i = norm.text.indexOf(sub, from);
    const [s, e] = originalRange(norm, i, i + sub.length);
    return text.slice(s, e);
  };
  assert.equal(at('hello'), 'Héllo');
  assert.equal(at('今'), '今');
  assert.equal(at('😀'), '😀');
  assert.equal(at('e!'), 'e\u0301!');
  assert.equal(at('ix'), 'İx');
  assert.equal(at('i', norm.text.indexOf('ix')), 'İ');
  // Every unit's range is inside the text and non-empty, and ranges never go backwards.
  const next = rng(99);
  for (let k = 0; k < 300; k++) {
    const t = randomText(next, 20);
    const m = new BertNormalizer({ lowercase: k % 2 === 0 }).normalizeWithOffsets(t);
    for (let u = 0; u < m.text.length; u++) {
      assert.ok(m.starts[u] >= 0 && m.starts[u] < m.ends[u] && m.ends[u] <= t.length, JSON.stringify(t));
      if (u > 0) assert.ok(m.starts[u] >= m.starts[u - 1] && m.ends[u] >= m.ends[u - 1], JSON.stringify(t));
    }
  }
});

test('printable ASCII takes the one-to-one path: same text as normalize, identity alignment', () => {
  const text = 'Hello\tWORLD\r\n!';
  const m = new BertNormalizer().normalizeWithOffsets(text);
  assert.equal(m.text, 'hello world  !');
  assert.equal(m.text, new BertNormalizer().normalize(text));
  assert.deepEqual([...m.starts], [...text].map((_, i) => i));
  assert.deepEqual([...m.ends], [...text].map((_, i) => i + 1));
  assert.equal(new BertNormalizer({ lowercase: false, cleanText: false }).normalizeWithOffsets(text).text, text);
});

test('identityNormalized keeps surrogate pairs together', () => {
  const id = identityNormalized('a😀b');
  assert.deepEqual([...id.starts], [0, 1, 1, 3]);
  assert.deepEqual([...id.ends], [1, 3, 3, 4]);
});

test('fromJSON/toJSON use HF field names; bad fields are named', () => {
  const n = BertNormalizer.fromJSON({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: null, lowercase: false });
  assert.deepEqual(n.toJSON(), { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: false, strip_accents: null, lowercase: false });
  assert.equal(BertNormalizer.fromJSON({ type: 'BertNormalizer' }).lowercase, true);
  assert.throws(() => BertNormalizer.fromJSON({ type: 'BertNormalizer', lowercase: 'yes' }), /normalizer\.lowercase/);
  assert.throws(() => BertNormalizer.fromJSON({ type: 'BertNormalizer', strip_accents: 1 }), /normalizer\.strip_accents/);
  assert.throws(() => BertNormalizer.fromJSON({ type: 'NFKC' }), /normalizer\.type/);
  assert.throws(() => BertNormalizer.fromJSON([]), /normalizer/);
});

test('BertPreTokenizer: whitespace removed, every punctuation character alone, offsets into its input', () => {
  const text = "$100 3.14 a-b U.S. «quoted» ¿qué? don't x^2+y|z~w";
  const words = bertPreTokenize(text);
  assert.deepEqual(words.map((w) => w.text), [
    '$', '100', '3', '.', '14', 'a', '-', 'b', 'U', '.', 'S', '.', '«', 'quoted', '»', '¿', 'qué', '?', 'don', "'", 't',
    'x', '^', '2', '+', 'y', '|', 'z', '~', 'w',
  ]);
  for (const w of words) assert.equal(text.slice(w.start, w.end), w.text);
  // ASCII symbols count (HF's is_ascii_punctuation), non-ASCII symbols (S*) do not; P* does.
  for (const ch of ['$', '+', '<', '=', '>', '^', '`', '|', '~', '@', '«', '¿', '、', '。', '，', '—', '_']) assert.equal(isBertPunctuation(ch), true, ch);
  for (const ch of ['a', '1', '€', '©', '😀', ' ', '\u0301']) assert.equal(isBertPunctuation(ch), false, ch);
  assert.deepEqual(bertPreTokenize('a\u2028b\u3000c\u00a0d').map((w) => w.text), ['a', 'b', 'c', 'd']);
  assert.deepEqual(bertPreTokenize('😀👍🏽!').map((w) => w.text), ['😀👍🏽', '!']);
  assert.deepEqual(bertPreTokenize('   '), []);
});
