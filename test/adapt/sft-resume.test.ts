/**
 * runSft({ resume }): an SFT run stopped after k steps (Ctrl-C) and resumed to N equals N steps in one
 * go bit for bit (weights, every step's loss, the held-out loss), for full fine-tuning with GPT dropout
 * and for LoRA with adapter dropout, across an epoch boundary. A resume that would change the run
 * (options, data, base model) or has nothing to train is refused before anything is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSft, type SftOptions } from '../../src/adapt/sft-run.ts';
import { readCheckpoint, listCheckpoints } from '../../src/train/checkpoint.ts';
import { PrimerError } from '../../src/io/errors.ts';
import type { ProgressReporter } from '../../src/train/progress.ts';
import { colorQa, makeTinyModelDir, writeJsonl } from './fixtures.ts';
import { snapshotFiles } from '../helpers/files.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-sft-resume-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

// Dropout on, so that a dropout stream not carried over by the checkpoint would show.
const base = makeTinyModelDir(root);
const configPath = join(base, 'config.json');
writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1 }));
const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(40, 2));
// 32 training examples in batches of 4: an epoch is 8 steps, so 12 steps cross into a reshuffled second epoch.
const common = { model: base, data, steps: 12, batchSize: 4, lr: 3e-3, valFraction: 0.2, log: () => {} } satisfies SftOptions;

/** A progress reporter that sends the trainer a Ctrl-C after step k (the in-process equivalent of the key press). */
const ctrlCAfter = (k: number): ProgressReporter => ({ update: (i) => { if (i.step === k) process.emit('SIGINT'); }, log: () => {}, stop: () => {} });

/** Each step's training loss, lr and gradient norm, and each held-out loss, from metrics.jsonl (timings left out). */
function metrics(dir: string): string[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { step, loss, lr, grad_norm, val_loss } = JSON.parse(l) as Record<string, number>;
    return JSON.stringify({ step, loss, lr, grad_norm, val_loss });
  });
}

async function straightAndSplit(name: string, k: number, extra: Partial<SftOptions>) {
  const straight = join(root, `${name}-straight`);
  const split = join(root, `${name}-split`);
  const one = await runSft({ ...common, ...extra, out: straight, progress: false });
  assert.equal(one.training.step, 12);
  const first = await runSft({ ...common, ...extra, out: split, progress: ctrlCAfter(k) });
  assert.deepEqual([first.training.status, first.training.step, first.after], ['interrupted', k, null]);
  assert.equal(readCheckpoint(split).state.step, k);
  const checkpoint = listCheckpoints(split)[0];
  const logs: string[] = [];
  const resumed = await runSft({ resume: split, log: (m) => logs.push(m), progress: false });
  assert.deepEqual([resumed.training.status, resumed.training.step, resumed.out], ['completed', 12, split]);
  assert.ok(logs.includes(`resuming ${split} from step ${k} of 12 (${checkpoint})`), logs.join('\n'));
  assert.equal(resumed.after!.loss, one.after!.loss);
  assert.equal(resumed.before.loss, one.before.loss);
  assert.deepEqual(metrics(split), metrics(straight));
  return { straight, split, one };
}

test('full fine-tuning: 5 steps, Ctrl-C, resume to 12 equals 12 steps in one go, bit for bit', async () => {
  const { straight, split, one } = await straightAndSplit('full', 5, {});
  assert.ok(readFileSync(join(split, 'model.safetensors')).equals(readFileSync(join(straight, 'model.safetensors'))), 'resumed weights differ');
  assert.ok(one.after!.loss < one.before.loss, 'the run learned something');
  const ck = readCheckpoint(split);
  assert.deepEqual(ck.state.data, { epoch: 1, pos: 16 });
  assert.ok(ck.optimizer.getFloat32(`v.${ck.weights.names[0]}`).some((v) => v !== 0), 'AdamW second moments are checkpointed');
  const run = ck.state.run;
  assert.deepEqual([run.objective, run.model, run.data, run.valData, run.steps, run.batchSize, run.lr, run.warmupSteps, run.weightDecay, run.maxLength, run.seed, run.lora, run.trainExamples],
    ['sft', base, data, null, 12, 4, 3e-3, 1, 0.01, 64, 1234, null, 32]);
});

test('LoRA with adapter dropout: 9 steps (into the second epoch), Ctrl-C, resume to 12 equals 12 in one go, merged copy included', async () => {
  const lora = { r: 2, alpha: 4, dropout: 0.1, targets: 'all' as const };
  const { straight, split } = await straightAndSplit('lora', 9, { lora, lr: 1e-2, mergeLora: true });
  assert.ok(readFileSync(join(split, 'adapter_model.safetensors')).equals(readFileSync(join(straight, 'adapter_model.safetensors'))), 'resumed adapter differs');
  // The interrupted run merged its step-9 adapter; the resume (no mergeLora given: the run's) replaces that copy.
  assert.ok(readFileSync(join(split, 'merged', 'model.safetensors')).equals(readFileSync(join(straight, 'merged', 'model.safetensors'))), 'merged model is stale');
  assert.deepEqual(readCheckpoint(split).state.run.lora, lora);
});

