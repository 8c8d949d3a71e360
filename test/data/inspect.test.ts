/**
 * `primer data inspect` samples: a document's text and its first sentence are both cut at --chars
 * (a document without sentence boundaries is one sentence: printed in full it was the whole book),
 * and Chinese text is decoded and cut like English.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { prepareData } from '../../src/data/prepare.ts';
import { inspectData } from '../../src/data/inspect.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-inspect-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('data inspect cuts a long first sentence like the sample text (English and Chinese)', async () => {
  // No sentence-ending punctuation: each document is a single sentence of thousands of characters.
  const en = Array.from({ length: 600 }, (_, i) => `word${i % 37}`).join(' ');
  const zh = Array.from({ length: 600 }, (_, i) => '今天天气很好我们去公园散步吧'[i % 14]).join('');
  writeFileSync(join(dir, 'en.txt'), en + '\n');
  writeFileSync(join(dir, 'zh.txt'), zh + '\n');
  const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 400, texts: [en, zh], specialTokens: ['<|endoftext|>'] });
  const prepared = await prepareData({ tokenizer, corpus: [join(dir, 'en.txt'), join(dir, 'zh.txt')], out: join(dir, 'data'), valFraction: 0, workers: 0, durable: false, warn: () => {} });
  const report = inspectData(prepared.dir, { samples: 2, chars: 50 });
  const firstSentences = report.split('\n').filter((l) => l.startsWith('  first sentence: ')).map((l) => JSON.parse(l.slice('  first sentence: '.length)) as string);
  assert.equal(firstSentences.length, 2);
  const expected = [en, zh].map((t) => t.slice(0, 50) + '…');
  assert.deepEqual(firstSentences.sort(), expected.sort());
});
