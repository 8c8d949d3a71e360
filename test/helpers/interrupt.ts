/** Runs a CLI child until its metrics.jsonl shows a few logged steps, then interrupts it. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export interface Interrupted {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runUntilTrainingThenSignal(bin: string, args: string[], out: string, opts: { cwd?: string; signal?: NodeJS.Signals } = {}): Promise<Interrupted> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: opts.cwd, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const metrics = join(out, 'metrics.jsonl');
  const deadline = Date.now() + 60_000;
  while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 3)) {
    if (Date.now() >= deadline) child.kill('SIGKILL');
    assert.ok(Date.now() < deadline, `training never started: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill(opts.signal ?? 'SIGINT');
  const code = await exited;
  return { code, stdout, stderr };
}