test('a resume that would change the run is refused naming the saved values, and writes nothing', async () => {
  const out = join(root, 'conflict');
  await runSft({ ...common, steps: 10, out, progress: false });
  const before = snapshotFiles(out);
  const other = writeJsonl(join(root, 'other.jsonl'), colorQa(20, 5));
  await assert.rejects(runSft({ resume: out, steps: 20, model: root, data: other, lr: 0.5, batchSize: 8, seed: 7, maxLength: 32, lora: { r: 4 }, out: join(root, 'elsewhere') }),
    (e: unknown) => e instanceof PrimerError && e.code === 'RESUME_CONFLICT' && e.message === `--resume ${out}: --model ${root} differs from the run's ${base}; `
      + `--data ${other} differs from the run's ${data}; --batch-size 8 differs from the run's 4; --lr 0.5 differs from the run's 0.003; `
      + '--max-length 32 differs from the run\'s 64; --seed 7 differs from the run\'s 1234; --lora-r 4 does not apply to the run\'s full fine-tuning; '
      + `--out ${join(root, 'elsewhere')} differs from the run's directory ${out} (a resumed run keeps its settings; start a new run with --out)`);
  assert.deepEqual(snapshotFiles(out), before, 'a refused resume wrote something');
  // The stored values themselves, and a new length, are accepted: 10 + 10 steps.
  const r = await runSft({ resume: out, model: base, data, lr: 3e-3, batchSize: 4, seed: 1234, lora: null, out, steps: 20, log: () => {}, progress: false });
  assert.equal(r.training.step, 20);
  const run = readCheckpoint(out).state.run;
  // A new 20-step run would warm up for 2 steps: the resumed one keeps its schedule's start.
  assert.deepEqual([run.steps, run.warmupSteps], [20, 1]);
  assert.notDeepEqual(snapshotFiles(out), before);
});

test('at or past its target a resume trains nothing and writes nothing; epochs extend it', async () => {
  const out = join(root, 'done');
  await runSft({ ...common, steps: 3, out, progress: false });
  const before = snapshotFiles(out);
  await assert.rejects(runSft({ resume: out }), (e: unknown) => e instanceof PrimerError && e.code === 'NOTHING_TO_TRAIN'
    && e.message === 'already at step 3 of 3; nothing to train (raise --steps to continue)');
  await assert.rejects(runSft({ resume: out, steps: 2 }), /^PrimerError: already at step 3, past --steps 2; nothing to train \(raise --steps above 3 to continue\)$/);
  assert.deepEqual(snapshotFiles(out), before);
  // One epoch of 32 examples in batches of 4.
  const r = await runSft({ resume: out, epochs: 1, log: () => {}, progress: false });
  assert.equal(r.training.step, 8);
});

test('changed data or base weights, another objective, or a checkpoint without the settings are refused before anything is written', async () => {
  const dir = join(root, 'inputs');
  mkdirSync(dir);
  const myBase = makeTinyModelDir(dir, 4);
  const myData = writeJsonl(join(dir, 'qa.jsonl'), colorQa(40, 2));
  const out = join(dir, 'run');
  await runSft({ ...common, model: myBase, data: myData, steps: 2, out, lora: { r: 2 }, progress: false });
  const before = snapshotFiles(out);
  const refused = (message: string) => (e: unknown) => e instanceof PrimerError && e.code === 'RESUME_CONFLICT' && e.message === message;

  writeJsonl(myData, colorQa(40, 3));
  await assert.rejects(runSft({ resume: out, steps: 4, log: () => {}, progress: false }),
    refused(`--resume ${out}: the examples of --data ${myData} are not the ones the run was trained on (the file changed since it started); a resumed run needs the same data`));
  writeJsonl(myData, colorQa(40, 2));
  const weights = join(myBase, 'model.safetensors');
  const saved = readFileSync(weights);
  writeFileSync(weights, readFileSync(join(base, 'model.safetensors')));
  await assert.rejects(runSft({ resume: out, steps: 4, log: () => {}, progress: false }),
    refused(`--resume ${out}: the base model ${myBase} has changed since the run started (its weights differ); a resumed run needs the base it started from`));
  writeFileSync(weights, saved);
  assert.deepEqual(snapshotFiles(out), before);

  const statePath = join(listCheckpoints(out)[0]!, 'trainer_state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  writeFileSync(statePath, JSON.stringify({ ...state, run: { ...state.run, objective: 'clm' } }));
  await assert.rejects(runSft({ resume: out, steps: 4 }),
    refused(`--resume ${out}: ${listCheckpoints(out)[0]} holds a clm run, not an SFT run; continue it with primer pretrain --resume ${out}`));
  // What SFT checkpoints recorded before resume existed: no lr, batch size, seed, …
  const { objective, model, data: d, steps, lora } = state.run;
  writeFileSync(statePath, JSON.stringify({ ...state, run: { objective, model, data: d, steps, lora } }));
  await assert.rejects(runSft({ resume: out, steps: 4 }), (e: unknown) => e instanceof PrimerError && e.code === 'RESUME_UNSUPPORTED'
    && e.message === `--resume ${out}: ${listCheckpoints(out)[0]} does not record the settings an exact resume needs (it was written before SFT runs could be resumed); start a new run with --out`);
  writeFileSync(statePath, JSON.stringify(state));
  const r = await runSft({ resume: out, steps: 4, log: () => {}, progress: false });
  assert.equal(r.training.step, 4);
});
