/**
 * Opening a model directory before anything is loaded from it: the path itself, config.json, and the
 * architecture the config declares. Each step fails with what is actually wrong (no such path, a file
 * given for the directory, JSON broken at line L, a classifier given to a command that needs a
 * language model) rather than with a symptom further down (no config.json, unexpected tensors).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PrimerError } from '../io/errors.ts';
import { readJsonFile } from '../io/json.ts';
import { completeStagedFiles } from '../io/dir-swap.ts';
import { writeJsonAtomic } from '../io/atomic.ts';

export class ModelLoadError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_LOAD', message, options);
  }
}

/** Refuses a path that does not exist or is not a directory. */
export function checkModelDir(dir: string): void {
  if (!existsSync(dir)) throw new ModelLoadError(`model directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) {
    // Passing a file of the directory (config.json, model.safetensors) is the usual slip.
    const hint = /^config\.json$|\.safetensors$|^tokenizer\.json$/.test(basename(dir)) ? ` (pass the directory that holds it, ${dirname(dir)})` : '';
    throw new ModelLoadError(`${dir} is a file, not a model directory${hint}`);
  }
}

/** The newest `checkpoints/step-N` of a training run directory, if any (the final model is written only at the end). */
function latestCheckpointOf(dir: string): string | undefined {
  const root = join(dir, 'checkpoints');
  if (!existsSync(root) || !statSync(root).isDirectory()) return undefined;
  const steps = readdirSync(root).filter((n) => /^step-\d+$/.test(n) && existsSync(join(root, n, 'config.json')));
  steps.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  return steps.length ? join(root, steps[steps.length - 1]!) : undefined;
}

/** config.json of a model directory, parsed but not validated. */
export function readConfigJson(dir: string): unknown {
  checkModelDir(dir);
  completeStagedFiles(dir); // a save cut short by a kill: finished (or discarded) before anything is read
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    const latest = latestCheckpointOf(dir);
    if (latest) {
      throw new ModelLoadError(`${dir} is a training run with no final model yet (it was stopped or is still running); `
        + `load its latest checkpoint ${latest}, or finish the run with --resume ${dir}`);
    }
    throw new ModelLoadError(`${dir}: no config.json (expected a model directory in Hugging Face layout)`);
  }
  return readJsonFile(path, (message, cause) => new ModelLoadError(message, { cause }));
}

/** What a Hugging Face architecture name says a model is for, from its suffix. */
export type ArchitectureRole = 'causal LM' | 'masked LM' | 'classifier' | 'token classifier' | 'question-answering model' | 'multiple-choice model';

const ROLES: Array<[RegExp, ArchitectureRole]> = [
  [/(ForCausalLM|LMHeadModel)$/, 'causal LM'],
  [/(ForPreTraining|ForMaskedLM)$/, 'masked LM'],
  [/ForSequenceClassification$/, 'classifier'],
  [/ForTokenClassification$/, 'token classifier'],
  [/ForQuestionAnswering$/, 'question-answering model'],
  [/ForMultipleChoice$/, 'multiple-choice model'],
];

/** config.json's architectures[0], when it names one. */
export function declaredArchitecture(config: unknown): string | undefined {
  const archs = config && typeof config === 'object' ? (config as { architectures?: unknown }).architectures : undefined;
  return Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : undefined;
}

export function architectureRole(architecture: string): ArchitectureRole | undefined {
  return ROLES.find(([re]) => re.test(architecture))?.[1];
}

/**
 * Refuses a directory whose declared architecture is known to be something other than `accepted`,
 * before its weights are read (they would fail later as "unexpected tensors: …score.weight").
 * Bodies without a head (GPT2Model, BertModel) and undeclared architectures are left to the loader.
 */
export function refuseArchitecture(dir: string, config: unknown, accepted: readonly ArchitectureRole[], needs: string): void {
  const architecture = declaredArchitecture(config);
  const role = architecture === undefined ? undefined : architectureRole(architecture);
  if (role && !accepted.includes(role)) throw new ModelLoadError(`${dir} holds a ${architecture} (a ${role}); ${needs}`);
}

/**
 * A model directory's generation_config.json (eos ids — Qwen2.5-Instruct's list is longer than
 * config.json's —, sampling defaults), parsed; undefined when the directory has none.
 */
export function readGenerationConfig(dir: string): Record<string, unknown> | undefined {
  const path = join(dir, 'generation_config.json');
  if (!existsSync(path)) return undefined;
  const raw = readJsonFile(path, (message, cause) => new ModelLoadError(message, { cause }));
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelLoadError(`${path}: expected a JSON object`);
  return raw as Record<string, unknown>;
}

/** Carries `from`'s generation_config.json into the model directory `to` (as save_pretrained keeps it); false when `from` has none. */
export function copyGenerationConfig(from: string, to: string): boolean {
  const generation = readGenerationConfig(from);
  if (generation) writeJsonAtomic(join(to, 'generation_config.json'), generation, { indent: 2 });
  return generation !== undefined;
}
