/**
 * Training checkpoints. A checkpoint is a directory `<run>/checkpoints/step-0000100/` holding
 *   model.safetensors      the weights (HF names), plus config.json / tokenizer.json written by the caller
 *   optimizer.safetensors  AdamW first and second moments, `m.<param>` and `v.<param>`
 *   trainer_state.json     step, RNG states, data position, best val loss, the run's config, and
 *                          the size + SHA-256 of every other file (so truncation or corruption is caught)
 * It is written into a temp directory and renamed into place (all or nothing), and only the last K
 * are kept. Reading validates every file before anything in the model or optimizer is touched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import type { Module } from '../nn/module.ts';
import { formatShape } from '../tensor/tensor.ts';
import type { AdamW } from '../tensor/optim.ts';
import { parseSafetensors, writeSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { PrimerError } from '../io/errors.ts';
import { modelTensors } from '../models/load.ts';
import { readJsonFile } from '../io/json.ts';

export class CheckpointError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT', message, options);
  }
}

const rngState = z.object({ seed: z.number().int().nonnegative(), counter: z.number().int().nonnegative() });

export const trainerStateSchema = z.object({
  format: z.literal('primer-trainer-state'),
  version: z.literal(1),
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().positive(),
  tokensSeen: z.number().nonnegative(),
  rngs: z.record(z.string(), rngState),
  data: z.unknown(),
  bestValLoss: z.number().nullable(),
  run: z.record(z.string(), z.unknown()),
  files: z.record(z.string(), z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type TrainerState = z.infer<typeof trainerStateSchema>;

/** What the trainer knows; `files` is filled in by saveCheckpoint. */
export type TrainerStateInput = Omit<TrainerState, 'format' | 'version' | 'files'>;

export const CHECKPOINTS_DIR = 'checkpoints';
const STEP_DIR = /^step-(\d+)$/;
/** A save in progress (or cut short): `.step-N.<pid>.<hex>.tmp`. */
const TEMP_DIR = /^\.(step-\d+)\.(\d+)\.[0-9a-f]+\.tmp$/;
/** The previous copy of a step saved twice, kept only between the two renames of the swap. */
const OLD_DIR = /^(step-\d+)\.old-[0-9a-f]+$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface SaveCheckpointOptions {
  runDir: string;
  model: Module;
  optimizer: AdamW;
  /** Parameter names in optimizer order (the order of optimizer.parameters()). */
  paramNames: readonly string[];
  state: TrainerStateInput;
  /** Writes the model's config.json, tokenizer files, … into the checkpoint directory. */
  writeExtraFiles?: (dir: string) => void;
  /** Keep this many most recent checkpoints (default 3; 0 keeps all). */
  keep?: number;
}

