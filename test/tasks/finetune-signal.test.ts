/** Ctrl-C / SIGTERM during `primer finetune` (task heads): the best finished epoch is saved, then exit 130 / 143. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTaskModelForInference } from '../../src/adapt/lora-task.ts';
import { SequenceClassifier } from '../../src/models/heads.ts';
import { makeTinyModelDir } from '../adapt/fixtures.ts';
import { syntheticReviews } from './tiny-lm.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'primer.js');
const root = mkdtempSync(join(tmpdir(), 'primer-finetune-signal-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const base = makeTinyModelDir(root);

function reviewsCsv(name: string, n: number): string {
  const path = join(root, name);
  writeFileSync(path, 'text,label\n' + syntheticReviews(n, 1).map((r) => `${r.text},${r.label}`).join('\n') + '\n');
  return path;
}

interface Step {
  /** Send `signal` once this holds of the output so far. */
  when: (stdout: string) => boolean;
  signal: NodeJS.Signals;
}

/** Runs `primer finetune`, sending each signal when its condition holds; the exit status as a shell reports it. */
async function finetuneWithSignals(args: string[], steps: Step[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'finetune', ...args], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number>((res) => child.on('exit', (code, signal) => res(code ?? 128 + constants.signals[signal!])));
  const deadline = Date.now() + 60_000;
  for (const step of steps) {
    while (!step.when(stdout)) {
      if (Date.now() >= deadline || child.exitCode !== null || child.signalCode !== null) {
        child.kill('SIGKILL');
        assert.fail(`never saw the moment to send ${step.signal}: ${stdout}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill(step.signal);
  }
  return { status: await exited, stdout, stderr };
}

test('SIGINT after an epoch saves the best finished epoch as a loadable classifier and exits 130; a second SIGINT does not cut the save short', async () => {
  const out = join(root, 'clf');
  const { status, stdout, stderr } = await finetuneWithSignals(
    ['--model', base, '--data', reviewsCsv('reviews.csv', 200), '--epochs', '1000', '--batch-size', '8', '--lr', '3e-3', '--out', out],
    [{ when: (s) => /^epoch 1: /m.test(s), signal: 'SIGINT' }, { when: (s) => /SIGINT received/.test(s), signal: 'SIGINT' }],
  );
  assert.equal(status, 130, stderr);
  assert.match(stdout, /^SIGINT received: stopping after this step and saving the best finished epoch/m);
  const [, finished, best] = /^interrupted \(SIGINT\) after (\d+) of 1000 epochs: saved the model of epoch (\d+) to (.+) \(no test scores for an interrupted run\)$/m.exec(stdout) ?? assert.fail(stdout);
  assert.ok(Number(best) >= 1 && Number(best) <= Number(finished));
  assert.doesNotMatch(stdout, /^test \(|^model saved to/m);
  const results = JSON.parse(readFileSync(join(out, 'eval_results.json'), 'utf8'));
  assert.equal(results.interrupted, true);
  assert.equal(results.bestEpoch, Number(best));
  assert.equal(results.history.length, Number(finished));
  assert.ok(!existsSync(join(out, 'checkpoints')));
  const { model } = loadTaskModelForInference(out, SequenceClassifier, 'sequence classification');
  assert.deepEqual(model.labels.labels, ['negative', 'positive']);
});

test('SIGTERM before the first epoch ends: nothing is saved, it says so, exit 143', async () => {
  const out = join(root, 'early');
  // 3,200 steps of batch 1 in epoch 1: the signal comes long before it ends.
  const { status, stdout, stderr } = await finetuneWithSignals(
    ['--model', base, '--data', reviewsCsv('many.csv', 4000), '--epochs', '2', '--batch-size', '1', '--out', out],
    [{ when: () => existsSync(join(out, 'metrics.jsonl')), signal: 'SIGTERM' }],
  );
  assert.equal(status, 143, stderr);
  assert.match(stdout, new RegExp(`^interrupted \\(SIGTERM\\) before the first epoch ended: nothing was saved to ${out}$`, 'm'));
  assert.doesNotMatch(stdout, /^epoch 1: /m);
  assert.ok(!existsSync(join(out, 'model.safetensors')) && !existsSync(join(out, 'eval_results.json')));
});
