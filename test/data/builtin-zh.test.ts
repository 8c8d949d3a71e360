import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinZhPoems, traditionalToSimplified } from '../../src/data/builtin-zh.ts';
import { resolveCorpus } from '../../src/data/builtin.ts';
import { WordPieceTrainer } from '../../src/tokenizers/wordpiece-train.ts';
import { Bert } from '../../src/models/bert.ts';
import { bertPreset } from '../../src/models/presets.ts';
import { fillMask } from '../../src/infer/fill-mask.ts';

// chinese-poetry and opencc-js are optionalDependencies: npm install / npm ci install them unless
// --omit=optional, so these tests run (and must pass) in a default install.

test('builtin:zh yields the Tang poems converted from Traditional to Simplified', () => {
  const convert = traditionalToSimplified();
  assert.equal(convert('舉頭望明月，低頭思故鄉。'), '举头望明月，低头思故乡。');
  // The first file of quantangshi opens with 太宗皇帝's 帝京篇, stored as "秦川雄帝宅，函谷壯皇居。".
  const poems = [...builtinZhPoems(1)];
  assert.ok(poems.length > 500, `${poems.length} poems in the first file`);
  assert.equal(poems[0]!.split('\n')[0], '秦川雄帝宅，函谷壮皇居。');
  assert.ok(!poems.some((p) => /[壯舉頭鄉綺離]/.test(p)), 'no Traditional forms left');
  assert.ok(poems.every((p) => p.length > 0 && !p.includes('\n\n')), 'one poem per document, lines separated by single newlines');
  assert.ok(poems.every((p) => !p.includes('\uFFFD')), 'poems with characters lost in the source are left out');
  // chinese-poetry marks a lost character with □: the first file has poems such as "杖策聊□□。\n□□□□□，…".
  assert.deepEqual(poems.filter((p) => p.includes('□')), [], 'poems with □ (a character lost in the source) are left out');
});

test('resolveCorpus keeps paths and rejects unknown built-in names', () => {
  assert.deepEqual(resolveCorpus(['a.txt', 'dir/']), ['a.txt', 'dir/']);
  assert.ok(resolveCorpus([]).length > 10, 'the English built-in corpus by default');
  assert.throws(() => resolveCorpus(['builtin:xx']), /unknown built-in corpus "builtin:xx".*builtin:zh/);
});

test('fill-mask on the seed example with a tiny random Chinese WordPiece BERT returns k candidates', () => {
  const trainer = new WordPieceTrainer({ vocabSize: 2000 });
  for (const poem of builtinZhPoems(1)) trainer.feed(poem);
  trainer.feed('今天天气真好，我们去公园吧。');
  const tokenizer = trainer.train();
  // BERT's tokenize_chinese_chars: every ideograph is its own token, so no [UNK] and no "##" pieces.
  const enc = tokenizer.encode('床前明月光', null);
  assert.deepEqual(enc.ids.slice(1, -1).map((id) => tokenizer.idToToken(id)), ['床', '前', '明', '月', '光']);
  const model = new Bert({ ...bertPreset('tiny', { vocabSize: tokenizer.vocabSize, layers: 1, dims: 32, heads: 2, dropout: 0 }), intermediate_size: 64 }, 1);
  const [mask, ...rest] = fillMask(model, tokenizer, '今天天气真[MASK]，我们去公园吧。', { topK: 7 });
  assert.equal(rest.length, 0);
  assert.equal(mask!.position, 6, '[CLS] 今 天 天 气 真 [MASK]');
  assert.equal(mask!.predictions.length, 7);
  const p = mask!.predictions.map((x) => x.probability);
  assert.ok(p.every((x, i) => x > 0 && x < 1 && (i === 0 || x <= p[i - 1]!)), `sorted probabilities ${p}`);
  assert.ok(mask!.predictions.every((x) => tokenizer.idToToken(x.id) === x.token));
});
