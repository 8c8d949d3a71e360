/**
 * The `primer` CLI end to end (spawned as a user would run it): verify on the PyTorch fixtures
 * (pass, and fail with a non-zero exit on a perturbed weight), a tiny pretrain + generate, and
 * SIGINT during training → a checkpoint that loads and resumes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { verifyModel } from '../../src/train/verify.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { loadModelDir } from '../../src/models/load.ts';
import { runUntilTrainingThenSignal } from '../helpers/interrupt.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'primer.js');
const fixtures = join(root, '..', 'shared', 'fixtures');

function primer(args: string[], cwd = root) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function smallCorpus(): string {
  const dir = mkdtempSync(join(tmpdir(), 'primer-cli-corpus-'));
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'to', 'his', 'home'];
  for (let d = 0; d < 12; d++) {
    const text = Array.from({ length: 600 }, (_, i) => words[(i * (d + 3) + d) % words.length]).join(' ');
    writeFileSync(join(dir, `doc${d}.txt`), text + '.\n');
  }
  return dir;
}

const tinyModelFlags = ['--preset', 'tiny', '--layers', '1', '--dims', '32', '--heads', '2', '--block-size', '16', '--batch-size', '4', '--vocab-size', '300'];

test('verify passes on the gpt2-tiny and bert-tiny fixtures (library) and through the CLI', () => {
  for (const name of ['gpt2-tiny', 'bert-tiny']) {
    const r = verifyModel({ modelDir: join(fixtures, name) });
    assert.ok(r.passed, `${name}: ${r.failed.join(', ')}`);
    assert.ok(r.worst!.maxRelError <= 1e-4);
  }
  const cli = primer(['verify', '--model', join(fixtures, 'gpt2-tiny')]);
  assert.equal(cli.code, 0, cli.stderr);
  const report = JSON.parse(cli.stdout);
  assert.equal(report.passed, true);
  assert.deepEqual(report.tensors.map((t: { name: string }) => t.name).slice(0, 2), ['logits', 'loss']);
});

test('verify fails with a non-zero exit and a clear report when a weight is perturbed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-perturbed-'));
  const src = join(fixtures, 'gpt2-tiny');
  for (const f of ['config.json', 'inputs.json', 'expected.safetensors']) copyFileSync(join(src, f), join(dir, f));
  const w = readSafetensors(join(src, 'model.safetensors'));
  writeSafetensors(join(dir, 'model.safetensors'), w.names.map((n) => {
    const data = Float32Array.from(w.getFloat32(n));
    if (n === 'transformer.h.0.mlp.c_fc.weight') data[10]! += 0.05;
    return { name: n, shape: w.info(n).shape, data };
  }));
  const cli = primer(['verify', '--model', dir]);
  assert.equal(cli.code, 1);
  const report = JSON.parse(cli.stdout);
  assert.equal(report.passed, false);
  assert.ok(report.failed.includes('logits'));
  assert.ok(report.failed.includes('grad.transformer.h.0.attn.c_attn.weight') || report.failed.includes('loss'));
  assert.match(cli.stderr, /FAILED — \d+ of 7 tensors exceed tol 0\.0001/);
});

test('pretrain a tiny GPT on a small corpus, then generate from the run directory', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'primer-run-')), 'run');
  const r = primer(['pretrain', '--corpus', smallCorpus(), ...tinyModelFlags, '--steps', '8', '--eval-every', '4', '--warmup', '2', '--lr', '3e-3', '--sample-tokens', '5', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /training a byte-level BPE tokenizer \(vocab 300\)/);
  assert.match(r.stdout, /finished at step 8: train loss \d+\.\d+, val loss \d+\.\d+/);
  assert.match(r.stdout, /sample continuations:/);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'metrics.jsonl']) assert.ok(existsSync(join(out, f)), f);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(metrics.filter((m) => 'loss' in m).length, 8);
  assert.equal(readCheckpoint(out).state.step, 8);
  const g = primer(['generate', '--model', out, '--prompt', 'the cat', '--max-tokens', '6', '--seed', '3']);
  assert.equal(g.code, 0, g.stderr);
  assert.ok(g.stdout.startsWith('the cat'), g.stdout);
  assert.equal(primer(['generate', '--model', out, '--prompt', 'the cat', '--max-tokens', '6', '--seed', '3']).stdout, g.stdout, 'same seed, same text');
  const again = primer(['pretrain', '--corpus', smallCorpus(), ...tinyModelFlags, '--steps', '2', '--out', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds a training run; continue it with --resume/);
});

test('SIGINT during pretrain saves a checkpoint that loads and resumes', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'primer-sigint-')), 'run');
  const { code, stdout, stderr } = await runUntilTrainingThenSignal(bin, ['pretrain', '--corpus', smallCorpus(), ...tinyModelFlags, '--steps', '100000', '--checkpoint-every', '0', '--eval-every', '0', '--out', out], out, { cwd: root });
  assert.equal(code, 130, stderr);
  assert.match(stdout, /SIGINT received: saving a checkpoint/);
  assert.match(stdout, /interrupted: resume with primer pretrain --resume/);
  const ck = readCheckpoint(out);
  assert.ok(ck.state.step >= 3, `checkpoint at step ${ck.state.step}`);
  assert.equal(loadModelDir(ck.dir).kind, 'gpt2');
  const resumed = primer(['pretrain', '--resume', out, '--steps', String(ck.state.step + 2), '--no-samples']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`resuming .* from step ${ck.state.step}`));
  assert.equal(readCheckpoint(out).state.step, ck.state.step + 2);
});
