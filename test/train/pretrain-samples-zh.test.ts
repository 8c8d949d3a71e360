import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SAMPLE_PROMPTS, defaultSamplePrompts, pretrain } from '../../src/train/pretrain.ts';

test('a GPT pre-trained on Chinese is sampled with Chinese prompts, not English ones', async () => {
  const root = mkdtempSync(join(tmpdir(), 'primer-zh-samples-'));
  try {
    const corpus = join(root, 'corpus');
    mkdirSync(corpus);
    const poem = '床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n春眠不觉晓，处处闻啼鸟。\n';
    for (let d = 0; d < 4; d++) writeFileSync(join(corpus, `doc${d}.txt`), poem.repeat(20));
    const result = await pretrain({
      corpus: [corpus], preset: 'tiny', layers: 1, dims: 32, heads: 2, vocabSize: 300, blockSize: 32, batchSize: 4,
      steps: 2, evalEvery: 0, checkpointEvery: 0, keepCheckpoints: 1, valFraction: 0.25, seed: 1, sampleTokens: 4,
      out: join(root, 'run'), log: () => {}, progress: false,
    });
    assert.deepEqual(result.samples.map((s) => s.prompt), ['床前明月光，', '春眠不觉晓，', '今天天气真好，']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('defaultSamplePrompts: English unless Han characters are most of the letters', () => {
  assert.deepEqual(defaultSamplePrompts('It was the best of times.'), DEFAULT_SAMPLE_PROMPTS);
  assert.deepEqual(defaultSamplePrompts('The iPhone 15 发布了 in September.'), DEFAULT_SAMPLE_PROMPTS);
  assert.equal(defaultSamplePrompts('我在2024年买了iPhone，很好用。')[0], '床前明月光，');
  assert.deepEqual(defaultSamplePrompts(''), DEFAULT_SAMPLE_PROMPTS);
});
