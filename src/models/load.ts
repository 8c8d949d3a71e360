/**
 * Model directories in Hugging Face layout: config.json + model.safetensors (+ tokenizer.json).
 *
 * Loading accepts the variants found on the Hub: GPT-2 weights saved from GPT2Model (no
 * `transformer.` prefix), the `attn.bias` / `attn.masked_bias` causal-mask buffers, a present or
 * absent `lm_head.weight` (the head is tied to wte, so a differing one is refused), and old BERT
 * checkpoints with LayerNorm `gamma` / `beta` names. Llama-family checkpoints (LlamaForCausalLM,
 * Qwen2ForCausalLM) load as saved, minus old `rotary_emb.inv_freq` buffers, with `lm_head.weight`
 * absent when tied (a stored copy must equal `model.embed_tokens.weight`). Anything else that does
 * not match is listed by name in the error.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { totalmem } from 'node:os';
import { z } from 'zod';
import { GPT, type GPTConfig } from './gpt.ts';
import { Bert, type BertConfig } from './bert.ts';
import { Llama, headDimOf, kvHeadsOf, attentionBiases, llamaConfigSchema, type LlamaConfig } from './llama.ts';
import type { Module } from '../nn/module.ts';
import { readSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { atFile } from '../io/errors.ts';
import { ModelLoadError, readConfigJson, refuseArchitecture } from './model-files.ts';

export { ModelLoadError } from './model-files.ts';
export { configJson, modelTensors, writeModelFiles, saveModelDir } from './save.ts';

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
  tie_word_embeddings: z.boolean().optional(),
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
  position_embedding_type: z.enum(['absolute', 'relative_key']).optional(),
}).refine((c) => c.hidden_size % c.num_attention_heads === 0, {
  message: 'hidden_size must be divisible by num_attention_heads', path: ['num_attention_heads'],
});

/**
 * The configs and models most commands handle (GPT-2, BERT). Llama-family models (Llama, Qwen2) are
 * in the Any* types: so far only `primer verify` and the library take them (loadAnyModelDir); the
 * other commands refuse them by name (parseModelConfig) until they support them.
 */
export type ModelConfig = GPTConfig | BertConfig;
export type LoadedModel =
  | { kind: 'gpt2'; model: GPT; config: GPTConfig }
  | { kind: 'bert'; model: Bert; config: BertConfig };
export type AnyModelConfig = ModelConfig | LlamaConfig;
export type AnyLoadedModel = LoadedModel | { kind: 'llama'; model: Llama; config: LlamaConfig };
/** The model families, as AnyLoadedModel['kind'] names them (Qwen2 is a 'llama'). */
export type ModelKind = AnyLoadedModel['kind'];

function describeIssues(where: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => `  ${i.path.length ? `field "${i.path.join('.')}"` : 'config'}: ${i.message}`);
  return `${where} is not a valid model config:\n${lines.join('\n')}`;
}

/** Llama and Qwen2 configs (one family; a function because TS cannot narrow on a two-valued discriminant). */
export function isLlamaConfig(c: AnyModelConfig): c is LlamaConfig {
  return c.model_type === 'llama' || c.model_type === 'qwen2';
}

/** Validates a parsed config.json of GPT-2 or BERT; a Llama-family config is refused by name (see parseAnyModelConfig). */
export function parseModelConfig(raw: unknown, where = 'config.json'): ModelConfig {
  const obj = raw && typeof raw === 'object' && !Array.isArray(raw) ? raw as Record<string, unknown> : {};
  const type = obj.model_type ?? inferModelType(obj);
  if (type === 'llama' || type === 'qwen2') {
    throw new ModelLoadError(`${where}: field "model_type" is "${type}"; supported: "gpt2", "bert" `
      + '(Llama-family models are taken by `primer verify` and the library\'s loadAnyModelDir so far, not yet by this command)');
  }
  return parseAnyModelConfig(raw, where) as ModelConfig;
}

/** Validates a parsed config.json (GPT-2, BERT, Llama or Qwen2, told apart by model_type); errors name the field. */
export function parseAnyModelConfig(raw: unknown, where = 'config.json'): AnyModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelLoadError(`${where}: expected a JSON object`);
  const obj = raw as Record<string, unknown>;
  const type = obj.model_type ?? inferModelType(obj);
  const schema = type === 'gpt2' ? gptConfigSchema : type === 'bert' ? bertConfigSchema
    : type === 'llama' || type === 'qwen2' ? llamaConfigSchema : null;
  if (!schema) {
    throw new ModelLoadError(`${where}: field "model_type" is ${JSON.stringify(obj.model_type)}; supported: "gpt2", "bert", "llama", "qwen2"`);
  }
  const result = schema.safeParse({ ...obj, model_type: type });
  if (!result.success) throw new ModelLoadError(describeIssues(where, result.error));
  return result.data as AnyModelConfig;
}

