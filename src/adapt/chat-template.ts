/**
 * Chat templates: the Jinja string Hugging Face stores as `chat_template` in tokenizer_config.json, and
 * a small renderer for the subset chat templates use (others, e.g. Llama 3, Qwen2, go to @huggingface/jinja: tokenizers/jinja-template.ts):
 *   {{ message['content'] }} {{ message['role'] }} {{ eos_token }} {{ bos_token }}   (also message.content)
 *   {% for message in messages %} … {% endfor %}
 *   {% if COND %} … {% elif COND %} … {% else %} … {% endif %}
 *     COND: add_generation_prompt | loop.first | loop.last | EXPR == 'literal' | EXPR != 'literal' | not COND
 *   {% generation %} … {% endgeneration %}   marks the tokens the model is trained on (HF's
 *     assistant-token mask): SFT labels are -100 everywhere else.
 * Rendering returns segments (text + trained flag), so label masking is exact at segment boundaries.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { renderJinjaSegments } from '../tokenizers/jinja-template.ts';
import { readJsonFile } from '../io/json.ts';
import { PrimerError } from '../io/errors.ts';

export type Role = 'system' | 'user' | 'assistant';
export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];
export interface ChatMessage {
  role: Role;
  content: string;
}

/**
 * Primer's default template. A conversation renders as
 *   System: <system>\nUser: <question>\nAssistant: <answer><|endoftext|>\nUser: …\nAssistant:
 * and only " <answer><|endoftext|>" (the generation block) is trained, so the model learns to stop.
 */
export const DEFAULT_CHAT_TEMPLATE = "{% for message in messages %}{% if message['role'] == 'system' %}System: {{ message['content'] }}\n"
  + "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
  + "{% else %}Assistant:{% generation %} {{ message['content'] }}{{ eos_token }}{% endgeneration %}\n{% endif %}{% endfor %}"
  + "{% if add_generation_prompt %}Assistant:{% endif %}";

export interface Segment {
  text: string;
  trained: boolean;
}

export interface RenderContext {
  messages: readonly ChatMessage[];
  addGenerationPrompt?: boolean;
  eosToken?: string;
  bosToken?: string;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'expr'; expr: string }
  | { kind: 'for'; body: Node[] }
  | { kind: 'if'; branches: Array<{ cond: string | null; body: Node[] }> }
  | { kind: 'generation'; body: Node[] };

/** A template the renderer cannot parse or run: bad input, so a PrimerError (code 'CHAT_TEMPLATE'). */
export class ChatTemplateError extends PrimerError {
  constructor(message: string) {
    super('CHAT_TEMPLATE', `chat template: ${message}`);
  }
}

function parse(template: string): Node[] {
  const tokens = template.split(/(\{\{-?[\s\S]*?-?\}\}|\{%-?[\s\S]*?-?%\})/).filter((s) => s.length > 0);
  let pos = 0;
  const block = (ends: readonly string[]): { body: Node[]; end: string | null } => {
    const body: Node[] = [];
    while (pos < tokens.length) {
      const tok = tokens[pos++]!;
      if (tok.startsWith('{{')) {
        body.push({ kind: 'expr', expr: tok.replace(/^\{\{-?|-?\}\}$/g, '').trim() });
      } else if (tok.startsWith('{%')) {
        const stmt = tok.replace(/^\{%-?|-?%\}$/g, '').trim();
        const word = stmt.split(/\s+/)[0]!;
        if (ends.includes(word)) return { body, end: stmt };
        if (/^for\s+message\s+in\s+messages$/.test(stmt)) {
          const inner = block(['endfor']);
          if (!inner.end) throw new ChatTemplateError('{% for %} without {% endfor %}');
          body.push({ kind: 'for', body: inner.body });
        } else if (word === 'if') {
          const branches: Array<{ cond: string | null; body: Node[] }> = [];
          let cond: string | null = stmt.slice(2).trim();
          for (;;) {
            const inner = block(['elif', 'else', 'endif']);
            branches.push({ cond, body: inner.body });
            if (!inner.end) throw new ChatTemplateError('{% if %} without {% endif %}');
            if (inner.end === 'endif') break;
            cond = inner.end === 'else' ? null : inner.end.slice(4).trim();
          }
          body.push({ kind: 'if', branches });
        } else if (stmt === 'generation') {
          const inner = block(['endgeneration']);
          if (!inner.end) throw new ChatTemplateError('{% generation %} without {% endgeneration %}');
          body.push({ kind: 'generation', body: inner.body });
        } else {
          throw new ChatTemplateError(`unsupported statement {% ${stmt} %}`);
        }
      } else {
        body.push({ kind: 'text', text: tok });
      }
    }
    return { body, end: null };
  };
  const { body, end } = block([]);
  if (end) throw new ChatTemplateError(`unexpected {% ${end} %}`);
  return body;
}

