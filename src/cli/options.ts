/** Argument parsers and error handling shared by the CLI commands. */
import { InvalidArgumentError } from 'commander';
import { PrimerError } from '../io/errors.ts';
import type { PresetName } from '../models/presets.ts';
import type { RunSettings } from '../train/pretrain.ts';
import { resolveCorpus } from '../data/builtin.ts';

export function intArg(min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

export function floatArg(min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number${min > -Infinity ? ` ≥ ${min}` : ''}${max < Infinity ? ` ≤ ${max}` : ''}, got "${value}"`);
    }
    return n;
  };
}

/** A probability mass in (0, 1], e.g. top-p: 0 would keep no token. */
export function probabilityArg(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a number > 0 and ≤ 1, got "${value}"`);
  return n;
}

/** A number > 0: a limit such as --max-minutes 0 would stop before anything is done. */
export function positiveFloatArg(value: string): number {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

export function choiceArg<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/**
 * Runs a command action: user-facing failures (bad input files, corrupt checkpoints, invalid
 * options) print one clear line and exit 1; anything else is a bug and keeps its stack trace.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (e) {
      const err = e as Error;
      // Messages that start with a file path ("/runs/x already holds …") describe bad input too.
      const userError = err instanceof PrimerError || err instanceof RangeError || err.name === 'TokenizerFormatError'
        || /^(no |the |--|\S+: |(\/|\.{1,2}\/|~\/|[A-Za-z]:[\\/])\S* )/.test(err.message ?? '');
      console.error(`primer: error: ${userError ? err.message : err.stack ?? String(err)}`);
      process.exitCode = 1;
    }
  };
}

/** The command-line flags that GPT and BERT pre-training share (parsed by `primer pretrain`). */
export interface CommonPretrainFlags {
  corpus?: string[];
  jsonlField?: string;
  preset?: PresetName;
  layers?: number;
  dims?: number;
  heads?: number;
  vocabSize?: number;
  tokenizer?: string;
  blockSize?: number;
  batchSize?: number;
  gradAccum?: number;
  steps?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  decay?: RunSettings['decay'];
  weightDecay?: number;
  gradClip?: number;
  dropout?: number;
  bf16?: boolean;
  evalEvery?: number;
  evalBatches?: number;
  checkpointEvery?: number;
  keep?: number;
  seed?: number;
  out?: string;
  resume?: string;
  maxMinutes?: number;
}

/**
 * The shared flags as library options: renamed where the flag is shorter than the setting
 * (--warmup → warmupSteps, --keep → keepCheckpoints), `--grad-clip 0` meaning no clipping,
 * and `builtin:…` corpus names expanded into files.
 */
export function commonPretrainOptions(f: CommonPretrainFlags) {
  return {
    corpus: f.corpus && resolveCorpus(f.corpus), jsonlField: f.jsonlField, preset: f.preset, layers: f.layers, dims: f.dims, heads: f.heads,
    vocabSize: f.vocabSize, tokenizer: f.tokenizer, batchSize: f.batchSize, gradAccum: f.gradAccum, steps: f.steps, lr: f.lr, minLr: f.minLr,
    warmupSteps: f.warmup, decay: f.decay, weightDecay: f.weightDecay, gradClip: f.gradClip === 0 ? Infinity : f.gradClip, dropout: f.dropout,
    bf16: f.bf16, evalEvery: f.evalEvery, evalBatches: f.evalBatches, checkpointEvery: f.checkpointEvery, keepCheckpoints: f.keep, seed: f.seed,
    out: f.out, resume: f.resume, maxMinutes: f.maxMinutes,
  };
}