function inferModelType(obj: Record<string, unknown>): string | undefined {
  const arch = Array.isArray(obj.architectures) ? String(obj.architectures[0] ?? '') : '';
  if (arch.startsWith('GPT2')) return 'gpt2';
  if (arch.startsWith('Bert')) return 'bert';
  if (arch.startsWith('Llama')) return 'llama';
  if (arch.startsWith('Qwen2')) return 'qwen2';
  return undefined;
}

export function readModelConfig(dir: string): ModelConfig {
  return parseModelConfig(readConfigJson(dir), join(dir, 'config.json'));
}

/** readModelConfig for every supported family, Llama and Qwen2 included. */
export function readAnyModelConfig(dir: string): AnyModelConfig {
  return parseAnyModelConfig(readConfigJson(dir), join(dir, 'config.json'));
}

/** Exact parameter count of the model a config describes (tied output embeddings counted once). */
export function parameterCount(c: AnyModelConfig): number {
  if (c.model_type === 'gpt2') {
    const d = c.n_embd;
    const inner = c.n_inner ?? 4 * d;
    // per block: ln_1, ln_2 (2d each), c_attn (3d² + 3d), c_proj (d² + d), c_fc (d·inner + inner), mlp c_proj (inner·d + d)
    const block = 4 * d + 3 * d * d + 3 * d + d * d + d + 2 * d * inner + inner + d;
    return (c.vocab_size * (c.tie_word_embeddings === false ? 2 : 1) + c.n_positions) * d + c.n_layer * block + 2 * d;
  }
  if (isLlamaConfig(c)) {
    const [h, i, q, kv] = [c.hidden_size, c.intermediate_size, c.num_attention_heads * headDimOf(c), kvHeadsOf(c) * headDimOf(c)];
    const bias = attentionBiases(c);
    // per layer: q, k, v, o projections (+ biases), gate/up/down (+ biases), 2 RMSNorm weights
    const attn = 2 * h * q + 2 * h * kv + (bias.qkv ? q + 2 * kv : 0) + (bias.o ? h : 0);
    const mlp = 3 * h * i + (c.mlp_bias ? 2 * i + h : 0);
    return c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * (attn + mlp + 2 * h) + h;
  }
  const h = c.hidden_size;
  const i = c.intermediate_size;
  // per layer: q, k, v, attention output (h² + h each), 2 LayerNorms, intermediate and output dense
  const layer = 4 * (h * h + h) + 4 * h + 2 * h * i + i + h;
  const embeddings = (c.vocab_size + c.max_position_embeddings + (c.type_vocab_size ?? 2)) * h + 2 * h;
  const heads = (h * h + h) /* pooler */ + (h * h + h + 2 * h) /* MLM transform */ + c.vocab_size /* MLM bias */ + (2 * h + 2) /* NSP */;
  return embeddings + c.num_hidden_layers * layer + heads;
}

/** The config fields that set the size of a model, for messages. */
function sizeFields(c: AnyModelConfig): string {
  const f = c.model_type === 'gpt2'
    ? { vocab_size: c.vocab_size, n_positions: c.n_positions, n_embd: c.n_embd, n_layer: c.n_layer, n_inner: c.n_inner ?? null }
    : isLlamaConfig(c)
    ? { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_hidden_layers: c.num_hidden_layers, intermediate_size: c.intermediate_size, head_dim: c.head_dim ?? null }
    : { vocab_size: c.vocab_size, max_position_embeddings: c.max_position_embeddings, hidden_size: c.hidden_size, num_hidden_layers: c.num_hidden_layers, intermediate_size: c.intermediate_size };
  return Object.entries(f).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`).join(', ');
}

/**
 * Builds a fresh model. A config whose fp32 weights alone would not fit in this machine's memory
 * (or in one typed array) is refused before anything is allocated, naming its size fields.
 */
export function createModel(config: ModelConfig, seed?: number, where?: string): LoadedModel;
export function createModel(config: AnyModelConfig, seed?: number, where?: string): AnyLoadedModel;
export function createModel(config: AnyModelConfig, seed = 0, where = 'config'): AnyLoadedModel {
  const n = parameterCount(config);
  const largest = config.model_type === 'gpt2'
    ? Math.max(config.vocab_size, config.n_positions, 4 * config.n_embd, config.n_inner ?? 0) * config.n_embd
    : isLlamaConfig(config)
    ? Math.max(config.vocab_size, config.intermediate_size, config.num_attention_heads * headDimOf(config)) * config.hidden_size
    : Math.max(config.vocab_size, config.max_position_embeddings, config.intermediate_size, config.hidden_size) * config.hidden_size;
  if (!(4 * n <= totalmem()) || !(largest < 2 ** 31)) {
    throw new ModelLoadError(`${where} describes a model of ${n.toExponential(2)} parameters (${(4 * n / 2 ** 30).toFixed(1)} GiB in fp32), `
      + `more than this machine's ${(totalmem() / 2 ** 30).toFixed(1)} GiB of memory${largest < 2 ** 31 ? '' : ' and larger than one tensor can be'}: check ${sizeFields(config)}`);
  }
  if (isLlamaConfig(config)) return { kind: 'llama', model: new Llama(config, seed), config };
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

