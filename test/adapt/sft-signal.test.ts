/** Ctrl-C during `primer finetune --objective sft`: stop after the step, save the adapter, exit 130; --resume continues it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelDir } from '../../src/models/load.ts';
import { loadLoraAdapter } from '../../src/adapt/lora.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { colorQa, makeTinyModelDir, writeJsonl } from './fixtures.ts';
import { runUntilTrainingThenSignal } from '../helpers/interrupt.ts';
import { primerInProcess } from '../helpers/cli.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'primer.js');
const root = mkdtempSync(join(tmpdir(), 'primer-sft-signal-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('SIGINT during LoRA SFT saves the adapter and a checkpoint, then exits 130', async () => {
  const base = makeTinyModelDir(root);
  const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(40, 2));
  const out = join(root, 'sft');
  const { code, stdout, stderr } = await runUntilTrainingThenSignal(bin, ['finetune', '--objective', 'sft', '--model', base, '--data', data, '--out', out,
    '--steps', '100000', '--lora-r', '2'], out);
  assert.equal(code, 130, stderr);
  assert.match(stdout, /SIGINT received: saving a checkpoint after this step/);
  assert.match(stdout, /interrupted at step \d+: saved LoRA adapter to/);
  assert.match(stdout, new RegExp(`interrupted: resume with primer finetune --objective sft --resume ${out}`));
  assert.doesNotMatch(stdout, /held-out response perplexity: /);
  const step = readCheckpoint(out).state.step;
  assert.ok(step >= 3, `checkpoint at step ${step}`);
  // The saved adapter is complete: it loads onto the base model.
  const lora = loadLoraAdapter(loadModelDir(base).model, 'gpt2', out);
  assert.equal(lora.layers.size, 2);
  assert.ok([...lora.layers.values()].some((l) => l.B.data.some((v) => v !== 0)), 'the adapter holds trained weights');
  // The command it printed continues the run (two more steps instead of the 100000 asked first).
  const resumed = await primerInProcess(['finetune', '--objective', 'sft', '--resume', out, '--steps', String(step + 2)]);
  assert.equal(resumed.error, null);
  assert.ok(resumed.out.includes(`resuming ${out} from step ${step} of ${step + 2} (${join(out, 'checkpoints', `step-${String(step).padStart(7, '0')}`)})`), resumed.out.join('\n'));
  assert.equal(readCheckpoint(out).state.step, step + 2);
});
