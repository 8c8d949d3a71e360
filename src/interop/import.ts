/**
 * `loadPretrained(dir)`: a Hugging Face model directory → a Primer model (+ tokenizer).
 *
 * Dispatches on config.json's architectures[0] (or model_type when there is none). The weights come
 * from model.safetensors or a sharded index (see weights.ts), stored as F32, F16 or BF16 and widened
 * to fp32 exactly. Tensor names go through load.ts's canonicalTensorName, so Hub variants (no
 * `transformer.`/`bert.` prefix, LayerNorm gamma/beta, attention-mask and position_ids buffers) load.
 * Tied copies written by older checkpoints (lm_head.weight, cls.predictions.decoder.*) must equal the
 * tensor they are tied to. Everything that does not fit is an InteropError listing the tensors by name.
 *
 * Heads a checkpoint does not carry (BertModel has no MLM/NSP head, BertForMaskedLM no pooler or NSP
 * head) keep their initialisation and are reported in `newlyInitialized`, as transformers warns.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/module.ts';
import { canonicalTensorName, createModel, isLlamaConfig, parseAnyModelConfig, type AnyLoadedModel, type AnyModelConfig, type ModelConfig, type ModelKind } from '../models/load.ts';
import { createTaskModel, type TaskModel } from '../models/heads.ts';
import { headDimOf, kvHeadsOf } from '../models/llama.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizers/index.ts';
import { PrimerError } from '../io/errors.ts';
import { InteropError } from './errors.ts';
import { readCheckpoint, type Checkpoint } from './weights.ts';
import { readJsonFile } from '../io/json.ts';

export { InteropError, type InteropErrorCode } from './errors.ts';

export const LM_ARCHITECTURES = ['GPT2LMHeadModel', 'GPT2Model', 'BertForPreTraining', 'BertForMaskedLM', 'BertModel', 'LlamaForCausalLM', 'Qwen2ForCausalLM'] as const;
export const TASK_ARCHITECTURES = [
  'BertForSequenceClassification', 'BertForTokenClassification', 'BertForQuestionAnswering',
  'GPT2ForSequenceClassification', 'GPT2ForTokenClassification', 'GPT2ForQuestionAnswering',
] as const;
export type SupportedArchitecture = (typeof LM_ARCHITECTURES)[number] | (typeof TASK_ARCHITECTURES)[number];
const SUPPORTED: readonly string[] = [...LM_ARCHITECTURES, ...TASK_ARCHITECTURES];

/** Parameters an architecture's checkpoints do not hold: they keep their initialisation. */
const NOT_IN_CHECKPOINT: Record<string, RegExp | undefined> = {
  BertForMaskedLM: /^(bert\.pooler\.|cls\.seq_relationship\.)/,
  BertModel: /^cls\./,
  BertForTokenClassification: /^bert\.pooler\./,
  BertForQuestionAnswering: /^bert\.pooler\./,
};
const TASK_HEAD = /^(classifier|qa_outputs|score)\./;
const PARAM_DTYPES = new Set(['F32', 'F16', 'BF16']);
const MAX_LABELS = 100_000;

