/** Trainer options: weight-decay groups, gradient accumulation, bf16 autocast, the LR schedule in metrics. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { train, decayGroups } from '../../src/train/trainer.ts';
import { RandomBlocks } from '../../src/data/clm.ts';
import { learningRate } from '../../src/tensor/optim.ts';
import { syntheticStream, tempDir, tinyGpt, tinyRun } from './helpers.ts';

const stream = syntheticStream(4000, 64);

test('weight decay applies to ≥2-D weights only (nanoGPT): not to biases or LayerNorm weights', () => {
  const { groups, names } = decayGroups(tinyGpt(), 0.1);
  assert.equal(groups[0]!.weightDecay, 0.1);
  assert.equal(groups[1]!.weightDecay, 0);
  const decayed = names.slice(0, groups[0]!.params.length);
  const plain = names.slice(groups[0]!.params.length);
  assert.ok(decayed.includes('transformer.wte.weight') && decayed.includes('transformer.h.0.attn.c_attn.weight'));
  assert.ok(plain.includes('transformer.h.0.ln_1.weight') && plain.includes('transformer.h.0.attn.c_attn.bias') && plain.includes('transformer.ln_f.bias'));
  assert.ok(decayed.every((n) => !/ln_|bias$/.test(n)));
});

test('gradient accumulation: 2 micro-batches of 2 ≈ one batch of 4 (same blocks, same update)', async () => {
  const big = tinyGpt(4, 0);
  await train({ ...tinyRun(tempDir('acc1'), big, stream), rngs: {}, data: new RandomBlocks(stream, 4, 16, 9), steps: 5 });
  const small = tinyGpt(4, 0);
  await train({ ...tinyRun(tempDir('acc2'), small, stream), rngs: {}, data: new RandomBlocks(stream, 2, 16, 9), steps: 5, gradAccum: 2 });
  const ref = new Map(big.namedParameters());
  let worst = 0;
  for (const [n, p] of small.namedParameters()) {
    const q = ref.get(n)!.data;
    for (let i = 0; i < p.size; i++) worst = Math.max(worst, Math.abs(p.data[i]! - q[i]!));
  }
  assert.ok(worst < 1e-5, `max weight difference ${worst}`);
});

test('bf16 autocast trains: the loss drops and tracks fp32 closely without being identical', async () => {
  const run = async (bf16: boolean) => {
    const model = tinyGpt(6, 0);
    const dir = tempDir(bf16 ? 'bf16' : 'fp32');
    const r = await train({ ...tinyRun(dir, model, stream), steps: 12, bf16 });
    const losses = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m);
    return { r, losses };
  };
  const fp32 = await run(false);
  const bf16 = await run(true);
  assert.ok(bf16.r.trainLoss < bf16.losses[0].loss - 0.3, `bf16 loss ${bf16.losses[0].loss} → ${bf16.r.trainLoss}`);
  assert.notEqual(bf16.r.trainLoss, fp32.r.trainLoss);
  assert.ok(Math.abs(bf16.r.trainLoss - fp32.r.trainLoss) < 0.05, `${bf16.r.trainLoss} vs ${fp32.r.trainLoss}`);
  // The logged lr follows the warmup + cosine schedule.
  fp32.losses.forEach((m: { step: number; lr: number }) => {
    assert.ok(Math.abs(m.lr - learningRate(m.step - 1, { maxLr: 3e-3, minLr: 3e-4, warmupSteps: 2, totalSteps: 12, decay: 'cosine' })) < 1e-15, `lr at step ${m.step}`);
  });
});
