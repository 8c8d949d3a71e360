/**
 * Exact resume: a run stopped at step s and resumed from its checkpoint ends at step 2s with
 * weights bit-identical to an uninterrupted run (dropout on, so the RNG state matters too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { train } from '../../src/train/trainer.ts';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.ts';
import { syntheticStream, tempDir, tinyGpt, tinyRun } from './helpers.ts';

test('stop at step 4, resume, step 8: bit-identical to an uninterrupted 8-step run', async () => {
  const stream = syntheticStream(4000, 64);
  const straightDir = tempDir('straight');
  const straight = tinyGpt();
  const r1 = await train({ ...tinyRun(straightDir, straight, stream), evalEvery: 4 });
  assert.equal(r1.status, 'completed');
  assert.equal(r1.step, 8);

  const splitDir = tempDir('split');
  const first = tinyGpt();
  const r2 = await train({ ...tinyRun(splitDir, first, stream), stopAtStep: 4 });
  assert.equal(r2.status, 'stopped');
  assert.equal(r2.step, 4);
  assert.ok(r2.lastCheckpoint && existsSync(join(r2.lastCheckpoint, 'optimizer.safetensors')));

  const resumed = tinyGpt(999); // different init: everything must come from the checkpoint
  const r3 = await train({ ...tinyRun(splitDir, resumed, stream), resumeFrom: splitDir });
  assert.equal(r3.status, 'completed');
  assert.equal(r3.step, 8);

  const a = new Map(straight.namedParameters());
  for (const [name, p] of resumed.namedParameters()) {
    assert.deepEqual(p.data, a.get(name)!.data, `${name} differs after resume`);
  }
  assert.equal(r3.trainLoss, r1.trainLoss);
  assert.ok(r1.trainLoss < Math.log(64), `loss ${r1.trainLoss} did not drop below uniform ${Math.log(64)}`);

  const ck = readCheckpoint(splitDir);
  assert.equal(ck.state.step, 8);
  assert.deepEqual(ck.state.rngs.dropout, resumed.transformer.rng.state());
  assert.deepEqual(listCheckpoints(splitDir).map((d) => d.split('/').pop()), ['step-0000004', 'step-0000008']);
  const metrics = readFileSync(join(straightDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const stepLines = metrics.filter((m) => 'loss' in m);
  assert.equal(stepLines.length, 8);
  for (const key of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s']) assert.ok(key in stepLines[0], `metrics lack ${key}`);
  const evals = metrics.filter((m) => 'val_loss' in m);
  assert.deepEqual(evals.map((m) => m.step), [4, 8]);
  assert.ok(Math.abs(evals[1].val_ppl - Math.exp(evals[1].val_loss)) < 1e-9);
});
