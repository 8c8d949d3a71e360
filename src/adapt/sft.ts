/**
 * Supervised fine-tuning (SFT) of a causal LM (GPT-2, Llama, Qwen2) on prompt/response pairs or multi-turn conversations.
 *
 * Data: JSONL, one example per line, either {"prompt": "...", "response": "..."} (optionally "system")
 * or {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]} with at least one
 * assistant turn. Each example is rendered with the chat template (chat-template.ts) and tokenized
 * segment by segment; labels are the token ids inside `{% generation %}` blocks (assistant answers and
 * their end-of-text) and -100 elsewhere, so the loss
 *   L = −(1/N) Σ_{t: label[t+1] ≠ −100} log p(label[t+1] | tokens ≤ t)
 * counts response tokens only.
 *
 * Batching ("packing" policy): examples are never concatenated into one row, because the fused
 * attention kernel has no block-diagonal mask and a packed example would attend to the previous one.
 * Instead each row holds one example, right-padded with end-of-text (label -100) to the longest row
 * of its batch; with causal attention the padding comes after every real token, so it changes nothing.
 * To keep padding small, each batch is drawn from a shuffled window of examples sorted by length.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Tokenizer } from '../tokenizers/types.ts';
import { shiftLabels, type CausalLMOutput } from '../models/gpt.ts';
import type { Module } from '../nn/module.ts';
import { crossEntropy } from '../tensor/nn-ops.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { Rng } from '../util/random.ts';
import { PrimerError } from '../io/errors.ts';
import type { BatchSource } from '../train/trainer.ts';
import { ROLES, renderChat, type ChatMessage, type Role } from './chat-template.ts';

export class SftDataError extends PrimerError {
  constructor(message: string) {
    super('SFT_DATA', message);
  }
}

/** Parses SFT JSONL text; every error names the file and line. Blank lines are skipped. */
export function parseSftJsonl(text: string, source = '<jsonl>'): ChatMessage[][] {
  const out: ChatMessage[][] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `${source}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new SftDataError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new SftDataError(`${where}: expected a JSON object`);
    const o = obj as Record<string, unknown>;
    if ('messages' in o) {
      if (!Array.isArray(o.messages) || o.messages.length === 0) throw new SftDataError(`${where}: field "messages" must be a non-empty array`);
      const messages = o.messages.map((m, k) => {
        if (!m || typeof m !== 'object') throw new SftDataError(`${where}: messages[${k}] must be an object with "role" and "content"`);
        const { role, content } = m as Record<string, unknown>;
        if (role === undefined) throw new SftDataError(`${where}: messages[${k}] is missing field "role"`);
        if (!ROLES.includes(role as Role)) throw new SftDataError(`${where}: messages[${k}] has role ${JSON.stringify(role)}; expected one of ${ROLES.join(', ')}`);
        if (typeof content !== 'string') throw new SftDataError(`${where}: messages[${k}] is missing string field "content"`);
        return { role: role as Role, content };
      });
      if (!messages.some((m) => m.role === 'assistant')) throw new SftDataError(`${where}: "messages" has no assistant turn to learn from`);
      out.push(messages);
      return;
    }
    for (const f of ['prompt', 'response']) {
      if (typeof o[f] !== 'string') throw new SftDataError(`${where}: missing string field "${f}" (expected {"prompt", "response"} or {"messages": [...]})`);
    }
    const messages: ChatMessage[] = [];
    if (typeof o.system === 'string') messages.push({ role: 'system', content: o.system });
    messages.push({ role: 'user', content: o.prompt as string }, { role: 'assistant', content: o.response as string });
    out.push(messages);
  });
  return out;
}

export function readSftJsonl(path: string): ChatMessage[][] {
  if (!existsSync(path)) throw new SftDataError(`${path}: no such file`);
  const examples = parseSftJsonl(readFileSync(path, 'utf8'), path);
  if (examples.length === 0) throw new SftDataError(`${path}: no examples`);
  return examples;
}

export interface SftExample {
  ids: Int32Array;
  /** ids at trained (response) positions, -100 elsewhere; aligned with ids (the model shifts). */
  labels: Int32Array;
}

/** Renders and tokenizes one conversation; null when truncation to maxLength leaves no trained token. */
export function encodeConversation(tokenizer: Tokenizer, template: string, messages: readonly ChatMessage[], maxLength: number): SftExample | null {
  const eos = tokenizer.specialTokens.eos ?? '<|endoftext|>';
  const ids: number[] = [];
  const labels: number[] = [];
  for (const seg of renderChat(template, { messages, eosToken: eos, bosToken: tokenizer.specialTokens.bos ?? eos })) {
    for (const id of tokenizer.encode(seg.text, null, { addSpecialTokens: false }).ids) {
      ids.push(id);
      labels.push(seg.trained ? id : -100);
    }
  }
  const n = Math.min(ids.length, maxLength);
  // Position 0 is never a target, so a trained token must sit at 1 ≤ t < n.
  if (!labels.slice(1, n).some((l) => l !== -100)) return null;
  return { ids: Int32Array.from(ids.slice(0, n)), labels: Int32Array.from(labels.slice(0, n)) };
}

export interface SftBatch {
  input: Int32Array;
  labels: Int32Array;
  batch: number;
  length: number;
  /** Real (non-padding) tokens. */
  tokens: number;
}

/** One example per row, right-padded with padId (label -100) to the longest row. */
export function collate(examples: readonly SftExample[], padId: number): SftBatch {
  const b = examples.length;
  const t = Math.max(...examples.map((e) => e.ids.length));
  const input = new Int32Array(b * t).fill(padId);
  const labels = new Int32Array(b * t).fill(-100);
  let tokens = 0;
  examples.forEach((e, r) => {
    input.set(e.ids, r * t);
    labels.set(e.labels, r * t);
    tokens += e.ids.length;
  });
  return { input, labels, batch: b, length: t, tokens };
}

/**
 * Endless shuffled batches. Each epoch shuffles the examples, then sorts windows of 8 batches by
 * length so rows of a batch have similar lengths (less padding); state = (epoch, position) for resume.
 */
export class SftBatches implements BatchSource<SftBatch> {
  private order: number[] = [];
  private epoch = 0;
  private pos = 0;
  constructor(readonly examples: readonly SftExample[], readonly batchSize: number, readonly padId: number, readonly seed: number) {
    if (examples.length === 0) throw new SftDataError('SFT: no training examples');
    this.reshuffle();
  }
  private reshuffle(): void {
    const rng = new Rng(this.seed + this.epoch * 7919);
    const order = this.examples.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const window = this.batchSize * 8;
    for (let s = 0; s < order.length; s += window) {
      const part = order.slice(s, s + window).sort((a, b) => this.examples[a]!.ids.length - this.examples[b]!.ids.length);
      order.splice(s, part.length, ...part);
    }
    this.order = order;
  }
  next(): SftBatch {
    if (this.pos >= this.order.length) {
      this.epoch++;
      this.pos = 0;
      this.reshuffle();
    }
    const idx = this.order.slice(this.pos, this.pos + this.batchSize);
    this.pos += idx.length;
    return collate(idx.map((i) => this.examples[i]!), this.padId);
  }
  state(): { epoch: number; pos: number } {
    return { epoch: this.epoch, pos: this.pos };
  }
  loadState(s: unknown): void {
    const st = s as { epoch?: unknown; pos?: unknown };
    if (!Number.isInteger(st?.epoch) || !Number.isInteger(st?.pos)) throw new RangeError(`SftBatches.loadState: expected {epoch, pos}, got ${JSON.stringify(s)}`);
    this.epoch = st.epoch as number;
    this.reshuffle();
    this.pos = st.pos as number;
  }
}

/** Fixed evaluation batches in file order. */
export function sftEvalBatches(examples: readonly SftExample[], batchSize: number, padId: number): SftBatch[] {
  const out: SftBatch[] = [];
  for (let s = 0; s < examples.length; s += batchSize) out.push(collate(examples.slice(s, s + batchSize), padId));
  return out;
}

/** What SFT needs of a model: GPT and Llama both compute logits (and the shifted loss) this way. */
export type CausalLM = Module & { forward(ids: Int32Array, b: number, t: number, labels?: Int32Array): CausalLMOutput };

/** Mean response-token loss of a batch (the training objective). */
export function sftLoss(model: CausalLM, b: SftBatch) {
  return model.forward(b.input, b.batch, b.length, b.labels).loss!;
}

/**
 * Held-out response loss, weighted per token (not per batch): Σ −log p over every response token of
 * every batch / their count. Perplexity = e^loss.
 */
export function responseLoss(model: CausalLM, batches: readonly SftBatch[]): { loss: number; perplexity: number; tokens: number } {
  const was = model.training;
  model.eval();
  let total = 0;
  let count = 0;
  try {
    for (const b of batches) {
      const targets = shiftLabels(b.labels, b.batch, b.length);
      total += noGrad(() => withScope(() => crossEntropy(model.forward(b.input, b.batch, b.length).logits, targets, { reduction: 'sum' }).item()));
      for (const l of targets) if (l !== -100) count++;
    }
  } finally {
    model.train(was);
  }
  const loss = total / Math.max(1, count);
  return { loss, perplexity: Math.exp(loss), tokens: count };
}