interface Scope {
  ctx: RenderContext;
  message?: ChatMessage;
  index: number;
}

function value(expr: string, s: Scope): string | boolean {
  const e = expr.trim();
  const lit = /^'([^']*)'$|^"([^"]*)"$/.exec(e);
  if (lit) return lit[1] ?? lit[2]!;
  const field = /^message(?:\['(\w+)'\]|\["(\w+)"\]|\.(\w+))$/.exec(e);
  if (field) {
    if (!s.message) throw new ChatTemplateError(`"${e}" used outside {% for message in messages %}`);
    const name = field[1] ?? field[2] ?? field[3]!;
    if (name !== 'role' && name !== 'content') throw new ChatTemplateError(`unknown message field "${name}"`);
    return s.message[name];
  }
  switch (e) {
    case 'eos_token': return s.ctx.eosToken ?? '';
    case 'bos_token': return s.ctx.bosToken ?? '';
    case 'add_generation_prompt': return s.ctx.addGenerationPrompt ?? false;
    case 'loop.first': return s.index === 0;
    case 'loop.last': return s.index === s.ctx.messages.length - 1;
    default: throw new ChatTemplateError(`unsupported expression "${e}"`);
  }
}

function truthy(cond: string, s: Scope): boolean {
  const c = cond.trim();
  if (c.startsWith('not ')) return !truthy(c.slice(4), s);
  const cmp = /^(.+?)\s*(==|!=)\s*(.+)$/.exec(c);
  if (cmp) return (value(cmp[1]!, s) === value(cmp[3]!, s)) === (cmp[2] === '==');
  const v = value(c, s);
  return typeof v === 'boolean' ? v : v.length > 0;
}

/** Renders a conversation into segments; adjacent segments with the same flag are merged. */
export function renderChat(template: string, ctx: RenderContext): Segment[] {
  const out: Segment[] = [];
  const emit = (text: string, trained: boolean) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last.trained === trained) last.text += text;
    else out.push({ text, trained });
  };
  const run = (nodes: readonly Node[], s: Scope, trained: boolean): void => {
    for (const n of nodes) {
      if (n.kind === 'text') emit(n.text, trained);
      else if (n.kind === 'expr') emit(String(value(n.expr, s)), trained);
      else if (n.kind === 'generation') run(n.body, s, true);
      else if (n.kind === 'for') ctx.messages.forEach((message, index) => run(n.body, { ctx, message, index }, trained));
      else {
        const branch = n.branches.find((b) => b.cond === null || truthy(b.cond, s));
        if (branch) run(branch.body, s, trained);
      }
    }
  };
  try {
    run(parse(template), { ctx, index: 0 }, false);
  } catch (e) {
    // Templates beyond this subset (Llama 3's {% set %}, filters, …) go to the full Jinja engine.
    if (!(e instanceof ChatTemplateError)) throw e;
    try {
      return renderJinjaSegments(template, ctx.messages, { addGenerationPrompt: ctx.addGenerationPrompt, bosToken: ctx.bosToken, eosToken: ctx.eosToken });
    } catch (jinjaError) {
      throw jinjaError instanceof SyntaxError ? e : jinjaError; // not Jinja either: keep this renderer's message
    }
  }
  return out;
}

export function renderChatText(template: string, ctx: RenderContext): string {
  return renderChat(template, ctx).map((s) => s.text).join('');
}

/** The model directory's chat template (tokenizer_config.json `chat_template`), or the default. */
export function readChatTemplate(dir: string): string {
  const path = join(dir, 'tokenizer_config.json');
  if (!existsSync(path)) return DEFAULT_CHAT_TEMPLATE;
  const config = readJsonFile(path, (message, cause) => new Error(message, { cause })) as Record<string, unknown>;
  return typeof config.chat_template === 'string' ? config.chat_template : DEFAULT_CHAT_TEMPLATE;
}

/** Adds `chat_template` to tokenizer_config.json (keeping its other fields), as HF's save_pretrained does. */
export function writeChatTemplate(dir: string, template: string): void {
  const path = join(dir, 'tokenizer_config.json');
  const config = existsSync(path) ? readJsonFile(path, (message, cause) => new Error(message, { cause })) as Record<string, unknown> : {};
  config.chat_template = template;
  writeFileAtomic(path, JSON.stringify(config, null, 2) + '\n');
}
