/**
 * What the server's workers do with a loaded model directory: fill-mask, classification, embeddings
 * and attention maps (completions are batched by scheduler.ts). Plain functions on loaded models, so
 * they run the same in a worker thread or in-process. Causal LMs are GPT-2s or Llama-family models
 * (LlamaForCausalLM, Qwen2ForCausalLM): both decode through the same KV-cache DecodeBatch. Sequence
 * classifiers (kind 'classifier') have a GPT-2, BERT or Llama-family body (…ForSequenceClassification).
 * Weights are one model.safetensors or a sharded checkpoint (model.safetensors.index.json), which the
 * importer's loader reads.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadAnyModelDir, parseAnyModelConfig, isLlamaConfig } from '../models/load.ts';
import { readConfigJson } from '../models/model-files.ts';
import { readJsonFile } from '../io/json.ts';
import { LM_ARCHITECTURES, TASK_ARCHITECTURES, loadPretrained } from '../interop/import.ts';
import { readCheckpoint, SAFETENSORS_FILE, SAFETENSORS_INDEX } from '../interop/weights.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTaskModelDir } from '../models/model-dir.ts';
import { SequenceClassifier, contextLength, runBackbone, type Backbone } from '../models/heads.ts';
import { collate, padTokenId } from '../tasks/encode.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { fillMask, type FillMaskResult } from '../infer/fill-mask.ts';
import { encodePrompt, type TextDecodeOptions } from '../infer/decode.ts';
import type { GPT } from '../models/gpt.ts';
import type { Bert } from '../models/bert.ts';
import type { Llama } from '../models/llama.ts';
import { ModelLoadError } from '../models/load.ts';
import { readChatConfig } from '../tokenizers/jinja-template.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** 'llama' covers the Llama family (Llama, Qwen2); 'gpt2' and 'llama' are the causal LMs that generate. */
export type ModelKind = 'gpt2' | 'llama' | 'bert' | 'classifier';
export const CAUSAL_KINDS: readonly ModelKind[] = ['gpt2', 'llama'];

/** What the main thread knows about a model without loading its weights. */
export interface ModelInfo {
  id: string;
  dir: string;
  kind: ModelKind;
  architecture: string;
  /** Context size in tokens (n_positions / max_position_embeddings). */
  context: number;
  labels?: string[];
  /** The chat template of tokenizer_config.json, when the model has one (a chat model). */
  chatTemplate?: string;
  /** The tokenizer's end-of-text token (the chat template's eos_token). */
  eosToken?: string;
  /** The tokenizer's beginning-of-text token (the chat template's bos_token; Llama templates start with it). */
  bosToken?: string;
  /**
   * Further ids that end a generation, from generation_config.json `eos_token_id` (a number or a list:
   * Llama 3 Instruct stops on <|eot_id|> and <|eom_id|> too), as transformers' generate() stops on them.
   */
  stopTokenIds?: number[];
}

