/**
 * Chat templates of Hugging Face models (tokenizer_config.json `chat_template`, Jinja), rendered with
 * @huggingface/jinja — the engine Transformers.js uses — with the variables transformers'
 * apply_chat_template passes: messages, add_generation_prompt, bos_token, eos_token (plus any extra ones,
 * e.g. tools or date_string). Llama 3's and Qwen2's templates use {% set %}, loop.index0, filters
 * (| trim) and raise_exception, which is why a full engine is needed.
 *
 * `chat_template` may also be a list of named templates ([{name, template}], some multi-template
 * models); the one named "default" is used, as transformers does without a name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Template } from '@huggingface/jinja';
import { formatError, isObject } from './json-fields.ts';
import { describeJsonError } from '../io/json.ts';

export interface TemplateMessage {
  role: string;
  content: string;
}

export interface ChatTemplateVariables {
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Further variables the template may read (tools, date_string, …). */
  extra?: Record<string, unknown>;
}

let templateClass: typeof Template | undefined;
/** Loaded on first use, so that code which never meets a Jinja-only template does not need the package. */
function jinjaTemplate(): typeof Template {
  if (!templateClass) {
    try {
      templateClass = (createRequire(import.meta.url)('@huggingface/jinja') as { Template: typeof Template }).Template;
    } catch (e) {
      throw new Error(`chat template: rendering this template needs the package @huggingface/jinja (${(e as Error).message})`);
    }
  }
  return templateClass;
}

/** A compiled chat template. */
export class JinjaChatTemplate {
  private readonly template: Template;
  constructor(readonly source: string) {
    const TemplateClass = jinjaTemplate();
    try {
      this.template = new TemplateClass(source);
    } catch (e) {
      throw new SyntaxError(`chat template: cannot parse the Jinja template: ${(e as Error).message}`);
    }
  }

  render(messages: readonly TemplateMessage[], vars: ChatTemplateVariables = {}): string {
    try {
      return this.template.render({
        ...vars.extra,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: vars.addGenerationPrompt ?? false,
        bos_token: vars.bosToken ?? '',
        eos_token: vars.eosToken ?? '',
      });
    } catch (e) {
      // raise_exception('Conversation roles must alternate …') and the like surface with their own text.
      throw new Error(`chat template: ${(e as Error).message}`);
    }
  }
}

/** Renders a chat template once (compiles it each call; keep a JinjaChatTemplate to render many). */
export function applyJinjaChatTemplate(template: string, messages: readonly TemplateMessage[], vars: ChatTemplateVariables = {}): string {
  return new JinjaChatTemplate(template).render(messages, vars);
}

function tokenContent(v: unknown): string | undefined {
  return typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : undefined;
}

export interface TokenizerChatConfig {
  /** The Jinja source, or null when the file has none. */
  chatTemplate: string | null;
  bosToken?: string;
  eosToken?: string;
}

/** `chat_template`, `bos_token` and `eos_token` of a parsed tokenizer_config.json; errors name the field. */
export function chatConfigFromJSON(config: unknown, file = 'tokenizer_config.json'): TokenizerChatConfig {
  if (!isObject(config)) return formatError('(root)', 'must be an object', file);
  const raw = config.chat_template;
  let chatTemplate: string | null = null;
  if (typeof raw === 'string') chatTemplate = raw;
  else if (Array.isArray(raw)) {
    const named = raw.find((t) => isObject(t) && t.name === 'default');
    if (!isObject(named) || typeof named.template !== 'string') formatError('chat_template', 'is a list without a template named "default"', file);
    chatTemplate = named.template as string;
  } else if (raw !== undefined && raw !== null) {
    formatError('chat_template', 'must be a string or a list of {name, template}', file);
  }
  return { chatTemplate, bosToken: tokenContent(config.bos_token), eosToken: tokenContent(config.eos_token) };
}

/** The chat configuration of a model/tokenizer directory (chat_template.jinja, when present, wins, as in transformers ≥ 4.43). */
export function readChatConfig(dir: string): TokenizerChatConfig {
  const path = join(dir, 'tokenizer_config.json');
  let out: TokenizerChatConfig = { chatTemplate: null };
  if (existsSync(path)) {
    let json: unknown;
    const text = readFileSync(path, 'utf8');
    try {
      json = JSON.parse(text);
    } catch (e) {
      return formatError('(file)', `is ${describeJsonError(text, e)}`, 'tokenizer_config.json');
    }
    out = chatConfigFromJSON(json);
  }
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) out = { ...out, chatTemplate: readFileSync(jinja, 'utf8') };
  return out;
}

/** A piece of rendered conversation; `trained` marks assistant replies (what SFT computes the loss on). */
export interface TemplateSegment {
  text: string;
  trained: boolean;
}

/**
 * Renders a conversation into segments, the assistant replies marked as trained, for templates without
 * {% generation %} blocks: each reply is what rendering up to it adds to rendering the conversation
 * before it with add_generation_prompt (transformers' usual way to find assistant tokens). Throws when a
 * template does not render conversations as growing prefixes (then replies cannot be located).
 */
export function renderJinjaSegments(
  template: string | JinjaChatTemplate, messages: readonly TemplateMessage[], vars: ChatTemplateVariables = {},
): TemplateSegment[] {
  const t = typeof template === 'string' ? new JinjaChatTemplate(template) : template;
  const base = { bosToken: vars.bosToken, eosToken: vars.eosToken, extra: vars.extra };
  const out: TemplateSegment[] = [];
  const emit = (text: string, trained: boolean) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last.trained === trained) last.text += text;
    else out.push({ text, trained });
  };
  const notPrefix = (i: number): never => {
    throw new Error(`chat template: rendering up to message ${i} is not a prefix of the whole conversation, so the assistant replies cannot be located`);
  };
  let done = '';
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.role !== 'assistant') continue;
    const before = t.render(messages.slice(0, i), { ...base, addGenerationPrompt: true });
    const after = t.render(messages.slice(0, i + 1), base);
    if (!before.startsWith(done) || !after.startsWith(before)) notPrefix(i);
    emit(before.slice(done.length), false);
    emit(after.slice(before.length), true);
    done = after;
  }
  const full = t.render(messages, { ...base, addGenerationPrompt: vars.addGenerationPrompt });
  if (!full.startsWith(done)) notPrefix(messages.length);
  emit(full.slice(done.length), false);
  return out;
}
