import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { TextStream, withoutIncompleteTail } from '../../src/infer/decode.ts';

// A byte-level BPE too small to hold 𪚥 (4 UTF-8 bytes) or 龘 (3) as one token: both are split into
// byte tokens, as rare characters are by any BPE trained on Chinese with a modest vocabulary.
const texts = Array(20).fill('今天天气真好，我们去公园吧。').concat(['𪚥龘']);
const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 300, texts, minFrequency: 2 });
const rare = tokenizer.encode('𪚥', null, { addSpecialTokens: false }).ids;

function run(ids: readonly number[], finish: 'length' | 'stop'): { pieces: string[]; text: string } {
  const stream = new TextStream(tokenizer, [], 0);
  const pieces: string[] = [];
  ids.forEach((id, i) => {
    const ev = stream.push(id, i === ids.length - 1 ? finish : undefined);
    if (ev) pieces.push(ev.text);
  });
  return { pieces, text: stream.result.text };
}

test('the test tokenizer splits 𪚥 into byte tokens', () => {
  assert.ok(rare.length >= 2, `𪚥 is ${rare.length} token(s)`);
  assert.equal(tokenizer.decode(rare.slice(0, -1)), '\uFFFD', 'its first bytes alone decode to U+FFFD');
});

test('a character split over byte tokens streams whole, never as U+FFFD', () => {
  const ids = tokenizer.encode('好𪚥龘吧', null, { addSpecialTokens: false }).ids;
  const { pieces, text } = run(ids, 'length');
  assert.equal(text, '好𪚥龘吧');
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((p) => !p.includes('\uFFFD')), JSON.stringify(pieces));
});

test('a generation that ends inside a character (max_tokens, end-of-text) leaves the half character out', () => {
  const start = tokenizer.encode('今天', null, { addSpecialTokens: false }).ids;
  for (const finish of ['length', 'stop'] as const) {
    const { pieces, text } = run([...start, ...rare.slice(0, -1)], finish);
    assert.equal(text, '今天', finish);
    assert.equal(pieces.join(''), '今天', finish);
  }
  assert.equal(withoutIncompleteTail('今天\uFFFD'), '今天');
  assert.equal(withoutIncompleteTail('今\uFFFD天'), '今\uFFFD天', 'an invalid sequence inside the text is what the model produced');
});