/** Checks a model directory enough to fail at startup with a clear message (weight headers read, no weights loaded). */
export function describeModelDir(dir: string): ModelInfo {
  const abs = resolve(dir);
  const raw = readConfigJson(abs) as { architectures?: string[]; id2label?: Record<string, string> }; // clear ModelLoadError for a missing dir / config.json
  const config = parseAnyModelConfig(raw, join(abs, 'config.json'));
  const llama = isLlamaConfig(config);
  const architecture = raw.architectures?.[0]
    ?? (config.model_type === 'gpt2' ? 'GPT2LMHeadModel' : config.model_type === 'qwen2' ? 'Qwen2ForCausalLM' : llama ? 'LlamaForCausalLM' : 'BertForPreTraining');
  if (!/ForSequenceClassification$|LMHeadModel$|ForPreTraining$|ForMaskedLM$|ForCausalLM$/.test(architecture)) {
    throw new ModelLoadError(`${abs}: architecture ${architecture} cannot be served `
      + '(expected GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM, BertForPreTraining or *ForSequenceClassification)');
  }
  checkWeights(abs, architecture);
  let eosToken: string | undefined, bosToken: string | undefined;
  try {
    const tok = loadTokenizer(abs);
    eosToken = tok.specialTokens.eos ?? tok.specialTokens.bos;
    bosToken = tok.specialTokens.bos;
  } catch (e) {
    throw new ModelLoadError(`${abs}: no usable tokenizer (${(e as Error).message})`, { cause: e });
  }
  const context = contextLength(config);
  if (architecture.endsWith('ForSequenceClassification')) {
    // GPT-2, BERT and Llama-family (LlamaFor…/Qwen2For…: last non-pad token, `score`) classifiers all load as a SequenceClassifier.
    const labels = Object.entries(raw.id2label ?? {}).sort((a, b) => +a[0] - +b[0]).map(([, l]) => l);
    return { id: basename(abs), dir: abs, kind: 'classifier', architecture, context, labels };
  }
  const kind: ModelKind = config.model_type === 'gpt2' ? 'gpt2' : llama ? 'llama' : 'bert';
  if (kind === 'bert') return { id: basename(abs), dir: abs, kind, architecture, context, eosToken };
  const chat = ownChatConfig(abs);
  const stopTokenIds = generationStopIds(abs);
  return {
    id: basename(abs), dir: abs, kind, architecture, context, eosToken: chat.eosToken ?? eosToken, bosToken: chat.bosToken ?? bosToken,
    ...(chat.chatTemplate !== null ? { chatTemplate: chat.chatTemplate } : {}), ...(stopTokenIds.length ? { stopTokenIds } : {}),
  };
}

const IMPORTABLE: readonly string[] = [...LM_ARCHITECTURES, ...TASK_ARCHITECTURES];

/**
 * The weights are looked at here (headers only) so that a directory without usable ones is refused
 * before the server listens, not by a worker after it. Sharded checkpoints load through the importer
 * (loadServeModel), which takes the architectures it knows; the others are refused by name.
 */
function checkWeights(dir: string, architecture: string): void {
  try {
    readCheckpoint(dir);
  } catch (e) {
    throw new ModelLoadError((e as Error).message, { cause: e });
  }
  if (isSharded(dir) && !IMPORTABLE.includes(architecture)) {
    throw new ModelLoadError(`${dir} holds a sharded checkpoint (${SAFETENSORS_INDEX}); serve loads a sharded ${architecture} `
      + `only from one ${SAFETENSORS_FILE} (sharded checkpoints are read for ${IMPORTABLE.join(', ')})`);
  }
}

function isSharded(dir: string): boolean {
  return !existsSync(join(dir, SAFETENSORS_FILE)) && existsSync(join(dir, SAFETENSORS_INDEX));
}

