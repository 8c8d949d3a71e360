/**
 * `primer pretrain --resume` and `--init-from` (QA defects): options a resumed run cannot change are
 * refused by name with their saved values, a run already at its target step is left alone, a BERT run
 * resumes without --objective, --max-minutes 0 is refused, and --init-from takes the parent's context
 * as the default block size. Tiny models on a small corpus, a few steps each, in this process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { primerInProcess } from '../helpers/cli.ts';
import { readCheckpoint, listCheckpoints } from '../../src/train/checkpoint.ts';
import { pretrain } from '../../src/train/pretrain.ts';
import { PrimerError } from '../../src/io/errors.ts';
import { snapshotFiles } from '../helpers/files.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'primer-pretrain-resume-'));
const corpus = join(tmp, 'corpus');
mkdirSync(corpus);
const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'to', 'his', 'home'];
for (let d = 0; d < 12; d++) {
  // Sentences, so that a BERT's next-sentence pairs have something to pair too.
  const lines = Array.from({ length: 60 }, (_, i) => `${Array.from({ length: 10 }, (_, j) => words[(i * (d + 3) + j * (d + 1)) % words.length]).join(' ')}.`);
  writeFileSync(join(corpus, `doc${d}.txt`), lines.join('\n') + '\n');
}
const tiny = ['--corpus', corpus, '--preset', 'tiny', '--layers', '1', '--dims', '32', '--heads', '2', '--vocab-size', '300', '--batch-size', '4'];
const gptFlags = [...tiny, '--block-size', '16', '--lr', '3e-3', '--warmup', '1', '--eval-every', '0', '--eval-batches', '1', '--no-samples'];

/** `primer ARGS` in this process: its stdout, its `primer: error` line (or null), and the exit code it set. */
async function primer(args: string[]): Promise<{ out: string; error: string | null; exitCode: number }> {
  const r = await primerInProcess(args);
  return { ...r, out: r.out.join('\n') };
}

const steps = (dir: string) => listCheckpoints(dir).map((d) => Number(d.slice(-7)));

test('resume refuses each setting it cannot change, naming the saved value; defaults, --steps and cadence options are accepted', async () => {
  const out = join(tmp, 'gpt');
  const first = await primer(['pretrain', ...gptFlags, '--steps', '4', '--out', out]);
  assert.equal(first.error, null);
  assert.equal(readCheckpoint(out).state.step, 4);
  const before = snapshotFiles(out);

  const other = join(tmp, 'other.txt');
  const r = await primer(['pretrain', '--resume', out, '--corpus', other, '--lr', '0.5', '--block-size', '32', '--batch-size', '8', '--preset', 'mini',
    '--objective', 'mlm+nsp', '--grad-clip', '0', '--layers', '2', '--mask-prob', '0.2', '--steps', '8']);
  assert.equal(r.exitCode, 1);
  assert.equal(r.error, `primer: error: --resume ${out}: --corpus ${other} differs from the run's ${corpus}; --preset mini differs from the run's tiny; `
    + '--layers 2 differs from the run\'s 1; --batch-size 8 differs from the run\'s 4; --lr 0.5 differs from the run\'s 0.003; '
    + '--grad-clip 0 (off) differs from the run\'s 1; --objective mlm+nsp differs from the run\'s clm; '
    + '--mask-prob 0.2 does not apply to the run\'s objective clm; --block-size 32 differs from the run\'s 16 '
    + '(a resumed run keeps its settings; start a new run with --out, or --init-from to continue pre-training with new settings)');
  assert.deepEqual(snapshotFiles(out), before, 'a refused resume wrote something');
  const moved = await primer(['pretrain', '--resume', out, '--out', join(tmp, 'elsewhere'), '--steps', '8']);
  assert.match(moved.error ?? '', new RegExp(`--out ${join(tmp, 'elsewhere')} differs from the run's directory ${out} \\(a resumed run`));

  // The same values as the run's, --steps to extend it and a new checkpoint cadence are fine.
  const ok = await primer(['pretrain', '--resume', out, '--corpus', corpus, '--lr', '0.003', '--block-size', '16', '--preset', 'tiny', '--layers', '1',
    '--objective', 'clm', '--steps', '7', '--checkpoint-every', '5', '--keep', '5', '--no-samples']);
  assert.equal(ok.error, null);
  assert.match(ok.out, /finished at step 7: train loss \d+\.\d+/);
  assert.deepEqual(steps(out), [4, 5, 7]);
  const run = readCheckpoint(out).state.run;
  assert.equal(run.lr, 0.003);
  assert.equal(run.steps, 7);

  // The library refuses the same way.
  await assert.rejects(pretrain({ resume: out, lr: 0.5, steps: 9, log: () => {}, progress: false }),
    (e: unknown) => e instanceof PrimerError && e.code === 'RESUME_CONFLICT' && e.message.includes('--lr 0.5 differs from the run\'s 0.003'));
});

