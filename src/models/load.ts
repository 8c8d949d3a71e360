/**
 * Model directories in Hugging Face layout: config.json + model.safetensors (+ tokenizer.json).
 *
 * Loading accepts the variants found on the Hub: GPT-2 weights saved from GPT2Model (no
 * `transformer.` prefix), the `attn.bias` / `attn.masked_bias` causal-mask buffers, a present or
 * absent `lm_head.weight` (the head is tied to wte, so a differing one is refused), and old BERT
 * checkpoints with LayerNorm `gamma` / `beta` names. Anything else that does not match is listed by
 * name in the error.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { GPT, type GPTConfig } from './gpt.ts';
import { Bert, type BertConfig } from './bert.ts';
import type { Module } from '../nn/module.ts';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { PrimerError } from '../io/errors.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

export class ModelLoadError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_LOAD', message, options);
  }
}

const positiveInt = z.number().int().positive();
const probability = z.number().min(0).max(1);

export const gptConfigSchema = z.looseObject({
  model_type: z.literal('gpt2'),
  vocab_size: positiveInt,
  n_positions: positiveInt,
  n_embd: positiveInt,
  n_layer: positiveInt,
  n_head: positiveInt,
  n_inner: positiveInt.nullable().optional(),
  activation_function: z.enum(['gelu_new', 'gelu', 'gelu_pytorch_tanh', 'gelu_fast']).optional(),
  resid_pdrop: probability.optional(),
  embd_pdrop: probability.optional(),
  attn_pdrop: probability.optional(),
  layer_norm_epsilon: z.number().positive().optional(),
  initializer_range: z.number().positive().optional(),
  bos_token_id: z.number().int().nonnegative().nullable().optional(),
  eos_token_id: z.number().int().nonnegative().nullable().optional(),
  tie_word_embeddings: z.literal(true, { error: 'only tied input/output embeddings are supported' }).optional(),
}).refine((c) => c.n_embd % c.n_head === 0, { message: 'n_embd must be divisible by n_head', path: ['n_head'] });

export const bertConfigSchema = z.looseObject({
  model_type: z.literal('bert'),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  intermediate_size: positiveInt,
  hidden_act: z.enum(['gelu', 'gelu_new']).optional(),
  hidden_dropout_prob: probability.optional(),
  attention_probs_dropout_prob: probability.optional(),
  max_position_embeddings: positiveInt,
  type_vocab_size: positiveInt.optional(),
  initializer_range: z.number().positive().optional(),
  layer_norm_eps: z.number().positive().optional(),
  pad_token_id: z.number().int().nonnegative().nullable().optional(),
}).refine((c) => c.hidden_size % c.num_attention_heads === 0, {
  message: 'hidden_size must be divisible by num_attention_heads', path: ['num_attention_heads'],
});

export type ModelConfig = GPTConfig | BertConfig;
export type LoadedModel =
  | { kind: 'gpt2'; model: GPT; config: GPTConfig }
  | { kind: 'bert'; model: Bert; config: BertConfig };

function describeIssues(where: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => `  ${i.path.length ? `field "${i.path.join('.')}"` : 'config'}: ${i.message}`);
  return `${where} is not a valid model config:\n${lines.join('\n')}`;
}

/** Validates a parsed config.json (GPT-2 or BERT, told apart by model_type); errors name the field. */
export function parseModelConfig(raw: unknown, where = 'config.json'): ModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelLoadError(`${where}: expected a JSON object`);
  const obj = raw as Record<string, unknown>;
  const type = obj.model_type ?? inferModelType(obj);
  const schema = type === 'gpt2' ? gptConfigSchema : type === 'bert' ? bertConfigSchema : null;
  if (!schema) {
    throw new ModelLoadError(`${where}: field "model_type" is ${JSON.stringify(obj.model_type)}; supported: "gpt2", "bert"`);
  }
  const result = schema.safeParse({ ...obj, model_type: type });
  if (!result.success) throw new ModelLoadError(describeIssues(where, result.error));
  return result.data as ModelConfig;
}