export interface Pretrained {
  architecture: SupportedArchitecture;
  /** 'llama' for LlamaForCausalLM and Qwen2ForCausalLM (config.model_type tells them apart). */
  kind: ModelKind;
  /** The model to run: GPT / Bert (pre-training heads) or a task model. */
  model: Module;
  /** Set for LM/pre-training architectures. */
  lm?: AnyLoadedModel;
  /** Set for *ForSequenceClassification / TokenClassification / QuestionAnswering. */
  task?: TaskModel;
  config: AnyModelConfig;
  /** config.json as read (after validation), for fields Primer does not model. */
  rawConfig: Record<string, unknown>;
  tokenizer?: Tokenizer;
  tokenizerConfig?: Record<string, unknown>;
  specialTokensMap?: Record<string, unknown>;
  /** generation_config.json as read (causal LMs), which an export writes back unchanged. */
  generationConfig?: Record<string, unknown>;
  /** Parameters the checkpoint did not hold (kept at their initialisation). */
  newlyInitialized: string[];
  /** Distinct dtypes of the loaded parameters, e.g. ['F16']. */
  dtypes: string[];
  shards: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readJsonObject(path: string, code: 'BAD_CONFIG' | 'BAD_TOKENIZER'): Record<string, unknown> {
  const raw = readJsonFile(path, (message, cause) => new InteropError(code, message, { cause }));
  if (!isObject(raw)) throw new InteropError(code, `${path}: expected a JSON object`);
  return raw;
}

function architectureOf(raw: Record<string, unknown>, path: string): SupportedArchitecture {
  const archs = raw.architectures;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string') {
      throw new InteropError('BAD_CONFIG', `${path}: field "architectures" must be a non-empty array of strings`);
    }
    const arch = archs[0];
    if (!SUPPORTED.includes(arch)) {
      throw new InteropError('UNSUPPORTED_ARCHITECTURE', `${path}: architecture ${JSON.stringify(arch.slice(0, 100))} is not supported; Primer imports ${SUPPORTED.join(', ')}`);
    }
    const family = arch.startsWith('GPT2') ? 'gpt2' : arch.startsWith('Llama') ? 'llama' : arch.startsWith('Qwen2') ? 'qwen2' : 'bert';
    if (raw.model_type !== undefined && raw.model_type !== family) {
      throw new InteropError('BAD_CONFIG', `${path}: architecture ${arch} does not match model_type ${JSON.stringify(raw.model_type)}`);
    }
    return arch as SupportedArchitecture;
  }
  if (raw.model_type === 'gpt2') return 'GPT2LMHeadModel';
  if (raw.model_type === 'bert') return 'BertForPreTraining';
  if (raw.model_type === 'llama') return 'LlamaForCausalLM';
  if (raw.model_type === 'qwen2') return 'Qwen2ForCausalLM';
  throw new InteropError('UNSUPPORTED_ARCHITECTURE', `${path}: model_type ${JSON.stringify(raw.model_type)} is not supported (gpt2, bert, llama, qwen2) and no architectures are given`);
}

/** id2label normalised to keys "0".."K-1" (HF's default when absent: num_labels labels LABEL_i). */
function labelsOf(raw: Record<string, unknown>, path: string): Record<string, string> {
  const bad = (why: string) => new InteropError('BAD_CONFIG', `${path}: field "id2label" ${why}`);
  if (raw.id2label === undefined || raw.id2label === null) {
    const n = raw.num_labels ?? 2;
    if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > MAX_LABELS) {
      throw new InteropError('BAD_CONFIG', `${path}: field "num_labels" must be an integer in 1..${MAX_LABELS}`);
    }
    return Object.fromEntries(Array.from({ length: n as number }, (_, i) => [String(i), `LABEL_${i}`]));
  }
  if (!isObject(raw.id2label)) throw bad('must be an object of id → label');
  const keys = Object.keys(raw.id2label);
  if (keys.length === 0 || keys.length > MAX_LABELS) throw bad(`must have 1..${MAX_LABELS} entries`);
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (let i = 0; i < keys.length; i++) {
    const label = Object.hasOwn(raw.id2label, String(i)) ? raw.id2label[String(i)] : undefined;
    if (typeof label !== 'string') throw bad(`must map every id 0..${keys.length - 1} to a string (id ${i} is ${label === undefined ? 'missing' : 'not a string'})`);
    if (seen.has(label)) throw bad(`gives the label ${JSON.stringify(label.slice(0, 100))} twice`);
    seen.add(label);
    out[String(i)] = label;
  }
  return out;
}

/** A lower bound on the parameter count the config asks for, to refuse absurd configs before allocating. */
function minimumParameters(c: AnyModelConfig): number {
  if (isLlamaConfig(c)) {
    // The embedding and the layers' weight matrices (a tied head is stored once or not at all; biases and norms left out).
    const [h, q, kv] = [c.hidden_size, c.num_attention_heads * headDimOf(c), kvHeadsOf(c) * headDimOf(c)];
    return c.vocab_size * h + c.num_hidden_layers * (2 * h * q + 2 * h * kv + 3 * h * c.intermediate_size);
  }
  if (c.model_type === 'gpt2') {
    const inner = c.n_inner ?? 4 * c.n_embd;
    return (c.vocab_size + c.n_positions) * c.n_embd + c.n_layer * (4 * c.n_embd * c.n_embd + 2 * c.n_embd * inner);
  }
  const types = c.type_vocab_size ?? 2;
  return (c.vocab_size + c.max_position_embeddings + types) * c.hidden_size
    + c.num_hidden_layers * (4 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * c.intermediate_size);
}