/** Maps the tensor names of a Hub checkpoint onto our (HF GPT2LMHeadModel / BertForPreTraining / LlamaForCausalLM) names. */
export function canonicalTensorName(kind: ModelKind, name: string): string | null {
  if (kind === 'llama') return /\.rotary_emb\.inv_freq$/.test(name) ? null : name; // older checkpoints saved the RoPE buffer
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

function renameState(kind: ModelKind, file: SafetensorsFile, tiedHead: boolean): Renamed {
  const out: Renamed = { state: new Map(), shapes: new Map(), tied: [] };
  for (const name of file.names) {
    const target = canonicalTensorName(kind, name);
    if (target === null) continue;
    if (kind === 'gpt2' && tiedHead && target === 'lm_head.weight') {
      out.tied.push([name, 'transformer.wte.weight']);
      out.state.set(`\0${name}`, file.getFloat32(name));
      continue;
    }
    if (kind === 'llama' && tiedHead && target === 'lm_head.weight') {
      out.tied.push([name, 'model.embed_tokens.weight']);
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
export function loadWeights(kind: ModelKind, model: Module, file: SafetensorsFile): void {
  // A tied Llama has no lm_head parameter; a copy of the embedding saved under that name is compared.
  const tiedHead = kind !== 'bert' && !model.namedParameters().some(([n]) => n === 'lm_head.weight');
  const { state, shapes, tied } = renameState(kind, file, tiedHead);
  const plain = new Map([...state].filter(([n]) => !n.startsWith('\0')));
  let result: { missing: string[]; unexpected: string[] };
  try {
    result = model.loadStateDict(plain, shapes);
  } catch (e) {
    throw new ModelLoadError(atFile(file.source, (e as Error).message), { cause: e });
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

/** Names of parameters holding NaN or ±Infinity (a diverged or damaged checkpoint still loads, but should say so). */
export function nonFiniteParameters(model: Module): string[] {
  return model.namedParameters().filter(([, p]) => !p.data.every(Number.isFinite)).map(([n]) => n);
}

/**
 * Reads config.json and model.safetensors from a directory (HF layout) and builds the model.
 * `warn` (default: console.warn) hears about weights that are not finite.
 */
export function loadModelDir(dir: string, options: { warn?: (message: string) => void } = {}): LoadedModel {
  return loadConfiguredModelDir(dir, readModelConfig(dir), options) as LoadedModel;
}

/** loadModelDir for every supported family, Llama and Qwen2 included (LlamaForCausalLM, Qwen2ForCausalLM). */
export function loadAnyModelDir(dir: string, options: { warn?: (message: string) => void } = {}): AnyLoadedModel {
  return loadConfiguredModelDir(dir, readAnyModelConfig(dir), options);
}

function loadConfiguredModelDir(dir: string, config: AnyModelConfig, options: { warn?: (message: string) => void }): AnyLoadedModel {
  refuseArchitecture(dir, config, ['causal LM', 'masked LM'], 'this needs a language model (…LMHeadModel, …ForCausalLM or BertForPreTraining)');
  const weightsPath = join(dir, 'model.safetensors');
  if (!existsSync(weightsPath)) {
    // Sharded checkpoints are read by src/interop (a layer above this one); `primer import --out` merges them.
    const sharded = existsSync(join(dir, 'model.safetensors.index.json'))
      ? ` (it holds a sharded checkpoint, model.safetensors.index.json: convert it with primer import ${dir} --out NEW_DIR)` : '';
    throw new ModelLoadError(`${dir}: no model.safetensors${sharded}`);
  }
  let file: SafetensorsFile;
  try {
    file = readSafetensors(weightsPath);
  } catch (e) {
    throw new ModelLoadError(atFile(weightsPath, (e as Error).message), { cause: e });
  }
  checkConfigAgainstWeights(config, file, join(dir, 'config.json'));
  const loaded = createModel(config, 0, join(dir, 'config.json'));
  loadWeights(loaded.kind, loaded.model, file);
  const bad = nonFiniteParameters(loaded.model);
  if (bad.length) {
    const warn = options.warn ?? ((m: string) => console.warn(`warning: ${m}`));
    warn(`${weightsPath}: ${bad.length} tensor(s) hold NaN or infinite values (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}); outputs will be NaN — was training diverging when this was saved?`);
  }
  return loaded;
}

/**
 * Compares the config's size fields with the tensor shapes in the weights file's header before the
 * model is built: a wrong or absurd config (n_layer 1000000, n_embd 10^9) is refused by name
 * instead of allocating gigabytes or failing deep inside a typed-array constructor.
 */
export function checkConfigAgainstWeights(config: AnyModelConfig, file: SafetensorsFile, configPath: string): void {
  const kind: ModelKind = config.model_type === 'qwen2' ? 'llama' : config.model_type;
  const shapes = new Map<string, number[]>();
  let layers = 0;
  const layerPattern = kind === 'gpt2' ? /^transformer\.h\.(\d+)\./ : kind === 'llama' ? /^model\.layers\.(\d+)\./ : /^bert\.encoder\.layer\.(\d+)\./;
  for (const name of file.names) {
    const target = canonicalTensorName(kind, name);
    if (target === null) continue;
    shapes.set(target, file.info(name).shape);
    const m = layerPattern.exec(target);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  const c = config as unknown as Record<string, number>;
  const expect: Array<[string, string[]]> = kind === 'gpt2'
    ? [['transformer.wte.weight', ['vocab_size', 'n_embd']], ['transformer.wpe.weight', ['n_positions', 'n_embd']],
      ['transformer.h.0.mlp.c_fc.weight', ['n_embd', 'n_inner']]]
    : kind === 'llama'
    ? [['model.embed_tokens.weight', ['vocab_size', 'hidden_size']], ['model.layers.0.mlp.gate_proj.weight', ['intermediate_size', 'hidden_size']],
      ['model.layers.0.self_attn.q_proj.weight', ['num_attention_heads×head_dim', 'hidden_size']],
      ['model.layers.0.self_attn.k_proj.weight', ['num_key_value_heads×head_dim', 'hidden_size']]]
    : [['bert.embeddings.word_embeddings.weight', ['vocab_size', 'hidden_size']],
      ['bert.embeddings.position_embeddings.weight', ['max_position_embeddings', 'hidden_size']],
      ['bert.embeddings.token_type_embeddings.weight', ['type_vocab_size', 'hidden_size']],
      ['bert.encoder.layer.0.intermediate.dense.weight', ['intermediate_size', 'hidden_size']]];
  const llama = isLlamaConfig(config) ? config : null;
  const value = (field: string): number => field === 'n_inner' ? (config.model_type === 'gpt2' ? config.n_inner ?? 4 * config.n_embd : NaN)
    : field === 'num_attention_heads×head_dim' ? (llama ? llama.num_attention_heads * headDimOf(llama) : NaN)
    : field === 'num_key_value_heads×head_dim' ? (llama ? kvHeadsOf(llama) * headDimOf(llama) : NaN)
    : field === 'type_vocab_size' ? c[field] ?? 2 : c[field]!;
  for (const [tensor, fields] of expect) {
    const shape = shapes.get(tensor);
    if (!shape) continue; // a missing tensor is reported by name when the weights are loaded
    for (const [i, field] of fields.entries()) {
      if (shape[i] !== value(field)) {
        throw new ModelLoadError(`${configPath}: field "${field}" is ${value(field)} but ${file.source} has ${tensor} of shape [${shape}] `
          + `(expected [${fields.join(', ')}]); the config does not describe these weights`);
      }
    }
  }
  const wanted = config.model_type === 'gpt2' ? config.n_layer : config.num_hidden_layers;
  if (wanted !== layers) {
    throw new ModelLoadError(`${configPath}: field "${kind === 'gpt2' ? 'n_layer' : 'num_hidden_layers'}" is ${wanted} but ${file.source} holds ${layers} layers; `
      + 'the config does not describe these weights');
  }
}
