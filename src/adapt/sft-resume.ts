/**
 * Resuming an SFT run (`primer finetune --objective sft --resume DIR`), as `primer pretrain --resume`:
 * every checkpoint records the run's resolved settings (sftRunSchema), from which the same held-out
 * split, batches and LR schedule are rebuilt; the trainer then restores the weights (or adapters),
 * AdamW moments, data position and RNGs, so k steps + a resume to N equal N steps in one go, bit for
 * bit. An option given on resume must agree with the stored one: only the length (steps, epochs) and
 * the merged copy (mergeLora), which no training step depends on, may change.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { PrimerError } from '../io/errors.ts';
import { readCheckpoint, recoverCheckpoints, runDirOf, type Checkpoint } from '../train/checkpoint.ts';
import { nothingToTrain } from '../train/resume-settings.ts';
import type { LoraSettings } from './lora.ts';
import type { SftExample } from './sft.ts';

/** What an SFT checkpoint's `run` holds: every setting a step depends on, resolved (no defaults left to re-derive). */
export const sftRunSchema = z.object({
  objective: z.literal('sft'),
  model: z.string(),
  data: z.string(),
  valData: z.string().nullable(),
  valFraction: z.number(),
  steps: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  lr: z.number(),
  // Resolved once: its default depends on steps, and extending a run must not move the warmup.
  warmupSteps: z.number().int().nonnegative(),
  weightDecay: z.number(),
  maxLength: z.number().int().positive(),
  seed: z.number().int(),
  chatTemplate: z.string(),
  lora: z.object({
    r: z.number().int().positive(), alpha: z.number(), dropout: z.number(),
    targets: z.union([z.enum(['attention', 'mlp', 'all']), z.array(z.string())]),
  }).nullable(),
  // Not a training setting, but a resumed run must rewrite <out>/merged, else it keeps the copy of the step it stopped at.
  mergeLora: z.boolean(),
  trainExamples: z.number().int().positive(),
  /** The base weights the run started from: a changed base model cannot continue it (LoRA trains on top of it). */
  baseFingerprint: z.string(),
  /** Token ids and labels of the training and held-out examples: catches a data file edited since the run started. */
  examplesSha256: z.string(),
});
export type SftRunSettings = z.infer<typeof sftRunSchema>;

/** The options a resume checks against the stored settings (undefined ones are not checked). */
export interface SftResumeGiven {
  model?: string; data?: string; valData?: string; valFraction?: number; out?: string;
  batchSize?: number; lr?: number; warmupSteps?: number; weightDecay?: number; maxLength?: number; seed?: number; chatTemplate?: string;
  /** null: full fine-tuning asked for; a partial object: only its fields are checked. */
  lora?: Partial<LoraSettings> | null;
}

export interface SftResume {
  checkpoint: Checkpoint;
  runDir: string;
  /** The stored settings, with steps set to the target of this invocation. */
  settings: SftRunSettings;
}

/** `builtin:` names stay as written; files are compared and stored as absolute paths. */
export function dataPath(p: string): string {
  return p.startsWith('builtin:') ? p : resolve(p);
}

export function stepsForEpochs(epochs: number, trainExamples: number, batchSize: number): number {
  return Math.max(1, Math.ceil(epochs * trainExamples / batchSize));
}

export function examplesSha256(...sets: ReadonlyArray<readonly SftExample[]>): string {
  const h = createHash('sha256');
  for (const set of sets) {
    h.update(`${set.length};`);
    for (const e of set) {
      h.update(`${e.ids.length};`);
      h.update(new Uint8Array(e.ids.buffer, e.ids.byteOffset, e.ids.byteLength));
      h.update(new Uint8Array(e.labels.buffer, e.labels.byteOffset, e.labels.byteLength));
    }
  }
  return h.digest('hex');
}

const FLAGS: Record<string, string> = {
  model: '--model', data: '--data', valData: '--val-data', valFraction: 'valFraction', batchSize: '--batch-size', lr: '--lr',
  warmupSteps: 'warmupSteps', weightDecay: 'weightDecay', maxLength: '--max-length', seed: '--seed',
};
const LORA_FLAGS = { r: '--lora-r', alpha: '--lora-alpha', dropout: '--lora-dropout', targets: '--lora-targets' } as const;

const shown = (v: unknown) => (v === null || v === undefined ? '(none)' : Array.isArray(v) ? v.join(',') : String(v));