function buildModel(arch: SupportedArchitecture, anyConfig: AnyModelConfig, raw: Record<string, unknown>, path: string): { model: Module; lm?: AnyLoadedModel; task?: TaskModel } {
  if ((LM_ARCHITECTURES as readonly string[]).includes(arch)) {
    const lm = createModel(anyConfig);
    return { model: lm.model, lm };
  }
  // Task architectures are GPT-2 / BERT only (architectureOf admits no Llama task class).
  const config = anyConfig as ModelConfig;
  const pooling = raw.primer_pooling;
  if (pooling !== undefined && !['pooler', 'cls', 'last', 'mean'].includes(pooling as string)) {
    throw new InteropError('BAD_CONFIG', `${path}: field "primer_pooling" must be one of pooler, cls, last, mean`);
  }
  if (config.model_type === 'gpt2' && (pooling === 'pooler' || pooling === 'cls')) {
    throw new InteropError('BAD_CONFIG', `${path}: field "primer_pooling" ${JSON.stringify(pooling)} needs a BERT model`);
  }
  const dropout = raw.classifier_dropout;
  if (dropout !== undefined && dropout !== null && !(typeof dropout === 'number' && dropout >= 0 && dropout <= 1)) {
    throw new InteropError('BAD_CONFIG', `${path}: field "classifier_dropout" must be null or a number in [0, 1]`);
  }
  const needsLabels = !arch.endsWith('QuestionAnswering');
  const taskConfig = { ...raw, ...config, architectures: [arch], ...(needsLabels ? { id2label: labelsOf(raw, path) } : {}) };
  const task = createTaskModel(taskConfig);
  return { model: task, task };
}

