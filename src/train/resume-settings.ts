/**
 * What a resumed pre-training run may change. Shared by pretrain() (GPT, Llama), pretrainBert() and the
 * CLI, which checks before it knows which trainer to call (so that it can name the flags as typed).
 */
import { resolve } from 'node:path';
import { PrimerError } from '../io/errors.ts';
import type { AnyModelConfig } from '../models/load.ts';
import { resolveCorpus } from '../data/builtin.ts';
import { storedGradClip } from './checkpoint.ts';

/**
 * The settings a resumed run keeps. Exact resume restores the data position, the optimizer moments and
 * the schedule of the stored settings, so changing any of these would continue another run than the one
 * checkpointed; only its length (steps), evaluation and checkpoint cadence and time limit may change.
 */
const KEPT_ON_RESUME = new Set(['objective', 'arch', 'corpus', 'data', 'jsonlField', 'documents', 'maxDocumentChars', 'preset', 'layers', 'dims', 'heads',
  'vocabSize', 'tokenizer', 'blockSize', 'maxSeqLength', 'batchSize', 'gradAccum', 'lr', 'minLr', 'warmupSteps', 'decay', 'weightDecay', 'gradClip',
  'dropout', 'bf16', 'evalBatches', 'seed', 'initFrom', 'embeddingInit', 'freezeEmbeddings', 'maskProbability', 'wholeWordMask', 'positionEmbedding',
  'attentionInit', 'betas', 'valFraction']);
const FLAGS: Record<string, string> = { warmupSteps: '--warmup', maskProbability: '--mask-prob', betas: 'betas', valFraction: 'valFraction' };
const flagOf = (key: string) => FLAGS[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function comparable(key: string, v: unknown): string {
  if (key === 'gradClip') v = storedGradClip(v) === Infinity ? 'off' : v;
  if ((key === 'tokenizer' || key === 'initFrom' || key === 'data') && typeof v === 'string') v = resolve(v);
  if (key === 'corpus' && Array.isArray(v)) {
    // `builtin` and [] name the same files (the CLI stores them expanded); names it cannot expand are compared as written.
    try {
      v = resolveCorpus(v as string[]).map((p) => resolve(p));
    } catch {
      v = (v as string[]).map((p) => resolve(p));
    }
  }
  return JSON.stringify(v);
}

function shown(key: string, v: unknown): string {
  if (v === undefined) return '(none)';
  if (key === 'gradClip' && storedGradClip(v) === Infinity) return '0 (off)';
  if (key === 'corpus' && Array.isArray(v)) return v.length === 0 ? 'built-in corpus' : v.length > 3 ? `${v.slice(0, 3).join(' ')} … (${v.length} paths)` : v.join(' ');
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return Array.isArray(v) ? v.join(' ') : String(v);
}

export interface ResumeSettingsCheck {
  /** The --resume argument (for the message), the run directory and its stored settings (trainer_state.json `run`). */
  resume: string; runDir: string; run: Record<string, unknown>;
  /** The values of settings older checkpoints did not store: CLM_RESUME_DEFAULTS or BERT_PRETRAIN_DEFAULTS. */
  defaults: object;
  /** The checkpoint's config.json: the model shape of runs that did not set layers/dims/heads themselves. */
  modelConfig?: AnyModelConfig;
  /** Options asked for now (undefined ones are not checked), and an output directory, which must be the run's own. */
  given: Record<string, unknown>; out?: string;
  /** Flags under which an option was given, where not its own (--block-size sets a BERT's maxSeqLength; --name sets out). */
  labels?: Record<string, string>;
}

/** Refuses (PrimerError RESUME_CONFLICT) options that differ from what a resumed run keeps, naming each with its stored value. */
export function checkResumeSettings(c: ResumeSettingsCheck): void {
  const objective = typeof c.run.objective === 'string' ? c.run.objective : 'clm';
  const clm = objective === 'clm';
  const defaults = c.defaults as Record<string, unknown>;
  const applies = new Set([...Object.keys(defaults), 'layers', 'dims', 'heads', 'tokenizer', clm ? 'initFrom' : 'data']);
  const m = (c.modelConfig ?? {}) as Record<string, unknown>;
  const shape: Record<string, unknown> = { layers: m.n_layer ?? m.num_hidden_layers, dims: m.n_embd ?? m.hidden_size, heads: m.n_head ?? m.num_attention_heads };
  const conflicts: string[] = [];
  for (const [key, value] of Object.entries(c.given)) {
    if (value === undefined || !KEPT_ON_RESUME.has(key)) continue;
    const given = `${c.labels?.[key] ?? flagOf(key)} ${shown(key, value)}`;
    const saved = c.run[key] !== undefined ? c.run[key] : (shape[key] ?? defaults[key]);
    if (!applies.has(key)) conflicts.push(`${given} does not apply to the run's objective ${objective}`);
    else if (comparable(key, value) !== comparable(key, saved)) conflicts.push(`${given} differs from the run's ${shown(key, saved)}`);
  }
  if (c.out !== undefined && resolve(c.out) !== resolve(c.runDir)) conflicts.push(`${c.labels?.out ?? '--out'} ${c.out} differs from the run's directory ${resolve(c.runDir)}`);
  if (conflicts.length === 0) return;
  throw new PrimerError('RESUME_CONFLICT', `--resume ${c.resume}: ${conflicts.join('; ')} (a resumed run keeps its settings; start a new run with --out`
    + `${clm ? ', or --init-from to continue pre-training with new settings' : ''})`);
}

/** Why resuming at `step` towards `target` steps would train nothing, or null when there is something to train. */
export function nothingToTrain(step: number, target: number): string | null {
  if (step < target) return null;
  return step === target ? `already at step ${step} of ${target}; nothing to train (raise --steps to continue)`
    : `already at step ${step}, past --steps ${target}; nothing to train (raise --steps above ${step} to continue)`;
}
