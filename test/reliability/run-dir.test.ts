/**
 * Defects 1 and 6 of issue 19: what a killed save or a resume leaves in a run directory.
 *  - A kill during the first checkpoint save left checkpoints/.step-N.<pid>.<hex>.tmp, which counted
 *    as an existing run (restart refused) while --resume found no checkpoint: the directory was
 *    unusable. Temp directories of dead saves were never removed.
 *  - metrics.jsonl got the steps after the checkpoint twice after a resume, and a fresh run in the
 *    same directory appended to the old run's metrics.
 *  - A run killed before its end has no model at the top level: loading it must say so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { train } from '../../src/train/trainer.ts';
import { listCheckpoints, readCheckpoint, recoverCheckpoints, startFreshRun } from '../../src/train/checkpoint.ts';
import { configJson, loadModelDir } from '../../src/models/load.ts';
import { PrimerError } from '../../src/io/errors.ts';
import { syntheticStream, tempDir, tinyGpt, tinyRun } from '../train/helpers.ts';

const stream = syntheticStream(4000, 64);

/** The pid of a process that has exited (so its temp directories are leftovers, not live saves). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function metricSteps(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => m.step);
}

test('issue 19 defect 1: a kill during the first save leaves a run that restarts cleanly, and --resume says why it cannot', async () => {
  const dir = tempDir('first-save');
  const partial = join(dir, 'checkpoints', `.step-0000001.${deadPid()}.0badc0de.tmp`);
  mkdirSync(partial, { recursive: true });
  writeFileSync(join(partial, 'model.safetensors'), 'half a file');
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":4.1}\n');

  assert.throws(() => readCheckpoint(dir), (e: unknown) => e instanceof PrimerError
    && /no complete checkpoint/.test(e.message) && /before its first checkpoint/.test(e.message) && e.message.includes(`--out ${dir}`));
  startFreshRun(dir); // not refused: nothing in the directory can be resumed
  assert.deepEqual(readdirSync(join(dir, 'checkpoints')), [], 'the dead save\'s temp directory is removed');
  assert.equal(existsSync(join(dir, 'metrics.jsonl')), false, 'the stale metrics of the killed attempt are gone');
  const r = await train({ ...tinyRun(dir, tinyGpt(), stream), steps: 2 });
  assert.equal(r.step, 2);
  assert.deepEqual(metricSteps(dir), [1, 2]);
  assert.throws(() => startFreshRun(dir), (e: unknown) => e instanceof PrimerError && /already holds a training run; continue it with --resume/.test(e.message));
});

test('issue 19 defect 1: leftovers of dead saves are cleaned up, and an interrupted swap is undone', async () => {
  const dir = tempDir('leftovers');
  await train({ ...tinyRun(dir, tinyGpt(), stream), steps: 4, checkpointEvery: 2 });
  const root = join(dir, 'checkpoints');
  const dead = deadPid();
  for (const n of [2, 3]) mkdirSync(join(root, `.step-000000${n}.${dead}.abcd${n}.tmp`));
  const live = join(root, `.step-0000009.${process.pid === 1 ? 2 : 1}.feed.tmp`); // pid 1 is alive: a save in progress
  mkdirSync(live);
  // A kill between the two renames of a same-step re-save: step-4 exists only as its .old- copy.
  renameSync(join(root, 'step-0000004'), join(root, 'step-0000004.old-12345678'));
  cpSync(join(root, 'step-0000002'), join(root, 'step-0000002.old-87654321'), { recursive: true });
  const report = recoverCheckpoints(dir);
  assert.deepEqual(report.restored, [join(root, 'step-0000004')]);
  assert.equal(report.removed.length, 3);
  assert.deepEqual(readdirSync(root).sort(), [live.split('/').pop(), 'step-0000002', 'step-0000004'].sort());
  assert.equal(readCheckpoint(dir).state.step, 4);
});

test('issue 19 defect 6: resuming drops the metrics of steps after the checkpoint, so no step is logged twice', async () => {
  const dir = tempDir('metrics');
  await train({ ...tinyRun(dir, tinyGpt(), stream), steps: 8, stopAtStep: 4 });
  // As if killed at step 6 after the checkpoint at step 4: steps 5 and 6 are in the metrics.
  const first = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
  writeFileSync(join(dir, 'metrics.jsonl'), first + '{"step":5,"loss":3}\n{"step":6,"loss":3}\n{"step":6,"val_loss":3}\n');
  await train({ ...tinyRun(dir, tinyGpt(), stream), steps: 8, resumeFrom: dir });
  assert.deepEqual(metricSteps(dir), [1, 2, 3, 4, 5, 6, 7, 8]);
  const evals = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'val_loss' in m);
  assert.deepEqual(evals.map((m) => m.step), [4, 8]);
});

test('issue 19 defect 6: loading a run that has checkpoints but no final model names the latest checkpoint', async () => {
  const dir = tempDir('no-model');
  const model = tinyGpt();
  const writeExtraFiles = (d: string) => writeFileSync(join(d, 'config.json'), JSON.stringify(configJson(model.config)));
  await train({ ...tinyRun(dir, model, stream), steps: 8, stopAtStep: 2, writeExtraFiles });
  const latest = listCheckpoints(dir).pop()!;
  assert.throws(() => loadModelDir(dir), (e: unknown) => e instanceof PrimerError
    && e.message.includes(latest) && /no final model yet/.test(e.message) && e.message.includes(`--resume ${dir}`));
});
