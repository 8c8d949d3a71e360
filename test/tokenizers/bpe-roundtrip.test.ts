/** BPE round trips and encoding details: decode(encode(s)) === s, offsets, merge algorithms, pairs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { byteLevelToBytes, utf8Encode } from '../../src/tokenizers/bytelevel.ts';
import { BpeTokenizer } from '../../src/tokenizers/bpe.ts';
import { join } from 'node:path';
import { GPT3_ENCODER_DIR, INVALID, TORTURE, loadGpt2, randomUnicodeString } from './bpe-fixtures.ts';

test('decode(encode(s)) === s for 10,000 random Unicode strings (astral characters included)', () => {
  const gpt2 = loadGpt2();
  const rng = new Rng(1234);
  let astral = 0;
  for (let i = 0; i < 10_000; i++) {
    const s = randomUnicodeString(rng, 40);
    if (/[\u{10000}-\u{10ffff}]/u.test(s)) astral++;
    const ids = gpt2.encodeIds(s);
    assert.equal(gpt2.decode(ids), s, JSON.stringify(s));
    if (i % 10 === 0) assert.deepEqual(gpt2.encode(s).ids, Array.from(ids), JSON.stringify(s));
  }
  assert.ok(astral > 2000, `only ${astral} strings had astral characters`);
});

test('strings with lone surrogates round-trip to their well-formed version', () => {
  const gpt2 = loadGpt2();
  const rng = new Rng(99);
  for (let i = 0; i < 1000; i++) {
    const chars = [...randomUnicodeString(rng, 12)];
    chars.splice(rng.int(chars.length + 1), 0, String.fromCharCode(0xd800 + rng.int(0x800)));
    const s = chars.join('');
    assert.equal(gpt2.decode(gpt2.encodeIds(s)), s.replace(/\p{Cs}/gu, '\ufffd'), JSON.stringify(s));
  }
  for (const s of INVALID) assert.doesNotThrow(() => gpt2.encode(s, s, { maxLength: 4, padding: false }));
});

test('offsets point at the source characters of every token', () => {
  const gpt2 = loadGpt2();
  for (const s of [...TORTURE, 'Hello world, it\'s 😀 a test']) {
    const enc = gpt2.encode(s);
    let covered = 0;
    enc.offsets.forEach(([a, b], i) => {
      assert.ok(0 <= a && a <= b && b <= s.length, `${JSON.stringify(s)} token ${i}: [${a}, ${b}]`);
      // The token's bytes are a slice of the UTF-8 of the characters it points at.
      const bytes = Buffer.from(byteLevelToBytes(enc.tokens[i])!);
      assert.ok(Buffer.from(s.slice(a, b)).includes(bytes), `${JSON.stringify(s)} token ${i} ${JSON.stringify(enc.tokens[i])}`);
      covered = Math.max(covered, b);
    });
    assert.equal(covered, s.length);
  }
  const enc = gpt2.encode('Hello world, it\'s 😀');
  assert.deepEqual(enc.tokens, ['Hello', 'Ġworld', ',', 'Ġit', "'s", 'ĠðŁĺ', 'Ģ']);
  assert.deepEqual(enc.offsets, [[0, 5], [5, 11], [11, 12], [12, 15], [15, 17], [17, 20], [18, 20]]);
  assert.deepEqual(enc.attentionMask, [1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(enc.sequenceIds, [0, 0, 0, 0, 0, 0, 0]);
});

test('long words: the heap algorithm and the array algorithm agree', () => {
  const gpt2 = loadGpt2();
  const rng = new Rng(5);
  const buf = new Uint8Array(3 * 3000);
  const words = ['a'.repeat(10_000), 'ab'.repeat(3000), '9'.repeat(5000), 'supercalifragilisticexpialidocious'.repeat(200)];
  for (let i = 0; i < 300; i++) words.push(randomUnicodeString(rng, 60).replace(/\s/g, ''));
  for (const w of words) {
    const bytes = w.length * 3 <= buf.length ? buf : new Uint8Array(w.length * 3);
    const n = utf8Encode(w, 0, w.length, bytes);
    const short = gpt2.model.mergeBytes(bytes, n, Infinity);
    const long = gpt2.model.mergeBytes(bytes, n, 0);
    assert.deepEqual(Array.from(long), Array.from(short), JSON.stringify(w.slice(0, 40)));
  }
  const big = 'a'.repeat(100_000);
  const t = performance.now();
  const ids = gpt2.encodeIds(big);
  assert.ok(performance.now() - t < 2000, 'a 100,000-letter word must not be quadratic');
  assert.equal(gpt2.decode(ids), big);
});

test('pairs: type ids, truncation longest-first, padding (with an added pad token)', () => {
  const gpt2 = loadGpt2();
  const pair = gpt2.encode('Hello world', 'How are you today?');
  assert.deepEqual(pair.ids, [...Array.from(gpt2.encodeIds('Hello world')), ...Array.from(gpt2.encodeIds('How are you today?'))]);
  assert.deepEqual(pair.typeIds, [0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(pair.sequenceIds, [0, 0, 1, 1, 1, 1, 1]);
  const cut = gpt2.encode('Hello world', 'How are you today?', { maxLength: 5 });
  assert.deepEqual(cut.typeIds, [0, 0, 1, 1, 1]);
  assert.throws(() => gpt2.encode('a', null, { maxLength: 8, padding: 'max_length' }), /pad token/);

  const tok = BpeTokenizer.fromFiles(join(GPT3_ENCODER_DIR, 'encoder.json'), join(GPT3_ENCODER_DIR, 'vocab.bpe'), {
    specialTokens: ['<|endoftext|>', '<|pad|>'], roles: { pad: '<|pad|>', eos: '<|endoftext|>' },
  });
  assert.equal(tok.vocabSize, 50258);
  const batch = tok.encodeBatch(['Hello', 'Hello world, again'], { padding: 'longest' });
  assert.deepEqual(batch[0].ids, [15496, 50257, 50257, 50257]);
  assert.deepEqual(batch[0].attentionMask, [1, 0, 0, 0]);
  assert.deepEqual(batch[0].specialTokensMask, [0, 1, 1, 1]);
  assert.deepEqual(batch[1].ids, [15496, 995, 11, 757]);
  const left = tok.encode('Hello', null, { maxLength: 3, padding: 'max_length', paddingSide: 'left' });
  assert.deepEqual(left.ids, [50257, 50257, 15496]);
  assert.deepEqual(left.offsets, [[0, 0], [0, 0], [0, 5]]);
  assert.equal(tok.decode(left.ids, { skipSpecialTokens: true }), 'Hello');
  assert.equal(tok.decode(left.ids), '<|pad|><|pad|>Hello');
});
