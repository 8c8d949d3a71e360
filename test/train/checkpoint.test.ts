/**
 * Checkpoints: corrupt or truncated files are refused on resume with a clear error and nothing on
 * disk is overwritten; a NaN loss stops training with a clear message and keeps the last good checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { train, TrainingDivergedError } from '../../src/train/trainer.ts';
import { CheckpointError, listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.ts';
import { syntheticStream, tempDir, tinyGpt, tinyRun } from './helpers.ts';

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(p, readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

const stream = syntheticStream(4000, 64);

async function runToStep4(): Promise<{ dir: string; ckpt: string }> {
  const dir = tempDir('ckpt');
  const r = await train({ ...tinyRun(dir, tinyGpt(), stream), stopAtStep: 4 });
  return { dir, ckpt: r.lastCheckpoint! };
}

const corruptions: Array<[string, (ckpt: string) => void, RegExp]> = [
  ['truncated model.safetensors', (c) => truncateSync(join(c, 'model.safetensors'), 100), /model\.safetensors has 100 bytes, expected \d+ \(truncated\?\)/],
  ['flipped byte in optimizer.safetensors', (c) => {
    const p = join(c, 'optimizer.safetensors');
    const b = readFileSync(p);
    b[b.length - 5] ^= 0xff;
    writeFileSync(p, b);
  }, /optimizer\.safetensors does not match its SHA-256/],
  ['trainer_state.json cut in half', (c) => {
    const p = join(c, 'trainer_state.json');
    writeFileSync(p, readFileSync(p, 'utf8').slice(0, 200));
  }, /trainer_state\.json: not valid JSON at line \d+, column \d+: /],
  ['trainer_state.json with a bad step', (c) => {
    const p = join(c, 'trainer_state.json');
    writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), step: -3 }));
  }, /field "step"/],
];

for (const [name, corrupt, message] of corruptions) {
  test(`resume from a checkpoint with ${name}: clear error, nothing overwritten`, async () => {
    const { dir, ckpt } = await runToStep4();
    corrupt(ckpt);
    const before = snapshot(dir);
    const model = tinyGpt(5);
    const weightsBefore = model.namedParameters().map(([, p]) => Float32Array.from(p.data));
    await assert.rejects(train({ ...tinyRun(dir, model, stream), resumeFrom: dir }), (e: Error) => {
      assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${e}`);
      assert.match(e.message, message);
      assert.ok(e.message.includes(ckpt), 'the error names the checkpoint');
      return true;
    });
    assert.deepEqual(snapshot(dir), before, 'files changed after a failed resume');
    model.namedParameters().forEach(([n, p], i) => assert.deepEqual(p.data, weightsBefore[i], `${n} was modified`));
  });
}

test('a checkpoint for a different model shape is refused before anything is modified', async () => {
  const { dir } = await runToStep4();
  const other = tinyGpt(1);
  const ck = readCheckpoint(dir);
  assert.equal(ck.state.step, 4);
  const { gptPreset } = await import('../../src/models/presets.ts');
  const { GPT } = await import('../../src/models/gpt.ts');
  const wider = new GPT(gptPreset('tiny', { vocabSize: 64, layers: 2, dims: 48, heads: 2, context: 16 }));
  await assert.rejects(train({ ...tinyRun(dir, wider as typeof other, stream), resumeFrom: dir }), /does not fit this model: transformer\.wte\.weight has shape \[64, 32\] in the checkpoint, \[64, 48\] in the model/);
});

test('NaN loss (lr = 1e9) stops with a clear message and keeps the last good checkpoint', async () => {
  const dir = tempDir('nan');
  const model = tinyGpt();
  const good = await train({ ...tinyRun(dir, model, stream), steps: 20, stopAtStep: 2 });
  const goodFiles = snapshot(good.lastCheckpoint!);
  await assert.rejects(
    train({ ...tinyRun(dir, model, stream), steps: 20, lr: 1e9, warmupSteps: 0, gradClip: Infinity, checkpointEvery: 1, resumeFrom: dir }),
    (e: Error) => {
      assert.ok(e instanceof TrainingDivergedError, String(e));
      assert.match(e.message, /training diverged at step \d+: the (loss|gradient norm) is (NaN|Infinity)/);
      assert.match(e.message, /last good checkpoint is .*step-\d+/);
      return true;
    },
  );
  const all = listCheckpoints(dir);
  const last = readCheckpoint(all[all.length - 1]!);
  for (const [name, p] of model.namedParameters()) {
    assert.ok(last.weights.getFloat32(name).every(Number.isFinite), `last checkpoint has non-finite ${name}`);
    assert.ok(p.data.every(Number.isFinite), `live weights of ${name} became non-finite`);
  }
  assert.deepEqual(snapshot(good.lastCheckpoint!), goodFiles);
});