/** Copies checkpoint tensors into the model, checking dtypes, shapes, completeness and tied copies. */
function loadParameters(arch: SupportedArchitecture, kind: ModelKind, model: Module, ckpt: Checkpoint, isTask: boolean): { newlyInitialized: string[]; dtypes: string[] } {
  const params = new Map(model.namedParameters());
  // The head is tied to the input embedding unless the model has an lm_head parameter (tie_word_embeddings false).
  const tiedHead = params.has('lm_head.weight') ? null : kind === 'gpt2' ? 'transformer.wte.weight' : kind === 'llama' ? 'model.embed_tokens.weight' : null;
  const targets = new Map<string, string>(); // parameter → checkpoint name
  const tied: Array<[string, string]> = []; // checkpoint name → parameter it must equal
  const unexpected: string[] = [];
  for (const name of ckpt.names) {
    const target = isTask && TASK_HEAD.test(name) ? name : canonicalTensorName(kind, name);
    if (target === null) continue; // buffers (attention masks, position_ids)
    if (isTask && /^(cls\.|lm_head\.)/.test(target)) continue; // a pre-training head: fine-tuning drops it
    if (target === 'lm_head.weight' && tiedHead) { tied.push([name, tiedHead]); continue; }
    if (target === 'cls.predictions.decoder.weight') { tied.push([name, 'bert.embeddings.word_embeddings.weight']); continue; }
    if (target === 'cls.predictions.decoder.bias' && ckpt.names.some((n) => canonicalTensorName(kind, n) === 'cls.predictions.bias')) {
      tied.push([name, 'cls.predictions.bias']);
      continue;
    }
    const param = target === 'cls.predictions.decoder.bias' ? 'cls.predictions.bias' : target;
    if (!params.has(param)) { unexpected.push(name); continue; }
    if (targets.has(param)) throw new InteropError('UNEXPECTED_TENSORS', `${ckpt.source}: tensors "${targets.get(param)}" and "${name}" both load into "${param}"`);
    targets.set(param, name);
  }
  const optional = NOT_IN_CHECKPOINT[arch];
  const missing = [...params.keys()].filter((p) => !targets.has(p) && !optional?.test(p));
  if (missing.length) throw new InteropError('MISSING_TENSORS', `${ckpt.source} does not match the ${arch} config: missing tensors: ${missing.join(', ')}`);
  if (unexpected.length) throw new InteropError('UNEXPECTED_TENSORS', `${ckpt.source} does not match the ${arch} config: unexpected tensors: ${unexpected.join(', ')}`);

  const mismatched: string[] = [];
  const badDtype: string[] = [];
  const dtypes = new Set<string>();
  for (const [param, name] of [...targets, ...tied.map(([n, p]) => [p, n] as [string, string])]) {
    const { shape, dtype } = ckpt.info(name);
    const want = params.get(param)!.shape;
    if (shape.join() !== want.join()) mismatched.push(`${name}: [${shape.slice(0, 8)}] in the checkpoint, [${want}] in the config`);
    if (!PARAM_DTYPES.has(dtype)) badDtype.push(`${name} (${dtype})`);
    dtypes.add(dtype);
  }
  if (mismatched.length) throw new InteropError('SHAPE_MISMATCH', `${ckpt.source}: shape mismatches: ${mismatched.join('; ')}`);
  if (badDtype.length) throw new InteropError('UNSUPPORTED_DTYPE', `${ckpt.source}: parameters must be F32, F16 or BF16: ${badDtype.join(', ')}`);

  for (const [param, name] of targets) params.get(param)!.data.set(ckpt.getFloat32(name));
  for (const [name, param] of tied) {
    const copy = ckpt.getFloat32(name);
    const p = params.get(param)!.data;
    for (let i = 0; i < copy.length; i++) {
      if (copy[i] !== p[i]) throw new InteropError('TIED_MISMATCH', `${ckpt.source}: "${name}" differs from "${param}" (index ${i}); only tied output embeddings are supported`);
    }
  }
  const newlyInitialized = [...params.keys()].filter((p) => !targets.has(p));
  return { newlyInitialized, dtypes: [...dtypes].sort() };
}

/**
 * Token ids must be non-negative integers of the order of the vocabulary size: the tokenizers index
 * tables by id, so one absurd id (2^31) in a hostile file would allocate gigabytes and stall the import.
 * Real files are dense (ids 0..n-1); the bound leaves room for holes.
 */
function checkTokenIds(dir: string): void {
  const check = (file: string, ids: unknown[]) => {
    const limit = 2 * ids.length + 1024;
    for (const id of ids) {
      if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= limit) {
        throw new InteropError('BAD_TOKENIZER', `${join(dir, file)}: token id ${JSON.stringify(id)?.slice(0, 40)} is not an integer in 0..${limit - 1} (the file has ${ids.length} tokens)`);
      }
    }
  };
  const tokenizerJson = join(dir, 'tokenizer.json');
  if (existsSync(tokenizerJson)) {
    const root = readJsonObject(tokenizerJson, 'BAD_TOKENIZER');
    const vocab = isObject(root.model) && isObject(root.model.vocab) ? Object.values(root.model.vocab) : [];
    const added = Array.isArray(root.added_tokens) ? root.added_tokens.map((t) => (isObject(t) ? t.id : t)) : [];
    check('tokenizer.json', [...vocab, ...added]);
  } else if (existsSync(join(dir, 'vocab.json'))) {
    check('vocab.json', Object.values(readJsonObject(join(dir, 'vocab.json'), 'BAD_TOKENIZER')));
  }
}

function loadGenerationConfig(dir: string): Pick<Pretrained, 'generationConfig'> {
  const path = join(dir, 'generation_config.json');
  return existsSync(path) ? { generationConfig: readJsonObject(path, 'BAD_CONFIG') } : {};
}

