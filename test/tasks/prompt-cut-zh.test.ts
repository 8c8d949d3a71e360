import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { applyTemplate } from '../../src/tasks/prompt.ts';

test('a Chinese text cut to the prompt budget never ends in half a character (U+FFFD)', () => {
  // 鱻 is 3 UTF-8 bytes and too rare to be one token: one byte token each.
  const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 280, texts: Array(20).fill('这部电影真好看。'), minFrequency: 2 });
  const perChar = tokenizer.encode('鱻', null, { addSpecialTokens: false }).ids.length;
  assert.ok(perChar > 1 && 8 % perChar !== 0, `鱻 is ${perChar} tokens: a budget of 8 must cut one`);
  const text = '鱻'.repeat(10);
  // Budget: max(8, maxLength - template tokens - 2) = 8 tokens of the text.
  const [x] = applyTemplate(tokenizer, [{ text, label: '正面', id: 'a' }], '{text}', 4);
  assert.equal(x!.text, '鱻'.repeat(Math.floor(8 / perChar)));
});