function conflicts(s: SftRunSettings, given: SftResumeGiven, runDir: string): string[] {
  const out: string[] = [];
  for (const [key, flag] of Object.entries(FLAGS)) {
    const value = given[key as keyof SftResumeGiven];
    if (value === undefined) continue;
    const saved = s[key as keyof SftRunSettings];
    const same = key === 'model' || key === 'data' || key === 'valData' ? dataPath(value as string) === saved : value === saved;
    if (!same) out.push(`${flag} ${shown(value)} differs from the run's ${shown(saved)}`);
  }
  if (given.chatTemplate !== undefined && given.chatTemplate !== s.chatTemplate) out.push('chatTemplate differs from the run\'s chat template');
  if (given.lora === null && s.lora) out.push(`--lora-r 0 (full fine-tuning) differs from the run's LoRA r=${s.lora.r}`);
  for (const [key, flag] of Object.entries(LORA_FLAGS)) {
    const value = given.lora?.[key as keyof LoraSettings];
    if (value === undefined) continue;
    if (!s.lora) out.push(`${flag} ${shown(value)} does not apply to the run's full fine-tuning`);
    else if (JSON.stringify(value) !== JSON.stringify(s.lora[key as keyof typeof LORA_FLAGS])) out.push(`${flag} ${shown(value)} differs from the run's ${shown(s.lora[key as keyof typeof LORA_FLAGS])}`);
  }
  if (given.out !== undefined && resolve(given.out) !== resolve(runDir)) out.push(`--out ${given.out} differs from the run's directory ${resolve(runDir)}`);
  return out;
}

/**
 * Reads the checkpoint to continue (validated before anything is touched) and refuses, before any model
 * or data loads and without writing: a run that is not SFT, options that differ from the stored ones
 * (RESUME_CONFLICT, naming each stored value), and a run already at its target (NOTHING_TO_TRAIN).
 */
export function openSftResume(resume: string, given: SftResumeGiven, length: { steps?: number; epochs?: number }): SftResume {
  if (!existsSync(join(resume, 'trainer_state.json'))) recoverCheckpoints(resume); // a run directory: undo a swap cut short by a kill
  const checkpoint = readCheckpoint(resume);
  const runDir = runDirOf(checkpoint.dir);
  const run = checkpoint.state.run;
  if (run.objective !== 'sft') {
    const objective = typeof run.objective === 'string' ? run.objective : 'pre-training';
    const hint = ['clm', 'mlm', 'mlm+nsp', 'pre-training'].includes(objective) ? `; continue it with primer pretrain --resume ${resume}` : '';
    throw new PrimerError('RESUME_CONFLICT', `--resume ${resume}: ${checkpoint.dir} holds a ${objective} run, not an SFT run${hint}`);
  }
  const parsed = sftRunSchema.safeParse(run);
  if (!parsed.success) {
    throw new PrimerError('RESUME_UNSUPPORTED', `--resume ${resume}: ${checkpoint.dir} does not record the settings an exact resume needs `
      + '(it was written before SFT runs could be resumed); start a new run with --out');
  }
  const settings = parsed.data;
  const found = conflicts(settings, given, runDir);
  if (found.length) {
    throw new PrimerError('RESUME_CONFLICT', `--resume ${resume}: ${found.join('; ')} (a resumed run keeps its settings; start a new run with --out)`);
  }
  const steps = length.steps ?? (length.epochs !== undefined ? stepsForEpochs(length.epochs, settings.trainExamples, settings.batchSize) : settings.steps);
  const idle = nothingToTrain(checkpoint.state.step, steps);
  if (idle) throw new PrimerError('NOTHING_TO_TRAIN', idle);
  return { checkpoint, runDir, settings: { ...settings, steps } };
}

/** After the model and data are loaded: the resumed run must see the same base weights and examples as the one checkpointed. */
export function checkResumedInputs(resume: string, s: SftRunSettings, now: { baseFingerprint: string; examplesSha256: string }): void {
  if (now.baseFingerprint !== s.baseFingerprint) {
    throw new PrimerError('RESUME_CONFLICT', `--resume ${resume}: the base model ${s.model} has changed since the run started (its weights differ); `
      + 'a resumed run needs the base it started from');
  }
  if (now.examplesSha256 !== s.examplesSha256) {
    throw new PrimerError('RESUME_CONFLICT', `--resume ${resume}: the examples of --data ${s.data}${s.valData ? ` / --val-data ${s.valData}` : ''} `
      + 'are not the ones the run was trained on (the file changed since it started); a resumed run needs the same data');
  }
}
