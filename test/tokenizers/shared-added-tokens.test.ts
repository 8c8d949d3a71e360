/** AddedVocabulary: atomic, leftmost-longest splitting with HF's lstrip / rstrip / single_word / normalized. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddedVocabulary, guessSpecialRoles, type TextPiece } from '../../src/tokenizers/added-tokens.ts';
import { freshGpt2, referenceEncode } from './bpe-fixtures.ts';

function show(text: string, pieces: TextPiece[]): Array<string | number> {
  return pieces.map((p) => (p.id >= 0 ? p.id : text.slice(p.start, p.end)));
}

test('splits raw text on added tokens, leftmost-longest, covering the text exactly', () => {
  const v = new AddedVocabulary([
    { id: 10, content: '<|end', special: true },
    { id: 11, content: '<|endoftext|>', special: true },
    { id: 12, content: '[MASK]', special: true },
    { id: 13, content: 'a.b', special: false },
  ]);
  const text = 'x<|endoftext|><|end|>[MASK][MASK] aXb a.b.';
  const pieces = v.split(text);
  assert.deepEqual(show(text, pieces), ['x', 11, 10, '|>', 12, 12, ' aXb ', 13, '.']);
  let at = 0;
  for (const p of pieces) {
    assert.equal(p.start, at);
    at = p.end;
  }
  assert.equal(at, text.length);
  assert.deepEqual(v.split(''), []);
  assert.deepEqual(new AddedVocabulary().split('plain'), [{ start: 0, end: 5, id: -1 }]);
  assert.equal(v.isSpecial(11), true);
  assert.equal(v.isSpecial(13), false);
  assert.equal(v.idLimit(), 14);
});

test('lstrip and rstrip swallow neighbouring whitespace; single_word needs word boundaries', () => {
  const v = new AddedVocabulary([
    { id: 1, content: '<mask>', lstrip: true, special: true },
    { id: 2, content: '[R]', rstrip: true },
    { id: 3, content: 'ing', single_word: true },
  ]);
  const text = 'a  <mask> b [R]   c ing sing ings _ing';
  const pieces = v.split(text);
  assert.deepEqual(show(text, pieces), ['a', 1, ' b ', 2, 'c ', 3, ' sing ings _ing']);
  assert.deepEqual(pieces[1], { start: 1, end: 9, id: 1 });
});

test('raw vs normalized tokens are matched in separate passes', () => {
  const v = new AddedVocabulary([
    { id: 1, content: '[CLS]', special: true }, // special: normalized false by default
    { id: 2, content: 'hello', special: false }, // user token: normalized true by default
  ]);
  assert.deepEqual(show('[CLS] hello', v.split('[CLS] hello', 'raw')), [1, ' hello']);
  assert.deepEqual(show('[CLS] hello', v.split('[CLS] hello', 'normalized')), ['[CLS] ', 2]);
  assert.deepEqual(show('[CLS] hello', v.split('[CLS] hello')), [1, ' ', 2]);
});

test('tokenizer.json added_tokens round-trip and errors name the field', () => {
  const json = [
    { id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 5, content: '<user>', single_word: true, lstrip: true, rstrip: false, normalized: true, special: false },
  ];
  assert.deepEqual(AddedVocabulary.fromJSON(json).toJSON(), json);
  assert.equal(AddedVocabulary.fromJSON(null).size, 0);
  assert.throws(() => AddedVocabulary.fromJSON([{ id: 1, content: '' }]), /added_tokens\[0\]\.content must not be empty/);
  assert.throws(() => AddedVocabulary.fromJSON([{ id: 1, content: 'x', lstrip: 'yes' }]), /added_tokens\[0\]\.lstrip must be true or false/);
  assert.throws(() => AddedVocabulary.fromJSON([{ id: 1, content: 'x' }, { id: 1, content: 'y' }]), /added_tokens\[1\]\.id 1 is already used by "x"/);
  assert.throws(() => AddedVocabulary.fromJSON({}), /added_tokens must be an array/);
});

test('user-added tokens are atomic in GPT-2: never split by the pre-tokenizer nor merged', () => {
  const gpt2 = freshGpt2();
  gpt2.added.add({ id: 50300, content: '<|user|>', special: true, normalized: false });
  gpt2.added.add({ id: 50301, content: 'New York', special: false });
  const text = 'Hi<|user|>I love New York!';
  const enc = gpt2.encode(text);
  assert.deepEqual(enc.ids, [...referenceEncode('Hi'), 50300, ...referenceEncode('I love '), 50301, ...referenceEncode('!')]);
  assert.equal(enc.tokens[1], '<|user|>');
  assert.deepEqual(enc.offsets[1], [2, 10]);
  assert.deepEqual(enc.specialTokensMask, [0, 1, 0, 0, 0, 0, 0]);
  assert.equal(gpt2.decode(enc.ids), text);
  assert.equal(gpt2.decode(enc.ids, { skipSpecialTokens: true }), 'HiI love New York!');
  assert.equal(gpt2.tokenToId('<|user|>'), 50300);
  assert.equal(gpt2.vocabSize, 50302);
});

test('special-token roles are guessed from the usual contents', () => {
  assert.deepEqual(guessSpecialRoles(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']), { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' });
  assert.deepEqual(guessSpecialRoles(['<s>', '</s>', '<pad>', '<unk>', '<mask>']), { pad: '<pad>', unk: '<unk>', cls: '<s>', sep: '</s>', mask: '<mask>', bos: '<s>', eos: '</s>' });
});
