/**
 * What the server's workers do with a loaded model directory: fill-mask, classification, embeddings
 * and attention maps (completions are batched by scheduler.ts). Plain functions on loaded models, so
 * they run the same in a worker thread or in-process.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadModelDir, readModelConfig } from '../models/load.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTaskModelDir } from '../models/model-dir.ts';
import { SequenceClassifier, runBackbone, type Backbone } from '../models/heads.ts';
import { collate, padTokenId } from '../tasks/encode.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { fillMask, type FillMaskResult } from '../infer/fill-mask.ts';
import { encodePrompt, type TextDecodeOptions } from '../infer/decode.ts';
import type { GPT } from '../models/gpt.ts';
import type { Bert } from '../models/bert.ts';
import { ModelLoadError } from '../models/load.ts';

export type ModelKind = 'gpt2' | 'bert' | 'classifier';

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
}

/** Checks a model directory enough to fail at startup with a clear message (no weights loaded). */
export function describeModelDir(dir: string): ModelInfo {
  const abs = resolve(dir);
  const config = readModelConfig(abs); // clear ModelLoadError for a missing dir / config.json
  const raw = JSON.parse(readFileSync(join(abs, 'config.json'), 'utf8')) as { architectures?: string[]; id2label?: Record<string, string> };
  const architecture = raw.architectures?.[0] ?? (config.model_type === 'gpt2' ? 'GPT2LMHeadModel' : 'BertForPreTraining');
  let eosToken: string | undefined;
  try {
    const tok = loadTokenizer(abs);
    eosToken = tok.specialTokens.eos ?? tok.specialTokens.bos;
  } catch (e) {
    throw new ModelLoadError(`${abs}: no usable tokenizer (${(e as Error).message})`, { cause: e });
  }
  const context = config.model_type === 'gpt2' ? config.n_positions : config.max_position_embeddings;
  if (architecture.endsWith('ForSequenceClassification')) {
    const labels = Object.entries(raw.id2label ?? {}).sort((a, b) => +a[0] - +b[0]).map(([, l]) => l);
    return { id: basename(abs), dir: abs, kind: 'classifier', architecture, context, labels };
  }
  if (!/LMHeadModel$|ForPreTraining$|ForMaskedLM$/.test(architecture)) {
    throw new ModelLoadError(`${abs}: architecture ${architecture} cannot be served (expected GPT2LMHeadModel, BertForPreTraining or *ForSequenceClassification)`);
  }
  const kind = config.model_type === 'gpt2' ? 'gpt2' : 'bert';
  const chatTemplate = kind === 'gpt2' ? ownChatTemplate(abs) : undefined;
  return { id: basename(abs), dir: abs, kind, architecture, context, eosToken, ...(chatTemplate !== undefined ? { chatTemplate } : {}) };
}

/** tokenizer_config.json's `chat_template`, if it has one (a malformed file is the tokenizer's problem, reported there). */
function ownChatTemplate(dir: string): string | undefined {
  try {
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown };
    return typeof config.chat_template === 'string' ? config.chat_template : undefined;
  } catch {
    return undefined;
  }
}

export type LoadedServeModel =
  | { info: ModelInfo; kind: 'gpt2'; model: GPT; tokenizer: Tokenizer }
  | { info: ModelInfo; kind: 'bert'; model: Bert; tokenizer: Tokenizer }
  | { info: ModelInfo; kind: 'classifier'; model: SequenceClassifier; tokenizer: Tokenizer };

export function loadServeModel(info: ModelInfo): LoadedServeModel {
  const tokenizer = loadTokenizer(info.dir);
  if (info.kind === 'classifier') {
    const model = loadTaskModelDir(info.dir);
    if (!(model instanceof SequenceClassifier)) throw new ModelLoadError(`${info.dir}: not a sequence classifier`);
    return { info, kind: 'classifier', model: model.eval(), tokenizer };
  }
  const loaded = loadModelDir(info.dir);
  if (loaded.kind === 'gpt2') return { info, kind: 'gpt2', model: loaded.model.eval(), tokenizer };
  if (loaded.kind === 'bert') return { info, kind: 'bert', model: loaded.model.eval(), tokenizer };
  throw new ModelLoadError(`${info.dir}: this architecture cannot be served yet (GPT-2, BERT and classifiers can)`);
}

/** A client-facing problem with the request (HTTP 400), as opposed to a server fault. */
export class RequestError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

function need<K extends ModelKind>(m: LoadedServeModel, kind: K, what: string): asserts m is Extract<LoadedServeModel, { kind: K }> {
  if (m.kind !== kind) throw new RequestError(`model "${m.info.id}" is a ${m.info.architecture}; ${what} needs a ${kind === 'gpt2' ? 'GPT-2 language model' : kind === 'bert' ? 'BERT pre-training model' : 'sequence classifier'}`);
}

export interface CompletionJob extends TextDecodeOptions {
  prompts: string[];
  /** Choices per prompt (choice c samples with seed + c). */
  n?: number;
}

export function runFillMask(m: LoadedServeModel, text: string, topK: number): FillMaskResult[] {
  need(m, 'bert', 'fill-mask');
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
  need(m, 'classifier', 'classification');
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

/** Mean-pooled last hidden states over real tokens, L2-normalised (cosine similarity = dot product). */
export function runEmbeddings(m: LoadedServeModel, texts: string[]): { vectors: number[][]; tokens: number } {
  const backbone: Backbone = m.kind === 'gpt2' ? m.model.transformer : m.kind === 'bert' ? m.model.bert : m.model.backbone;
  const addSpecial = m.kind !== 'gpt2';
  let tokens = 0;
  const vectors = texts.map((text) => {
    let ids = m.tokenizer.encode(text, null, { addSpecialTokens: addSpecial, maxLength: m.info.context }).ids;
    if (ids.length === 0) ids = [padTokenId(m.tokenizer)];
    tokens += ids.length;
    return noGrad(() => withScope(() => {
      const { hidden } = runBackbone(backbone, { inputIds: Int32Array.from(ids), batch: 1, length: ids.length, attentionMask: new Uint8Array(ids.length).fill(1) });
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
  need(m, 'gpt2', 'the attention view');
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