/** The chat template (tokenizer_config.json `chat_template`, a named list's "default", or chat_template.jinja) and its bos/eos tokens. */
function ownChatConfig(dir: string): ReturnType<typeof readChatConfig> {
  try {
    return readChatConfig(dir);
  } catch (e) {
    throw new ModelLoadError(`${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/** generation_config.json's `eos_token_id` (number or list of numbers); none when the file or field is absent. */
function generationStopIds(dir: string): number[] {
  const path = join(dir, 'generation_config.json');
  if (!existsSync(path)) return [];
  const json = readJsonFile(path, (message, cause) => new ModelLoadError(message, { cause })) as { eos_token_id?: unknown } | null;
  const v = json?.eos_token_id;
  const ids = v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
  if (!ids.every((id) => Number.isInteger(id) && (id as number) >= 0)) {
    throw new ModelLoadError(`${path}: field "eos_token_id" must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
  }
  return ids as number[];
}

export type LoadedServeModel =
  | { info: ModelInfo; kind: 'gpt2'; model: GPT; tokenizer: Tokenizer }
  | { info: ModelInfo; kind: 'llama'; model: Llama; tokenizer: Tokenizer }
  | { info: ModelInfo; kind: 'bert'; model: Bert; tokenizer: Tokenizer }
  | { info: ModelInfo; kind: 'classifier'; model: SequenceClassifier; tokenizer: Tokenizer };

export function loadServeModel(info: ModelInfo): LoadedServeModel {
  const tokenizer = loadTokenizer(info.dir);
  if (isSharded(info.dir)) return loadShardedServeModel(info, tokenizer);
  if (info.kind === 'classifier') {
    const model = loadTaskModelDir(info.dir);
    if (!(model instanceof SequenceClassifier)) throw new ModelLoadError(`${info.dir}: not a sequence classifier`);
    return { info, kind: 'classifier', model: model.eval(), tokenizer };
  }
  const loaded = loadAnyModelDir(info.dir);
  if (loaded.kind === 'gpt2') return { info, kind: 'gpt2', model: loaded.model.eval(), tokenizer };
  if (loaded.kind === 'llama') return { info, kind: 'llama', model: loaded.model.eval(), tokenizer };
  return { info, kind: 'bert', model: loaded.model.eval(), tokenizer };
}

/** A sharded checkpoint, through the importer (describeModelDir admitted only architectures it reads). */
function loadShardedServeModel(info: ModelInfo, tokenizer: Tokenizer): LoadedServeModel {
  const { lm, task } = loadPretrained(info.dir);
  if (info.kind === 'classifier') {
    if (!(task instanceof SequenceClassifier)) throw new ModelLoadError(`${info.dir}: not a sequence classifier`);
    return { info, kind: 'classifier', model: task.eval(), tokenizer };
  }
  if (lm?.kind === 'gpt2') return { info, kind: 'gpt2', model: lm.model.eval(), tokenizer };
  if (lm?.kind === 'llama') return { info, kind: 'llama', model: lm.model.eval(), tokenizer };
  if (lm?.kind === 'bert') return { info, kind: 'bert', model: lm.model.eval(), tokenizer };
  throw new ModelLoadError(`${info.dir}: ${info.architecture} is not a model serve runs`);
}

/** A client-facing problem with the request (HTTP 400), as opposed to a server fault. */
export class RequestError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

const KIND_NAMES: Record<ModelKind, string> = {
  gpt2: 'GPT-2 language model', llama: 'Llama-family language model', bert: 'BERT pre-training model', classifier: 'sequence classifier',
};

function need<K extends ModelKind>(m: LoadedServeModel, kinds: readonly K[], what: string): asserts m is Extract<LoadedServeModel, { kind: K }> {
  if (!(kinds as readonly ModelKind[]).includes(m.kind)) {
    throw new RequestError(`model "${m.info.id}" is a ${m.info.architecture}; ${what} needs a ${kinds.map((k) => KIND_NAMES[k]).join(' or ')}`);
  }
}

/** A causal LM ready for the DecodeBatch, or a RequestError naming what the model is. */
export function causalModel(m: LoadedServeModel): Extract<LoadedServeModel, { kind: 'gpt2' | 'llama' }> {
  need(m, ['gpt2', 'llama'], 'a completion');
  return m;
}

export interface CompletionJob extends TextDecodeOptions {
  prompts: string[];
  /** Choices per prompt (choice c samples with seed + c). */
  n?: number;
}

export function runFillMask(m: LoadedServeModel, text: string, topK: number): FillMaskResult[] {
  need(m, ['bert'], 'fill-mask');
  try {
    return fillMask(m.model, m.tokenizer, text, { topK });
  } catch (e) {
    if (e instanceof RangeError) throw new RequestError(e.message);
    throw e;
  }
}

export interface ClassifyResult {
  label: string;
  scores: Array<{ label: string; probability: number }>;
}

export function runClassify(m: LoadedServeModel, texts: string[]): ClassifyResult[] {
  need(m, ['classifier'], 'classification');
  const { model, tokenizer } = m;
  const encs = texts.map((t) => tokenizer.encode(t, null, { maxLength: m.info.context }));
  const batch = collate(encs, padTokenId(tokenizer));
  return noGrad(() => withScope(() => {
    const logits = model.forward(batch).logits.data;
    const k = model.labels.size;
    return texts.map((_, r) => {
      const row = Array.from(logits.subarray(r * k, (r + 1) * k));
      const max = Math.max(...row);
      const z = row.reduce((s, v) => s + Math.exp(v - max), 0);
      const scores = row.map((v, i) => ({ label: model.labels.label(i), probability: Math.exp(v - max) / z }));
      scores.sort((a, b) => b.probability - a.probability);
      return { label: scores[0]!.label, scores };
    });
  }));
}

/** One text's last hidden states [1, T, C] (after the final norm). */
function lastHidden(m: LoadedServeModel, ids: Int32Array): Tensor {
  // A Llama body is not a heads.ts Backbone (whose union is another engineer's): LlamaModel.forward gives the same.
  if (m.kind === 'llama') return m.model.model.forward(ids, 1, ids.length);
  const backbone: Backbone = m.kind === 'gpt2' ? m.model.transformer : m.kind === 'bert' ? m.model.bert : m.model.backbone;
  return runBackbone(backbone, { inputIds: ids, batch: 1, length: ids.length, attentionMask: new Uint8Array(ids.length).fill(1) }).hidden;
}

/** Mean-pooled last hidden states over real tokens, L2-normalised (cosine similarity = dot product). */
export function runEmbeddings(m: LoadedServeModel, texts: string[]): { vectors: number[][]; tokens: number } {
  // Causal LMs embed the text as written (as they generate from it); BERTs with [CLS] … [SEP].
  const addSpecial = m.kind !== 'gpt2' && m.kind !== 'llama';
  const n = m.info.context;
  // All inputs are checked before any is embedded. OpenAI refuses an over-long input rather than
  // cutting it: a truncated text's vector would silently stand for text the model never read.
  const encoded = texts.map((text, i) => {
    const ids = m.tokenizer.encode(text, null, { addSpecialTokens: addSpecial }).ids;
    if (ids.length > n) throw new RequestError(`input ${i} has ${ids.length} tokens, more than the model's context of ${n} tokens`);
    return ids.length > 0 ? ids : [padTokenId(m.tokenizer)];
  });
  let tokens = 0;
  const vectors = encoded.map((ids) => {
    tokens += ids.length;
    return noGrad(() => withScope(() => {
      const hidden = lastHidden(m, Int32Array.from(ids));
      const c = hidden.shape[2]!;
      const v = new Float64Array(c);
      for (let t = 0; t < ids.length; t++) for (let j = 0; j < c; j++) v[j]! += hidden.data[t * c + j]! / ids.length;
      const norm = Math.hypot(...v) || 1;
      return Array.from(v, (x) => x / norm);
    }));
  });
  return { vectors, tokens };
}

export interface AttentionMaps {
  tokens: string[];
  layers: number;
  heads: number;
  /** probs[layer][head][i][j] = attention of query i on key j. */
  probs: number[][][][];
}

/** Attention probabilities of a GPT-2 for a short text, as the model reports them through its attention hook. */
export function runAttention(m: LoadedServeModel, text: string, maxTokens = 48): AttentionMaps {
  need(m, ['gpt2'], 'the attention view');
  const ids = encodePrompt(m.tokenizer, text).slice(0, Math.min(maxTokens, m.model.config.n_positions));
  const cfg = m.model.config;
  const H = cfg.n_head, T = ids.length;
  const probs: number[][][][] = [];
  noGrad(() => withScope(() => m.model.forward(Int32Array.from(ids), 1, T, undefined, {
    lastOnly: true,
    onAttention: (_layer, p) => {
      probs.push(Array.from({ length: H }, (_, h) => Array.from({ length: T }, (_, i) => Array.from(p.subarray((h * T + i) * T, (h * T + i + 1) * T)))));
    },
  })));
  return { tokens: ids.map((id) => m.tokenizer.decode([id], { skipSpecialTokens: false })), layers: cfg.n_layer, heads: H, probs };
}