test('resume at or past the target step trains nothing and writes nothing; --max-minutes 0 is refused', async () => {
  const out = join(tmp, 'done');
  assert.equal((await primer(['pretrain', ...gptFlags, '--steps', '3', '--out', out])).error, null);
  const before = snapshotFiles(out);
  const again = await primer(['pretrain', '--resume', out]);
  assert.deepEqual([again.error, again.exitCode, again.out], [null, 0, 'already at step 3 of 3; nothing to train (raise --steps to continue)']);
  const shorter = await primer(['pretrain', '--resume', out, '--steps', '2', '--max-minutes', '1']);
  assert.deepEqual([shorter.error, shorter.exitCode, shorter.out], [null, 0, 'already at step 3, past --steps 2; nothing to train (raise --steps above 3 to continue)']);
  assert.deepEqual(snapshotFiles(out), before, 'a resume with nothing to train rewrote files');
  await assert.rejects(pretrain({ resume: out, log: () => {}, progress: false }), (e: unknown) => e instanceof PrimerError && e.code === 'NOTHING_TO_TRAIN');

  // The option parser refuses it (a child process: commander exits on a bad option value).
  const cli = spawnSync(process.execPath, [join(root, 'bin', 'primer.js'), 'pretrain', '--resume', out, '--steps', '5', '--max-minutes', '0'], { encoding: 'utf8' });
  assert.equal(cli.status, 1);
  assert.match(cli.stderr, /option '--max-minutes <m>' argument '0' is invalid\. expected a number > 0, got "0"/);
  await assert.rejects(pretrain({ ...{ corpus: [corpus], preset: 'tiny', layers: 1, dims: 32, heads: 2, vocabSize: 300 }, maxMinutes: 0, out: join(tmp, 'zero'), log: () => {}, progress: false }),
    /maxMinutes must be > 0, got 0/);
  assert.deepEqual(snapshotFiles(out), before);
});

test('--init-from without --block-size trains at the parent\'s context; a longer --block-size is still refused', async () => {
  const parent = join(tmp, 'parent');
  assert.equal((await primer(['pretrain', ...gptFlags, '--steps', '2', '--out', parent])).error, null);
  const child = join(tmp, 'child');
  const r = await primer(['pretrain', '--init-from', parent, '--corpus', corpus, '--batch-size', '4', '--steps', '2', '--eval-every', '0', '--no-samples', '--out', child]);
  assert.equal(r.error, null);
  assert.match(r.out, /— 2 steps × 4×16 tokens/);
  assert.ok(r.out.split('\n').includes(`model: GPT from ${parent} — 1 layers, 32 dims, 2 heads, context 16, ${r.out.match(/, ([\d.]+M) parameters/)![1]} parameters`),
    'the shape line names the parent, not the default --preset');
  assert.equal(readCheckpoint(child).state.run.blockSize, 16);
  const longer = await primer(['pretrain', '--init-from', parent, '--corpus', corpus, '--block-size', '32', '--steps', '2', '--out', join(tmp, 'child2')]);
  assert.equal(longer.error, 'primer: error: block size 32 exceeds the model\'s context 16');
});

test('a BERT run resumes without --objective (its checkpoint records mlm); a different --objective is a conflict', async () => {
  const out = join(tmp, 'bert');
  const bertFlags = [...tiny, '--block-size', '16', '--eval-every', '0', '--eval-batches', '1', '--workers', '1'];
  const first = await primer(['pretrain', '--objective', 'mlm', ...bertFlags, '--steps', '2', '--out', out]);
  assert.equal(first.error, null);
  const wrong = await primer(['pretrain', '--resume', out, '--objective', 'mlm+nsp', '--block-size', '32', '--steps', '3']);
  assert.equal(wrong.error, `primer: error: --resume ${out}: --objective mlm+nsp differs from the run's mlm; --block-size 32 differs from the run's 16 `
    + '(a resumed run keeps its settings; start a new run with --out)');
  const r = await primer(['pretrain', '--resume', out, '--steps', '3']);
  assert.equal(r.error, null);
  assert.match(r.out, new RegExp(`resuming ${out} from step 2`));
  assert.match(r.out, /finished at step 3: MLM loss \d+\.\d+/);
  const ck = readCheckpoint(out);
  assert.equal(ck.state.step, 3);
  assert.equal(ck.state.run.objective, 'mlm');
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model_type, 'bert');
});

test('a run without gradient clipping (--grad-clip 0, stored as null) resumes without it: 2 + 2 steps equal 4 straight', async () => {
  // Constant lr, so that the schedule does not depend on the planned length; the gradient norms here are ≈ 2–4, so a clip at 1 would show.
  const flags = [...gptFlags, '--grad-clip', '0', '--decay', 'constant', '--warmup', '0'];
  const straight = join(tmp, 'noclip-straight');
  const split = join(tmp, 'noclip-split');
  assert.equal((await primer(['pretrain', ...flags, '--steps', '4', '--out', straight])).error, null);
  assert.equal((await primer(['pretrain', ...flags, '--steps', '2', '--out', split])).error, null);
  assert.equal(readCheckpoint(split).state.run.gradClip, null);
  assert.equal((await primer(['pretrain', '--resume', split, '--grad-clip', '0', '--steps', '4', '--no-samples'])).error, null);
  assert.ok(readFileSync(join(split, 'model.safetensors')).equals(readFileSync(join(straight, 'model.safetensors'))), 'resumed weights differ from the uninterrupted run');
});
