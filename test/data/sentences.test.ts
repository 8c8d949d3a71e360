import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitSentences } from '../../src/data/sentences.ts';

const split = (t: string) => splitSentences(t, { trim: true });

test('English: terminators, abbreviations, initials, decimals, ellipses, quotes', () => {
  assert.deepEqual(split('Hello there. How are you? I am fine!'), ['Hello there.', 'How are you?', 'I am fine!']);
  assert.deepEqual(split('Mr. Smith met Dr. Jones at 3.30 p.m. yesterday. They talked.'), ['Mr. Smith met Dr. Jones at 3.30 p.m. yesterday.', 'They talked.']);
  assert.deepEqual(split('Fruits, e.g. apples, are sweet. The U.S. Army came. Pi is 3.14159 or so.'),
    ['Fruits, e.g. apples, are sweet.', 'The U.S. Army came.', 'Pi is 3.14159 or so.']);
  assert.deepEqual(split('J. K. Rowling wrote it. Well... I think so. Wait… what?'), ['J. K. Rowling wrote it.', 'Well... I think so.', 'Wait… what?']);
  assert.deepEqual(split('"Stop!" she cried. "Why?" he asked. Then silence.'), ['"Stop!" she cried.', '"Why?" he asked.', 'Then silence.']);
  assert.deepEqual(split('He said "I am done." She left (for good.) Bye.'), ['He said "I am done."', 'She left (for good.)', 'Bye.']);
  assert.deepEqual(split('We bought apples, pears, etc. The shop closed. Really?! Yes.'), ['We bought apples, pears, etc.', 'The shop closed.', 'Really?!', 'Yes.']);
  assert.deepEqual(split('Visit example.com today. No title here\n\nNew paragraph'), ['Visit example.com today.', 'No title here', 'New paragraph']);
  assert.deepEqual(split('Line one of a wrapped\nsentence. Next one.'), ['Line one of a wrapped\nsentence.', 'Next one.']);
});

test('Chinese: 。！？ with closing quotes, no spaces needed; mixed text', () => {
  assert.deepEqual(split('今天天气真好。我们去公园吧！你来吗？'), ['今天天气真好。', '我们去公园吧！', '你来吗？']);
  assert.deepEqual(split('他说：“我走了。”然后就走了。真的吗？！是的。'), ['他说：“我走了。”', '然后就走了。', '真的吗？！', '是的。']);
  assert.deepEqual(split('床前明月光，疑是地上霜。举头望明月，低头思故乡。'), ['床前明月光，疑是地上霜。', '举头望明月，低头思故乡。']);
  assert.deepEqual(split('I like tea. 我喜欢茶。'), ['I like tea.', '我喜欢茶。']);
});

test('splitting is lossless by default', () => {
  const texts = ['  Hello there.  How are you?\n\nFine. ', 'a. b. C. D! e? F', '今天天气真好。我们去公园吧！', '', 'no terminator at all'];
  for (const t of texts) assert.equal(splitSentences(t).join(''), t);
  assert.deepEqual(splitSentences('A b. C d.'), ['A b.', ' C d.']);
});
