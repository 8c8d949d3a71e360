/**
 * A chat session over a causal LM (GPT-2 or Llama-family): the conversation is rendered with the chat template on every turn and
 * the reply is streamed token by token through the KV-cache decoder (infer/decode.ts).
 *
 * Context policy: prompt tokens + maxTokens must fit the context (n_positions / max_position_embeddings). When they do not, the oldest turns
 * are dropped (a user message together with the assistant reply that followed it); the system prompt
 * and the new user message are always kept. If even those alone do not fit, the turn is refused.
 * A maxTokens that leaves no room for any message is refused when the session is made; left unset,
 * it is 64 or, for a small context, half of what the template and system prompt leave.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadAnyModelDir } from '../models/load.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { streamCompletions } from '../infer/decode.ts';
import { decoderContext, type CausalDecoder } from '../infer/kv-cache.ts';
import { DEFAULT_CHAT_TEMPLATE, renderChatText, type ChatMessage } from './chat-template.ts';
import { readChatConfig } from '../tokenizers/jinja-template.ts';
import { loadLoraAdapter } from './lora.ts';

export interface ChatOptions {
  template?: string;
  system?: string;
  /** Tokens per reply; default 64, capped to fit a small context (see ChatSession.maxTokensCapped). */
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

const DEFAULT_MAX_TOKENS = 64;

export class ChatSession {
  readonly history: ChatMessage[] = [];
  readonly template: string;
  /** Turns dropped from the start of the history to fit the context, over the whole session. */
  droppedTurns = 0;
  /** Tokens per reply, resolved against the context. */
  readonly maxTokens: number;
  /** True when the default of 64 was lowered to fit the context (callers say so once). */
  readonly maxTokensCapped: boolean;
  private turn = 0;
  constructor(readonly model: CausalDecoder, readonly tokenizer: Tokenizer, readonly options: ChatOptions = {}) {
    this.template = options.template ?? DEFAULT_CHAT_TEMPLATE;
    // Checked now rather than per message: otherwise every turn of the session fails the same way.
    const context = decoderContext(model);
    const overhead = this.countTokens(this.render([...this.systemMessages(), { role: 'user', content: '' }]));
    const room = context - overhead; // for the user's message and the reply
    if (room < 2) {
      throw new RangeError(`chat: the chat template${options.system ? ' with the system prompt' : ''} takes ${overhead} of the model's ${context} tokens, `
        + `leaving no room for a message and a reply${options.system ? '; shorten --system' : ''}`);
    }
    const fair = Math.floor(room / 2);
    if (options.maxTokens === undefined) {
      this.maxTokens = Math.min(DEFAULT_MAX_TOKENS, fair);
      this.maxTokensCapped = this.maxTokens < DEFAULT_MAX_TOKENS;
    } else {
      if (options.maxTokens >= room) {
        const what = options.system ? 'the chat template and system prompt take' : 'the chat template takes';
        throw new RangeError(`--max-tokens ${options.maxTokens} leaves no room for the prompt in a ${context}-token context (${what} ${overhead}): `
          + `use --max-tokens ${fair} or fewer, so that messages get as many tokens as replies`);
      }
      this.maxTokens = options.maxTokens;
      this.maxTokensCapped = false;
    }
  }

  private systemMessages(): ChatMessage[] {
    return this.options.system ? [{ role: 'system', content: this.options.system }] : [];
  }

  reset(): void {
    this.history.length = 0;
  }

  private render(messages: readonly ChatMessage[]): string {
    const eos = this.tokenizer.specialTokens.eos ?? '<|endoftext|>';
    return renderChatText(this.template, { messages, addGenerationPrompt: true, eosToken: eos, bosToken: this.tokenizer.specialTokens.bos ?? eos });
  }

  private countTokens(text: string): number {
    return this.tokenizer.encode(text, null, { addSpecialTokens: false }).ids.length;
  }

  /** The prompt for a new user message, dropping the oldest turns until it fits the context. */
  promptFor(userMessage: string): string {
    const context = decoderContext(this.model);
    const budget = context - this.maxTokens;
    const system = this.systemMessages();
    const user: ChatMessage = { role: 'user', content: userMessage };
    for (;;) {
      const prompt = this.render([...system, ...this.history, user]);
      if (this.countTokens(prompt) <= budget) return prompt;
      if (this.history.length === 0) {
        throw new RangeError(`chat: the message does not fit the model's context of ${context} tokens `
          + `(with ${this.maxTokens} tokens reserved for the reply); shorten it or lower --max-tokens`);
      }
      // Drop the oldest user message and everything up to the next user message (its reply).
      let cut = 1;
      while (cut < this.history.length && this.history[cut]!.role !== 'user') cut++;
      this.history.splice(0, cut);
      this.droppedTurns++;
    }
  }

  /** Streams the reply to userMessage piece by piece; returns the whole reply and records the turn. */
  *send(userMessage: string): Generator<string, string> {
    const prompt = this.promptFor(userMessage);
    const o = this.options;
    const stream = streamCompletions(this.model, this.tokenizer, [prompt], {
      maxTokens: this.maxTokens, temperature: o.temperature ?? 0.7, topK: o.topK ?? 40, topP: o.topP,
      repetitionPenalty: o.repetitionPenalty, seed: (o.seed ?? 0) + this.turn++, contextOverflow: 'error',
      // The model should end with end-of-text; these catch it starting the next turn instead.
      stop: ['\nUser:', '\nSystem:', '\nAssistant:'],
    });
    let reply = '';
    for (;;) {
      const r = stream.next();
      if (r.done) break;
      reply += r.value.text;
      if (r.value.text) yield r.value.text;
    }
    const answer = reply.trim();
    this.history.push({ role: 'user', content: userMessage }, { role: 'assistant', content: answer });
    return answer;
  }

  /** Non-streaming convenience. */
  reply(userMessage: string): string {
    const it = this.send(userMessage);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }
}

/** Loads a causal LM (optionally with a LoRA adapter merged in), its tokenizer and chat template, for ChatSession. */
export function loadChatModel(modelDir: string, adapterDir?: string): { model: CausalDecoder; tokenizer: Tokenizer; template: string } {
  const loaded = loadAnyModelDir(modelDir);
  if (loaded.kind === 'bert') throw new RangeError(`chat: ${modelDir} is a bert model; chat needs a causal LM (GPT-2, Llama, Qwen2)`);
  // The KV-cache decoder reads the weights directly, so an adapter is merged rather than wrapped.
  if (adapterDir) loadLoraAdapter(loaded.model, loaded.kind, adapterDir).merge();
  const tokDir = adapterDir && existsSync(join(adapterDir, 'tokenizer.json')) ? adapterDir : modelDir;
  // The template `primer serve` renders for this directory (chat_template.jinja, a named template list),
  // so a model chats the same way in both.
  return { model: loaded.model, tokenizer: loadTokenizer(tokDir), template: readChatConfig(tokDir).chatTemplate ?? DEFAULT_CHAT_TEMPLATE };
}
