/**
 * POST /v1/chat/completions, OpenAI style (JSON or server-sent events): the messages are rendered with
 * the model's chat template (tokenizer_config.json `chat_template` or chat_template.jinja, else Primer's
 * default) with the generation prompt added and the tokenizer's bos/eos tokens (Llama 3 and Qwen2
 * templates are Jinja: they go to @huggingface/jinja), and the reply is decoded like a completion
 * (continuous batching, per-request sampling, stop strings, seed, n choices) by a GPT-2 or a Llama-family model.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_CHAT_TEMPLATE, ChatTemplateError, renderChatText, type ChatMessage } from '../adapt/chat-template.ts';
import { CAUSAL_KINDS, type CompletionJob } from './engine.ts';
import { ApiError, pickModel, refuseUnsupported, runGeneration, streamOptionsSchema, usageOf, type ApiContext } from './routes.ts';

/** OpenAI content parts: only text parts are something a text model can read. */
type ContentPart = { type: string; text?: string };
interface RequestMessage {
  role: ChatMessage['role'] | 'developer';
  content: string | ContentPart[];
}

interface ChatBody {
  model?: string;
  messages: RequestMessage[];
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[] | null;
  seed?: number;
  n?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  logprobs?: unknown;
  top_logprobs?: unknown;
  response_format?: unknown;
}

function chatSchema(ctx: ApiContext) {
  const maxTokens = { type: 'integer', minimum: 0, maximum: ctx.limits.maxTokens } as const;
  return {
    type: 'object',
    required: ['messages'],
    properties: {
      model: { type: 'string' },
      messages: {
        type: 'array', minItems: 1, maxItems: 256,
        items: {
          type: 'object', required: ['role', 'content'],
          properties: {
            role: { enum: ['system', 'developer', 'user', 'assistant'] },
            content: {
              anyOf: [
                { type: 'string', maxLength: 100_000 },
                { type: 'array', maxItems: 64, items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, text: { type: 'string', maxLength: 100_000 } } } },
              ],
            },
            name: { type: 'string' },
          },
        },
      },
      max_tokens: maxTokens,
      max_completion_tokens: maxTokens,
      temperature: { type: 'number', minimum: 0, maximum: 2 },
      top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      stop: { anyOf: [{ type: 'string', maxLength: 200 }, { type: 'array', items: { type: 'string', maxLength: 200 }, maxItems: 4 }, { type: 'null' }] },
      seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
      n: { type: 'integer', minimum: 1, maximum: 8 },
      stream: { type: 'boolean' },
      stream_options: streamOptionsSchema,
      user: { type: 'string' },
    },
  } as const;
}

/**
 * A request message as the template sees it. OpenAI's "developer" role is its newer name for the
 * system role (templates know only "system"); text parts are joined with newlines, as vLLM does, and
 * any other part (image_url, input_audio, …) is refused by name rather than silently dropped.
 */
function templateMessage({ role, content }: RequestMessage, i: number): ChatMessage {
  const text = typeof content === 'string' ? content : content.map((part, j) => {
    if (part.type !== 'text') throw new ApiError(400, `messages[${i}].content[${j}] is a "${part.type}" part; this server reads only "text" parts`, 'invalid_request_error', `messages[${i}].content[${j}].type`);
    if (typeof part.text !== 'string') throw new ApiError(400, `messages[${i}].content[${j}] is a "text" part without a "text" string`, 'invalid_request_error', `messages[${i}].content[${j}].text`);
    return part.text;
  }).join('\n');
  return { role: role === 'developer' ? 'system' : role, content: text };
}

export function registerChatRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/chat/completions', { schema: { body: chatSchema(ctx) } }, async (request: FastifyRequest<{ Body: ChatBody }>, reply: FastifyReply) => {
    const body = request.body;
    refuseUnsupported(body);
    const m = pickModel(ctx.models, body.model, CAUSAL_KINDS, 'chat completions');
    if (!CAUSAL_KINDS.includes(m.kind)) throw new ApiError(400, `model "${m.id}" is a ${m.architecture}; chat needs a GPT-2 or Llama-family language model`);
    const template = m.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
    let prompt: string;
    try {
      prompt = renderChatText(template, {
        messages: body.messages.map(templateMessage), addGenerationPrompt: true,
        eosToken: m.eosToken ?? '<|endoftext|>', bosToken: m.bosToken ?? '',
      });
    } catch (e) {
      // The template refusing this conversation (raise_exception: "roles must alternate", …) is the client's to fix.
      if (e instanceof ChatTemplateError || (e instanceof Error && e.message.startsWith('chat template: ') && !/needs the package/.test(e.message))) {
        throw new ApiError(400, e.message);
      }
      throw e;
    }
    const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
    // The default template's turns start with these: a model that does not stop by itself stops here.
    if (template === DEFAULT_CHAT_TEMPLATE) stop.push('\nUser:', '\nSystem:');
    const job: CompletionJob = {
      prompts: [prompt], n: body.n ?? 1, maxTokens: body.max_completion_tokens ?? body.max_tokens ?? 128, temperature: body.temperature ?? 1,
      topP: body.top_p, stop, seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
    };
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    return runGeneration(ctx, request, reply, m.id, job, body.stream === true, {
      chunk: (index, text, finish, first) => ({
        id, object: 'chat.completion.chunk', created, model: m.id,
        choices: [{ index, delta: first ? { role: 'assistant', content: text } : text ? { content: text } : {}, logprobs: null, finish_reason: finish }],
      }),
      // n choices share one prompt: its tokens count once.
      final: (results) => ({
        id, object: 'chat.completion', created, model: m.id,
        choices: results.map((r, index) => ({ index, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason })),
        usage: usageOf(results, results[0]?.promptTokens ?? 0),
      }),
      usageChunk: body.stream_options?.include_usage
        ? (results) => ({ id, object: 'chat.completion.chunk', created, model: m.id, choices: [], usage: usageOf(results, results[0]?.promptTokens ?? 0) })
        : undefined,
    });
  });
}
