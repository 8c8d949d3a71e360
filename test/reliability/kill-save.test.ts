/**
 * Fault injection (issue 19): SIGKILL at random moments while checkpoints are being saved, including
 * during the very first save and during a same-step swap. After every kill the run directory must
 * be usable: either its latest checkpoint reads back whole (sizes and SHA-256 checked) and restores
 * into a model, or — killed before any save finished — a fresh run in the same directory starts.
 * No temp or .old- directory may survive recovery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';
import { AdamW } from '../../src/tensor/optim.ts';
import { decayGroups } from '../../src/train/trainer.ts';
import { listCheckpoints, readCheckpoint, recoverCheckpoints, restoreCheckpoint, startFreshRun } from '../../src/train/checkpoint.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { tempDir } from '../train/helpers.ts';

const child = join(dirname(fileURLToPath(import.meta.url)), 'save-child.ts');
const TRIALS = 20;

/** Starts the saving child, waits for "ready", sleeps `delayMs`, then SIGKILLs it. */
function killDuringSaves(runDir: string, delayMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, runDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.stdout.once('data', () => setTimeout(() => p.kill('SIGKILL'), delayMs));
    p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code}: ${stderr}`))));
  });
}

test(`fuzz: ${TRIALS} random SIGKILLs during checkpoint saves leave a run that resumes or restarts cleanly`, async () => {
  const random = seededRandom(0x19);
  const model = new GPT(gptPreset('tiny', { vocabSize: 64, layers: 1, dims: 32, heads: 2, context: 16 }), 7);
  const { groups, names } = decayGroups(model, 0.1);
  const optimizer = new AdamW(groups, { lr: 1e-3 });
  // The child saves a GPT made with seed 1 (save-child.ts): the restored weights must be exactly those.
  const saved = new Map(new GPT(gptPreset('tiny', { vocabSize: 64, layers: 1, dims: 32, heads: 2, context: 16 }), 1).namedParameters().map(([n, p]) => [n, p.data]));
  const outcomes = { resumable: 0, fresh: 0, repaired: 0 };
  const trial = async (i: number) => {
    const runDir = join(tempDir(`kill-${i}`), 'run');
    // A third of the kills land within the first save; the others after some saves have completed.
    const delay = i % 3 === 0 ? random() * 4 : 10 + random() * 300;
    await killDuringSaves(runDir, delay);
    const report = recoverCheckpoints(runDir);
    if (report.removed.length || report.restored.length) outcomes.repaired++;
    const root = join(runDir, 'checkpoints');
    const left = (existsSync(root) ? readdirSync(root) : []).filter((n) => !/^step-\d+$/.test(n));
    assert.deepEqual(left, [], `trial ${i} (delay ${delay.toFixed(1)} ms): leftovers after recovery`);
    if (listCheckpoints(runDir).length === 0) {
      startFreshRun(runDir); // killed before the first save completed: the same directory starts again
      outcomes.fresh++;
      return;
    }
    const ck = readCheckpoint(runDir); // sizes and hashes of every file
    restoreCheckpoint(ck, model, optimizer, names);
    for (const [name, p] of model.namedParameters()) assert.deepEqual(p.data, saved.get(name), `trial ${i}: ${name} differs from what was saved`);
    outcomes.resumable++;
  };
  for (let i = 0; i < TRIALS; i += 2) await Promise.all([trial(i), trial(i + 1)]);
  assert.equal(outcomes.resumable + outcomes.fresh, TRIALS);
  assert.ok(outcomes.resumable > 0, `no trial got past its first save: ${JSON.stringify(outcomes)}`);
  console.log(`# ${TRIALS} kills: ${JSON.stringify(outcomes)}`);
});