function loadTokenizerFiles(dir: string): Pick<Pretrained, 'tokenizer' | 'tokenizerConfig' | 'specialTokensMap'> {
  const out: Pick<Pretrained, 'tokenizer' | 'tokenizerConfig' | 'specialTokensMap'> = {};
  const configPath = join(dir, 'tokenizer_config.json');
  const mapPath = join(dir, 'special_tokens_map.json');
  if (existsSync(configPath)) out.tokenizerConfig = readJsonObject(configPath, 'BAD_TOKENIZER');
  if (existsSync(mapPath)) out.specialTokensMap = readJsonObject(mapPath, 'BAD_TOKENIZER');
  const present = ['tokenizer.json', 'vocab.json', 'vocab.txt'].some((f) => existsSync(join(dir, f)));
  if (!present) return out;
  checkTokenIds(dir);
  try {
    out.tokenizer = loadTokenizer(dir);
  } catch (e) {
    // The tokenizer parsers report bad files with their own error classes; the importer gives them a code.
    const msg = (e as Error)?.message ?? String(e);
    throw new InteropError('BAD_TOKENIZER', `${dir}: tokenizer files could not be loaded: ${msg}`, { cause: e });
  }
  return out;
}

/** Loads a Hugging Face model directory (see the module comment). Every bad input throws an InteropError. */
export function loadPretrained(dir: string): Pretrained {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InteropError('NOT_FOUND', `${dir} is not a directory`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new InteropError('NOT_FOUND', `${dir}: no config.json (expected a Hugging Face model directory)`);
  const rawConfig = readJsonObject(configPath, 'BAD_CONFIG');
  const architecture = architectureOf(rawConfig, configPath);
  let config: AnyModelConfig;
  try {
    config = parseAnyModelConfig(rawConfig, configPath);
  } catch (e) {
    if (e instanceof PrimerError) throw new InteropError('BAD_CONFIG', e.message, { cause: e });
    throw e;
  }
  const ckpt = readCheckpoint(dir);
  const need = minimumParameters(config);
  const have = ckpt.elementCount;
  if (!(need <= have)) {
    throw new InteropError('SHAPE_MISMATCH', `${configPath} describes a model with at least ${need} parameters but ${ckpt.source} holds ${have} values`);
  }
  const { model, lm, task } = buildModel(architecture, config, rawConfig, configPath);
  const kind: ModelKind = isLlamaConfig(config) ? 'llama' : config.model_type;
  const { newlyInitialized, dtypes } = loadParameters(architecture, kind, model, ckpt, task !== undefined);
  return {
    architecture, kind, model, lm, task, config, rawConfig, newlyInitialized, dtypes,
    shards: ckpt.shardCount, ...loadTokenizerFiles(dir), ...loadGenerationConfig(dir),
  };
}

/**
 * Where the tokenizer and the model disagree: token ids past the embedding table (the model would fail
 * on them), and bos/eos ids in config.json or generation_config.json that are not the tokenizer's
 * (generation would stop on the wrong token, or never). Empty when they agree or there is no tokenizer.
 */
export function tokenizerMismatches(p: Pretrained): string[] {
  const t = p.tokenizer;
  if (!t) return [];
  const out: string[] = [];
  const vocab = p.config.vocab_size;
  if (t.vocabSize > vocab) out.push(`the tokenizer has ${t.vocabSize} tokens but the model's vocab_size is ${vocab}: ids ${vocab}… have no embedding`);
  const idOf = (token: string | undefined) => (token === undefined ? undefined : t.tokenToId(token));
  for (const role of ['bos', 'eos'] as const) {
    const tokenId = idOf(t.specialTokens[role]);
    if (tokenId === undefined) continue;
    for (const [file, source] of [['config.json', p.rawConfig], ['generation_config.json', p.generationConfig]] as const) {
      const value = source?.[`${role}_token_id`];
      const ids = typeof value === 'number' ? [value] : Array.isArray(value) ? value.filter((v): v is number => typeof v === 'number') : [];
      if (ids.length > 0 && !ids.includes(tokenId)) {
        out.push(`${file} has ${role}_token_id ${JSON.stringify(value)} but the tokenizer's ${role} token ${JSON.stringify(t.specialTokens[role])} is id ${tokenId}`);
      }
    }
  }
  return out;
}
