/**
 * `primer finetune --objective sft --resume DIR`, as `primer pretrain --resume`: the run's settings come
 * from its checkpoint (no --model or --out needed), typed options that differ are refused by flag with
 * the saved value, defaults never count as typed, a finished run is left alone, --steps extends it, and
 * a rerun into the same --out without --resume is refused pointing at --resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { primerInProcess } from '../helpers/cli.ts';
import { createProgram } from '../../src/cli/index.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { colorQa, makeTinyModelDir, writeJsonl } from '../adapt/fixtures.ts';
import { snapshotFiles } from '../helpers/files.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-sft-resume-cli-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const base = makeTinyModelDir(root);
const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(40, 2));

async function primer(args: string[]): Promise<{ out: string; error: string | null; exitCode: number }> {
  const r = await primerInProcess(args);
  return { out: r.out.join('\n'), error: r.error, exitCode: r.exitCode };
}

test('finetune --resume: conflicts named with saved values, nothing to train, --steps extends; a rerun without --resume is refused', async () => {
  const out = join(root, 'sft');
  const first = await primer(['finetune', '--objective', 'sft', '--model', base, '--data', data, '--out', out, '--steps', '4', '--batch-size', '4', '--lr', '0.003']);
  assert.equal(first.error, null);
  assert.match(first.out, /held-out response perplexity: [\d.]+ → [\d.]+/);
  const before = snapshotFiles(out);

  const again = await primer(['finetune', '--objective', 'sft', '--model', base, '--data', data, '--out', out, '--steps', '4']);
  assert.deepEqual([again.error, again.exitCode], [`primer: error: ${out} already holds a training run; continue it with --resume ${out} or choose another --out`, 1]);

  // No --objective, --model or --out: the run knows them; finetune's own defaults (--lr 5e-5, --seed 0, --epochs 3) are not typed, so not checked.
  const idle = await primer(['finetune', '--resume', out]);
  assert.deepEqual([idle.error, idle.exitCode, idle.out], [null, 0, 'already at step 4 of 4; nothing to train (raise --steps to continue)']);

  const other = join(root, 'other.jsonl');
  const wrong = await primer(['finetune', '--objective', 'sft', '--resume', out, '--model', root, '--data', other, '--lr', '0.5', '--batch-size', '8',
    '--seed', '3', '--max-length', '32', '--lora-r', '4', '--lora-alpha', '8', '--steps', '8']);
  assert.deepEqual([wrong.error, wrong.exitCode], [`primer: error: --resume ${out}: --model ${root} differs from the run's ${base}; --data ${other} differs from the run's ${data}; `
    + '--batch-size 8 differs from the run\'s 4; --lr 0.5 differs from the run\'s 0.003; --max-length 32 differs from the run\'s 64; --seed 3 differs from the run\'s 0; '
    + '--lora-r 4 does not apply to the run\'s full fine-tuning; --lora-alpha 8 does not apply to the run\'s full fine-tuning '
    + '(a resumed run keeps its settings; start a new run with --out)', 1]);
  const moved = await primer(['finetune', '--resume', out, '--out', join(root, 'elsewhere'), '--steps', '8']);
  assert.equal(moved.error, `primer: error: --resume ${out}: --out ${join(root, 'elsewhere')} differs from the run's directory ${out} (a resumed run keeps its settings; start a new run with --out)`);
  const task = await primer(['finetune', '--objective', 'task', '--resume', out, '--steps', '8']);
  assert.equal(task.error, 'primer: error: --resume continues an SFT run (--objective sft); task fine-tuning cannot be resumed');
  assert.deepEqual(snapshotFiles(out), before, 'a refused or idle resume wrote something');

  // The run's own values typed again are fine; --steps 6 trains steps 5 and 6 only.
  const more = await primer(['finetune', '--objective', 'sft', '--resume', out, '--model', base, '--data', data, '--out', out, '--lr', '0.003', '--seed', '0', '--steps', '6']);
  assert.equal(more.error, null);
  assert.match(more.out, new RegExp(`resuming ${out} from step 4 of 6 \\(${join(out, 'checkpoints', 'step-0000004')}\\)`));
  assert.match(more.out, /held-out response perplexity: [\d.]+ → [\d.]+/);
  const ck = readCheckpoint(out);
  assert.deepEqual([ck.state.step, ck.state.run.steps, ck.state.run.lr, ck.state.run.seed], [6, 6, 0.003, 0]);
});

test('without --resume, --model and --out are still required; --help describes --resume', async () => {
  const noModel = await primer(['finetune', '--objective', 'sft', '--data', data, '--out', join(root, 'x')]);
  assert.equal(noModel.error, 'primer: error: required option \'--model <dir>\' not specified (--resume DIR continues an SFT run without it)');
  const noOut = await primer(['finetune', '--model', base, '--task', 'sentiment']);
  assert.equal(noOut.error, 'primer: error: required option \'--out <dir>\' not specified (--resume DIR continues an SFT run without it)');
  const help = createProgram().commands.find((c) => c.name() === 'finetune')!.helpInformation().replace(/\s+/g, ' ');
  assert.match(help, /--resume <dir> SFT: continue the run in this directory \(or checkpoint\) exactly, with its settings; --steps or --epochs may extend it/);
  assert.match(help, /--model <dir> pre-trained model directory \(config\.json, model\.safetensors, tokenizer\); required unless --resume/);
});
