import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pretrain } from '../../src/train/pretrain.ts';
import { loadModelDir } from '../../src/models/load.ts';
import { modelFingerprint } from '../../src/nn/fingerprint.ts';
import { Rng } from '../../src/util/random.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-continue-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** Documents of simple sentences over a small vocabulary; two corpora with different word statistics. */
function corpus(name: string, words: string[], seed: number): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(seed);
  for (let d = 0; d < 10; d++) {
    const sentences = Array.from({ length: 80 }, () => Array.from({ length: 4 + rng.int(4) }, () => words[rng.int(words.length)]!).join(' ') + '.');
    writeFileSync(join(dir, `doc${d}.txt`), sentences.join(' ') + '\n');
  }
  return dir;
}

const small = { preset: 'tiny' as const, layers: 1, dims: 32, heads: 2, blockSize: 32, batchSize: 8, evalEvery: 0, evalBatches: 4,
  checkpointEvery: 0, keepCheckpoints: 1, valFraction: 0.2, seed: 5, samplePrompts: [], log: () => {}, progress: false as const };

test('pretrain --init-from starts from the parent exact weights and lowers val loss on the new corpus', async () => {
  const a = corpus('a', ['the', 'cat', 'sat', 'on', 'mat', 'a', 'dog', 'ran', 'far', 'cats', 'mats'], 1);
  const b = corpus('b', ['stocks', 'rose', 'fell', 'market', 'the', 'bank', 'rates', 'on', 'a', 'cut'], 2);
  const parentDir = join(root, 'parent');
  await pretrain({ ...small, corpus: [a, b], vocabSize: 300, steps: 30, lr: 5e-3, out: parentDir });
  const parent = loadModelDir(parentDir).model;

  // lr = 0 for one step: the weights stay the parent's, and the val loss is the parent's on corpus b.
  const frozen = await pretrain({ ...small, corpus: [b], steps: 1, lr: 0, minLr: 0, warmupSteps: 0, weightDecay: 0, initFrom: parentDir, out: join(root, 'same') });
  assert.equal(modelFingerprint(loadModelDir(join(root, 'same')).model), modelFingerprint(parent));
  assert.equal(frozen.modelConfig.n_embd, 32);
  const lineage = JSON.parse(readFileSync(join(root, 'same', 'parent.json'), 'utf8'));
  assert.equal(lineage.init_from, parentDir);
  assert.equal(lineage.parent_fingerprint, modelFingerprint(parent));

  const continued = await pretrain({ ...small, corpus: [b], steps: 40, lr: 3e-3, warmupSteps: 2, initFrom: parentDir, out: join(root, 'continued') });
  assert.ok(continued.training.valLoss! < frozen.training.valLoss! - 0.05, `parent ${frozen.training.valLoss}, continued ${continued.training.valLoss}`);
  assert.equal(continued.config.initFrom, parentDir);
});