/** Writes a checkpoint atomically and prunes old ones. Returns its directory. */
export function saveCheckpoint(o: SaveCheckpointOptions): string {
  const root = join(o.runDir, CHECKPOINTS_DIR);
  mkdirSync(root, { recursive: true });
  const final = join(root, checkpointName(o.state.step));
  const temp = join(root, `.${checkpointName(o.state.step)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  mkdirSync(temp);
  try {
    writeSafetensors(join(temp, 'model.safetensors'), modelTensors(o.model), { format: 'pt' }, { durable: false });
    const { m, v, step } = o.optimizer.state();
    const params = o.optimizer.parameters();
    if (params.length !== o.paramNames.length) throw new CheckpointError(`saveCheckpoint: ${o.paramNames.length} names for ${params.length} optimizer parameters`);
    const moments = o.paramNames.flatMap((name, i) => [
      { name: `m.${name}`, shape: params[i]!.shape, data: new Float32Array(m[i]!) },
      { name: `v.${name}`, shape: params[i]!.shape, data: new Float32Array(v[i]!) },
    ]);
    writeSafetensors(join(temp, 'optimizer.safetensors'), moments, { optimizer: 'adamw', step: String(step) }, { durable: false });
    o.writeExtraFiles?.(temp);
    const files: TrainerState['files'] = {};
    for (const f of readdirSync(temp).sort()) {
      const bytes = readFileSync(join(temp, f));
      files[f] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
    }
    const state: TrainerState = { format: 'primer-trainer-state', version: 1, ...o.state, files };
    writeJsonAtomic(join(temp, 'trainer_state.json'), state);
    if (existsSync(final)) {
      // Same step saved again (e.g. a signal right after a periodic save): swap, then drop the old one.
      const old = `${final}.old-${randomBytes(4).toString('hex')}`;
      renameSync(final, old);
      renameSync(temp, final);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(temp, final);
    }
  } catch (e) {
    rmSync(temp, { recursive: true, force: true });
    throw e;
  }
  pruneCheckpoints(root, o.keep ?? 3);
  return final;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Repairs what saves cut short by a kill (SIGKILL, power loss) leave under `<run>/checkpoints`:
 * temp directories of processes that are gone are removed (one of a live process is a save in
 * progress and is left alone), and a same-step swap interrupted between its two renames is undone
 * (`step-N.old-*` becomes `step-N` again when `step-N` is missing, else it is removed). Complete
 * checkpoints are never touched. Idempotent; returns what it did.
 */
export function recoverCheckpoints(runDir: string): { removed: string[]; restored: string[] } {
  const root = join(runDir, CHECKPOINTS_DIR);
  const report = { removed: [] as string[], restored: [] as string[] };
  if (!existsSync(root)) return report;
  for (const name of readdirSync(root).sort()) {
    const path = join(root, name);
    const temp = TEMP_DIR.exec(name);
    if (temp) {
      const pid = Number(temp[2]);
      if (pid !== process.pid && processAlive(pid)) continue;
      rmSync(path, { recursive: true, force: true });
      report.removed.push(path);
      continue;
    }
    const old = OLD_DIR.exec(name);
    if (old) {
      const final = join(root, old[1]!);
      if (existsSync(final)) {
        rmSync(path, { recursive: true, force: true });
        report.removed.push(path);
      } else {
        renameSync(path, final);
        report.restored.push(final);
      }
    }
  }
  return report;
}

/**
 * Makes `runDir` ready for a new training run: refused when it holds a complete checkpoint (that run
 * can be continued with --resume); otherwise the leftovers of an attempt killed before its first
 * checkpoint (partial saves, metrics of steps never checkpointed) are removed, so the same --out works again.
 */
export function startFreshRun(runDir: string): void {
  recoverCheckpoints(runDir);
  if (listCheckpoints(runDir).length > 0) {
    throw new PrimerError('RUN_EXISTS', `${runDir} already holds a training run; continue it with --resume ${runDir} or choose another --out`);
  }
  rmSync(join(runDir, 'metrics.jsonl'), { force: true });
}

/** Checkpoint directories under a run, oldest first. */
export function listCheckpoints(runDir: string): string[] {
  const root = join(runDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => STEP_DIR.test(n) && statSync(join(root, n)).isDirectory())
    .sort((a, b) => Number(STEP_DIR.exec(a)![1]) - Number(STEP_DIR.exec(b)![1]))
    .map((n) => join(root, n));
}

function pruneCheckpoints(root: string, keep: number): void {
  if (keep <= 0) return;
  const all = listCheckpoints(join(root, '..'));
  for (const dir of all.slice(0, Math.max(0, all.length - keep))) rmSync(dir, { recursive: true, force: true });
}

/** A checkpoint directory, or the latest checkpoint of a run directory. */
export function resolveCheckpointDir(path: string): string {
  if (!existsSync(path)) throw new CheckpointError(`no checkpoint at ${path}: the path does not exist`);
  if (existsSync(join(path, 'trainer_state.json'))) return path;
  const all = listCheckpoints(path);
  if (all.length === 0) {
    const root = join(path, CHECKPOINTS_DIR);
    const partial = existsSync(root) && readdirSync(root).some((n) => TEMP_DIR.test(n) || OLD_DIR.test(n));
    if (partial || existsSync(join(path, 'metrics.jsonl'))) {
      throw new CheckpointError(`no complete checkpoint in ${path}: the run was stopped before its first checkpoint was saved, so there is nothing to resume; `
        + `start it again with --out ${path} (the partial files are cleaned up)`);
    }
    throw new CheckpointError(`no checkpoint in ${path}: expected trainer_state.json or a ${CHECKPOINTS_DIR}/step-N directory`);
  }
  return all[all.length - 1]!;
}

/** The run directory a checkpoint belongs to (`<run>/checkpoints/step-N` → `<run>`). */
export function runDirOf(checkpointDir: string): string {
  const parent = join(checkpointDir, '..');
  return basename(parent) === CHECKPOINTS_DIR ? join(parent, '..') : parent;
}

export interface Checkpoint {
  dir: string;
  state: TrainerState;
  weights: SafetensorsFile;
  optimizer: SafetensorsFile;
}

/** Reads and validates a checkpoint: JSON schema, every file's size and hash, both safetensors files. */
export function readCheckpoint(path: string): Checkpoint {
  const dir = resolveCheckpointDir(path);
  const statePath = join(dir, 'trainer_state.json');
  const raw = readJsonFile(statePath, (message, cause) => new CheckpointError(`checkpoint ${dir} is corrupt: ${message}`, { cause }));
  const parsed = trainerStateSchema.safeParse(raw);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ');
    throw new CheckpointError(`checkpoint ${dir} is corrupt: trainer_state.json: ${why}`);
  }
  const state = parsed.data;
  for (const required of ['model.safetensors', 'optimizer.safetensors']) {
    if (!state.files[required]) throw new CheckpointError(`checkpoint ${dir} is corrupt: trainer_state.json lists no ${required}`);
  }
  const contents = new Map<string, Uint8Array>();
  for (const [name, expect] of Object.entries(state.files)) {
    const p = join(dir, name);
    if (!existsSync(p)) throw new CheckpointError(`checkpoint ${dir} is incomplete: ${name} is missing`);
    const bytes = readFileSync(p);
    if (bytes.byteLength !== expect.bytes) {
      throw new CheckpointError(`checkpoint ${dir} is corrupt: ${name} has ${bytes.byteLength} bytes, expected ${expect.bytes} (truncated?)`);
    }
    if (sha256(bytes) !== expect.sha256) throw new CheckpointError(`checkpoint ${dir} is corrupt: ${name} does not match its SHA-256 in trainer_state.json`);
    contents.set(name, bytes);
  }
  const parse = (name: string): SafetensorsFile => {
    try {
      return parseSafetensors(contents.get(name)!, join(dir, name));
    } catch (e) {
      throw new CheckpointError(`checkpoint ${dir} is corrupt: ${(e as Error).message}`, { cause: e });
    }
  };
  return { dir, state, weights: parse('model.safetensors'), optimizer: parse('optimizer.safetensors') };
}

/**
 * Copies a checkpoint's weights and optimizer moments into a model and optimizer. Every name and
 * shape is checked first, so on error nothing has been modified.
 */
export function restoreCheckpoint(ck: Checkpoint, model: Module, optimizer: AdamW, paramNames: readonly string[]): void {
  const fail = (msg: string) => new CheckpointError(`checkpoint ${ck.dir} does not fit this model: ${msg}`);
  const params = new Map(model.namedParameters());
  const missing = [...params.keys()].filter((n) => !ck.weights.has(n));
  const unexpected = ck.weights.names.filter((n) => !params.has(n));
  if (missing.length || unexpected.length) {
    throw fail([missing.length ? `missing tensors: ${missing.join(', ')}` : '', unexpected.length ? `unexpected tensors: ${unexpected.join(', ')}` : ''].filter(Boolean).join('; '));
  }
  for (const [name, p] of params) {
    const shape = ck.weights.info(name).shape;
    if (shape.join() !== p.shape.join()) throw fail(`${name} has shape ${formatShape(shape)} in the checkpoint, ${formatShape(p.shape)} in the model`);
  }
  const optParams = optimizer.parameters();
  for (const [i, name] of paramNames.entries()) {
    for (const k of ['m', 'v']) {
      if (!ck.optimizer.has(`${k}.${name}`)) throw fail(`optimizer.safetensors has no ${k}.${name}`);
      const shape = ck.optimizer.info(`${k}.${name}`).shape;
      if (shape.join() !== optParams[i]!.shape.join()) throw fail(`${k}.${name} has shape ${formatShape(shape)}, the parameter ${formatShape(optParams[i]!.shape)}`);
    }
  }
  if (ck.optimizer.names.length !== 2 * paramNames.length) {
    throw fail(`optimizer.safetensors has ${ck.optimizer.names.length} tensors, expected ${2 * paramNames.length}`);
  }
  const step = Number(ck.optimizer.metadata?.step ?? NaN);
  if (!Number.isSafeInteger(step) || step < 0) throw fail('optimizer.safetensors has no valid "step" metadata');
  for (const [name, p] of params) p.data.set(ck.weights.getFloat32(name));
  optimizer.loadState({
    step,
    m: paramNames.map((n) => ck.optimizer.getFloat32(`m.${n}`)),
    v: paramNames.map((n) => ck.optimizer.getFloat32(`v.${n}`)),
  });
}

/**
 * The pre-training objective recorded by a Primer run directory's latest checkpoint ("mlm",
 * "mlm+nsp", "clm", …), or null where there is none to read (a model from elsewhere, no checkpoint).
 */
export function recordedObjective(runDir: string): string | null {
  const latest = listCheckpoints(runDir).at(-1);
  if (!latest) return null;
  try {
    const state = JSON.parse(readFileSync(join(latest, 'trainer_state.json'), 'utf8')) as { run?: { objective?: unknown } };
    return typeof state.run?.objective === 'string' ? state.run.objective : null;
  } catch {
    return null;
  }
}

/** JSON has no Infinity: a run without gradient clipping (gradClip Infinity) is stored with null. */
export const storedGradClip = (v: unknown): unknown => (v === null ? Infinity : v);

/** The settings a resumed run may change: its length and its evaluation and checkpoint cadence. */
type ResumeChangeable = { steps?: number; evalEvery?: number; checkpointEvery?: number; keepCheckpoints?: number };

/**
 * The settings of a resumed run: the stored `run` over `defaults` (for settings older checkpoints
 * lack), with only its length and cadence taken from `given`, and a stored null gradClip back to
 * Infinity (else the trainer's default clip would apply).
 */
export function resumedSettings<T extends { gradClip: number }>(defaults: T, run: Record<string, unknown>, given: ResumeChangeable): T {
  const changed = Object.fromEntries(Object.entries({ steps: given.steps, evalEvery: given.evalEvery, checkpointEvery: given.checkpointEvery, keepCheckpoints: given.keepCheckpoints })
    .filter(([, v]) => v !== undefined));
  const settings = { ...defaults, ...(run as Partial<T>), ...changed } as T;
  settings.gradClip = storedGradClip(settings.gradClip) as number;
  return settings;
}