function inferModelType(obj: Record<string, unknown>): string | undefined {
  const arch = Array.isArray(obj.architectures) ? String(obj.architectures[0] ?? '') : '';
  if (arch.startsWith('GPT2')) return 'gpt2';
  if (arch.startsWith('Bert')) return 'bert';
  return undefined;
}

/** The newest `checkpoints/step-N` of a training run directory, if any (the final model is written only at the end). */
function latestCheckpointOf(dir: string): string | undefined {
  const root = join(dir, 'checkpoints');
  if (!existsSync(root) || !statSync(root).isDirectory()) return undefined;
  const steps = readdirSync(root).filter((n) => /^step-\d+$/.test(n) && existsSync(join(root, n, 'config.json')));
  steps.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  return steps.length ? join(root, steps[steps.length - 1]!) : undefined;
}

export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    const latest = latestCheckpointOf(dir);
    if (latest) {
      throw new ModelLoadError(`${dir} is a training run with no final model yet (it was stopped or is still running); `
        + `load its latest checkpoint ${latest}, or finish the run with --resume ${dir}`);
    }
    throw new ModelLoadError(`${dir}: no config.json (expected a model directory in Hugging Face layout)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ModelLoadError(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return parseModelConfig(raw, path);
}

export function createModel(config: ModelConfig, seed = 0): LoadedModel {
  return config.model_type === 'gpt2'
    ? { kind: 'gpt2', model: new GPT(config, seed), config }
    : { kind: 'bert', model: new Bert(config, seed), config };
}

/** Tensors that are copies of parameters or fixed buffers in Hub checkpoints: compared, then dropped. */
interface Renamed {
  state: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
  /** name in the file → the parameter it must equal (tied heads). */
  tied: Array<[string, string]>;
}

/** Maps the tensor names of a Hub checkpoint onto our (HF GPT2LMHeadModel / BertForPreTraining) names. */
export function canonicalTensorName(kind: 'gpt2' | 'bert', name: string): string | null {
  if (kind === 'gpt2') {
    if (/(^|\.)attn\.(masked_)?bias$/.test(name)) return null; // causal-mask buffers
    if (name === 'lm_head.weight') return name;
    return name.startsWith('transformer.') ? name : `transformer.${name}`;
  }
  if (name.endsWith('position_ids')) return null; // registered buffer in newer BERT checkpoints
  let n = name.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
  if (/^(embeddings|encoder|pooler)\./.test(n)) n = `bert.${n}`;
  return n;
}

function renameState(kind: 'gpt2' | 'bert', file: SafetensorsFile): Renamed {
  const out: Renamed = { state: new Map(), shapes: new Map(), tied: [] };
  for (const name of file.names) {
    const target = canonicalTensorName(kind, name);
    if (target === null) continue;
    if (kind === 'gpt2' && target === 'lm_head.weight') {
      out.tied.push([name, 'transformer.wte.weight']);
      out.state.set(`\0${name}`, file.getFloat32(name));
      continue;
    }
    if (kind === 'bert' && target === 'cls.predictions.decoder.weight') {
      out.tied.push([name, 'bert.embeddings.word_embeddings.weight']);
      out.state.set(`\0${name}`, file.getFloat32(name));
      continue;
    }
    if (kind === 'bert' && target === 'cls.predictions.decoder.bias') {
      out.tied.push([name, 'cls.predictions.bias']);
      out.state.set(`\0${name}`, file.getFloat32(name));
      continue;
    }
    if (out.state.has(target)) throw new ModelLoadError(`${file.source}: tensors "${name}" and another both map to "${target}"`);
    out.state.set(target, file.getFloat32(name));
    out.shapes.set(target, file.info(name).shape);
  }
  return out;
}

/** Loads weights from a safetensors file into the model, applying the Hub-variant renames. */
export function loadWeights(kind: 'gpt2' | 'bert', model: Module, file: SafetensorsFile): void {
  const { state, shapes, tied } = renameState(kind, file);
  const plain = new Map([...state].filter(([n]) => !n.startsWith('\0')));
  let result: { missing: string[]; unexpected: string[] };
  try {
    result = model.loadStateDict(plain, shapes);
  } catch (e) {
    throw new ModelLoadError(`${file.source}: ${(e as Error).message}`, { cause: e });
  }
  // The tied decoder bias is the same tensor as cls.predictions.bias in HF; accept it in its place.
  const tiedBias = tied.find(([, to]) => to === 'cls.predictions.bias');
  if (tiedBias && result.missing.includes('cls.predictions.bias')) {
    const p = new Map(model.namedParameters()).get('cls.predictions.bias')!;
    p.data.set(state.get(`\0${tiedBias[0]}`)!);
    result.missing = result.missing.filter((n) => n !== 'cls.predictions.bias');
  }
  if (result.missing.length || result.unexpected.length) {
    const parts: string[] = [];
    if (result.missing.length) parts.push(`missing tensors: ${result.missing.join(', ')}`);
    if (result.unexpected.length) parts.push(`unexpected tensors: ${result.unexpected.join(', ')}`);
    throw new ModelLoadError(`${file.source} does not match the ${kind} config: ${parts.join('; ')}`);
  }
  const params = new Map(model.namedParameters());
  for (const [fileName, paramName] of tied) {
    const copy = state.get(`\0${fileName}`)!;
    const p = params.get(paramName)!;
    let same = copy.length === p.size;
    for (let i = 0; same && i < copy.length; i++) same = copy[i] === p.data[i];
    if (!same) {
      throw new ModelLoadError(`${file.source}: "${fileName}" differs from "${paramName}"; only tied output embeddings are supported`);
    }
  }
}

/** Reads config.json and model.safetensors from a directory (HF layout) and builds the model. */
export function loadModelDir(dir: string): LoadedModel {
  const config = readModelConfig(dir);
  const weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(weightsPath)) throw new ModelLoadError(`${dir}: no model.safetensors`);
  let file: SafetensorsFile;
  try {
    file = readSafetensors(weightsPath);
  } catch (e) {
    throw new ModelLoadError(`${weightsPath}: ${(e as Error).message}`, { cause: e });
  }
  const loaded = createModel(config);
  loadWeights(loaded.kind, loaded.model, file);
  return loaded;
}

/** HF config.json content: our config plus the keys transformers expects to find. */
export function configJson(config: ModelConfig): Record<string, unknown> {
  const architectures = config.model_type === 'gpt2' ? ['GPT2LMHeadModel'] : ['BertForPreTraining'];
  return { architectures, ...config, torch_dtype: 'float32' };
}

/** The model's parameters as safetensors entries (HF names, fp32). */
export function modelTensors(model: Module): Array<{ name: string; shape: number[]; data: Float32Array }> {
  return model.namedParameters().map(([name, p]) => ({
    name, shape: [...p.shape], data: p.data instanceof Float32Array ? p.data : new Float32Array(p.data),
  }));
}

/** Writes model.safetensors, config.json and (optionally) the tokenizer files into dir. */
export function writeModelFiles(dir: string, model: Module, config: ModelConfig, tokenizer?: Tokenizer, durable = true): void {
  writeSafetensors(join(dir, 'model.safetensors'), modelTensors(model), { format: 'pt' }, { durable });
  writeJsonAtomic(join(dir, 'config.json'), configJson(config), { durable });
  tokenizer?.save(dir);
}

/**
 * Saves a model directory. A new directory appears complete or not at all (written beside it, then
 * renamed); an existing one has each file replaced atomically.
 */
export function saveModelDir(dir: string, model: Module, config: ModelConfig, tokenizer?: Tokenizer): void {
  const temp = join(dirname(dir), `.${basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  mkdirSync(temp, { recursive: true });
  try {
    writeModelFiles(temp, model, config, tokenizer, false);
    if (!existsSync(dir)) {
      renameSync(temp, dir);
      return;
    }
    if (!statSync(dir).isDirectory()) throw new ModelLoadError(`saveModelDir: ${dir} exists and is not a directory`);
    for (const f of readdirSync(temp)) renameSync(join(temp, f), join(dir, f));
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
