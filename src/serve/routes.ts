/**
 * The inference API: OpenAI-compatible /v1/completions (JSON or server-sent events) and /v1/embeddings,
 * plus /v1/fill-mask, /v1/classify and /v1/attention (chat is in routes-chat.ts). Bodies are validated
 * by JSON schema (Fastify/ajv) before they reach a worker; anything the schema cannot express (prompt
 * longer than the context, the wrong kind of model) comes back from the engine as a RequestError → 4xx.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CAUSAL_KINDS, type ModelInfo, type ModelKind, type ClassifyResult, type AttentionMaps, type CompletionJob } from './engine.ts';
import type { Completion, TextEvent } from '../infer/decode.ts';
import type { FillMaskResult } from '../infer/fill-mask.ts';
import { JobError, type WorkerPool } from './pool.ts';
import type { JobRequest } from './worker.ts';
import type { CancelledJob } from './scheduler.ts';
import type { ServeMetrics } from './metrics.ts';

export interface ApiLimits {
  /** Largest max_tokens accepted. */
  maxTokens: number;
  /** Per-request deadline in ms (queue wait included). */
  timeoutMs: number;
  /** Prompts (or inputs) per request. */
  maxBatch: number;
}

const text = { type: 'string', maxLength: 100_000 } as const;
const textOrList = (max: number) => ({ anyOf: [text, { type: 'array', items: text, minItems: 1, maxItems: max }] });

export const streamOptionsSchema = { type: 'object', properties: { include_usage: { type: 'boolean' } } } as const;

/**
 * OpenAI options this server does not implement: a clear 400 instead of a response that silently
 * lacks what was asked for (no log-probabilities, no JSON mode).
 */
export function refuseUnsupported(body: { logprobs?: unknown; top_logprobs?: unknown; response_format?: unknown }): void {
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false && body.logprobs !== 0) {
    throw new ApiError(400, 'logprobs are not supported by this server');
  }
  if (typeof body.top_logprobs === 'number' && body.top_logprobs > 0) throw new ApiError(400, 'top_logprobs are not supported by this server');
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (format != null && format.type !== 'text') throw new ApiError(400, `response_format ${JSON.stringify(format.type ?? format)} is not supported (only "text")`);
}

/** The usage block of a response: prompt tokens counted once per prompt, completion tokens over all choices. */
export function usageOf(results: Completion[], promptTokens = results.reduce((s, r) => s + r.promptTokens, 0)) {
  const completionTokens = results.reduce((s, r) => s + r.ids.length, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

function completionSchema(l: ApiLimits) {
  return {
    type: 'object',
    required: ['prompt'],
    properties: {
      model: { type: 'string' },
      prompt: textOrList(l.maxBatch),
      max_tokens: { type: 'integer', minimum: 0, maximum: l.maxTokens },
      temperature: { type: 'number', minimum: 0, maximum: 2 },
      top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      top_k: { type: 'integer', minimum: 0 },
      repetition_penalty: { type: 'number', exclusiveMinimum: 0, maximum: 10 },
      stop: { anyOf: [{ type: 'string', maxLength: 200 }, { type: 'array', items: { type: 'string', maxLength: 200 }, maxItems: 4 }, { type: 'null' }] },
      seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
      stream: { type: 'boolean' },
      stream_options: streamOptionsSchema,
      n: { type: 'integer', minimum: 1, maximum: 1 },
      echo: { type: 'boolean', const: false },
    },
  } as const;
}

interface CompletionBody {
  model?: string;
  prompt: string | string[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  repetition_penalty?: number;
  stop?: string | string[] | null;
  seed?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  logprobs?: unknown;
  response_format?: unknown;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error', readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

/**
 * OpenAI's error body: clients (the openai package's APIError.param / .code) read all four fields,
 * so `param` and `code` are always present, null when they do not apply.
 */
export function errorBody(message: string, type = 'invalid_request_error', param: string | null = null, code: string | null = null) {
  return { error: { message, type, param, code } };
}

/** The served model a request names, or the first of the needed kind. */
export function pickModel(models: ModelInfo[], name: string | undefined, kinds: readonly ModelKind[], what: string): ModelInfo {
  if (name !== undefined) {
    const m = models.find((x) => x.id === name);
    if (!m) throw modelNotFound(models, name);
    return m;
  }
  const m = models.find((x) => kinds.includes(x.kind));
  if (!m) throw new ApiError(400, `no served model can do ${what}`);
  return m;
}

/** OpenAI's answer for an unknown model: an invalid request whose code, not type, says model_not_found. */
function modelNotFound(models: ModelInfo[], name: string): ApiError {
  return new ApiError(404, `model "${name}" is not served here (available: ${models.map((x) => x.id).join(', ') || 'none'})`, 'invalid_request_error', 'model', 'model_not_found');
}

/** What the routes share: the pool (null while the models load), the served models, limits, metrics. */
export interface ApiContext {
  pool: () => WorkerPool | null;
  models: ModelInfo[];
  limits: ApiLimits;
  metrics: ServeMetrics;
}

export function needPool(ctx: ApiContext): WorkerPool {
  if (ctx.models.length === 0) throw new ApiError(400, 'no model is served (start with --model DIR)');
  const pool = ctx.pool();
  if (!pool) throw new ApiError(503, 'the models are still loading; retry shortly', 'unavailable_error');
  return pool;
}

/**
 * Runs one job with the request's deadline (queue wait included); cancels it when the client goes
 * away (request or response closed), so nobody's tokens are decoded for nobody. A job past its
 * deadline answers 504 at once; its worker's late answer (what it decoded until the cancel) goes to
 * `onLate`.
 */
export async function runJob(pool: WorkerPool, request: FastifyRequest, reply: FastifyReply, job: JobRequest, timeoutMs: number, onEvent?: (e: unknown) => void, onLate?: (result: unknown) => void): Promise<unknown> {
  const { id, done } = pool.submit(job, onEvent);
  let timer: NodeJS.Timeout | undefined;
  const onClose = () => pool.cancel(id); // a no-op once the job is done
  request.raw.socket?.once('close', onClose);
  reply.raw.once('close', onClose);
  try {
    return await Promise.race([done, new Promise((_, reject) => {
      timer = setTimeout(() => {
        pool.cancel(id);
        done.then(onLate, () => undefined);
        reject(new ApiError(504, `request timed out after ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
    })]);
  } finally {
    clearTimeout(timer);
    request.raw.socket?.off('close', onClose);
    reply.raw.off('close', onClose);
  }
}

/** How a generation route shapes its stream chunks and its final JSON (completions vs chat). */
export interface GenerationFormat {
  chunk(index: number, text: string, finish: string | null, first: boolean): unknown;
  final(results: Completion[]): unknown;
  /** The last chunk before [DONE] when the client asked for stream_options.include_usage. */
  usageChunk?(results: Completion[]): unknown;
}

/**
 * Runs a completion job as JSON or server-sent events and records its metrics (time to first token,
 * time per output token, tokens). Stream headers go out with the first piece, so errors found
 * before it (prompt too long) are plain 4xx; later errors end the stream with an error event.
 */
export async function runGeneration(ctx: ApiContext, request: FastifyRequest, reply: FastifyReply, model: string, job: CompletionJob, stream: boolean, format: GenerationFormat): Promise<unknown> {
  const t0 = performance.now();
  let first = 0;
  const seen = new Set<number>();
  const finished = new Set<number>();
  // A cancelled or timed-out job's tokens were decoded all the same: they count too.
  const account = (results: Completion[]) => {
    const tokens = results.reduce((s, r) => s + r.ids.length, 0);
    ctx.metrics.tokens.inc({ model }, tokens);
    ctx.metrics.promptTokens.inc({ model }, results.reduce((s, r) => s + r.promptTokens, 0));
    if (first && tokens > 1) ctx.metrics.perToken.observe({ model }, (performance.now() - first) / 1000 / (tokens - 1));
  };
  const onFirst = () => {
    if (first) return;
    first = performance.now();
    ctx.metrics.ttft.observe({ model }, (first - t0) / 1000);
  };
  // A client that leaves mid-generation gets no response, so no onResponse hook counts it: it is
  // counted here as 499 (nginx's "client closed request").
  const cancelled = () => ctx.metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: '499' });
  const late = (r: unknown) => account(completionsOf(r as Completion[] | CancelledJob));
  const submit = { type: 'complete', model, job } as const;
  if (!stream) {
    const outcome = await runJob(needPool(ctx), request, reply, submit, ctx.limits.timeoutMs, onFirst, late) as Completion[] | CancelledJob;
    account(completionsOf(outcome));
    if (!Array.isArray(outcome)) {
      cancelled();
      throw new ApiError(499, 'the request was cancelled', 'cancelled');
    }
    return format.final(outcome);
  }
  let open = false;
  const send = (data: unknown) => {
    if (!open) {
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', ...corsHeaders(reply) });
      open = true;
    }
    if (!reply.raw.destroyed) reply.raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  };
  try {
    const outcome = await runJob(needPool(ctx), request, reply, submit, ctx.limits.timeoutMs, (e) => {
      const ev = e as TextEvent;
      onFirst();
      if (ev.finishReason) finished.add(ev.index);
      send(format.chunk(ev.index, ev.text, ev.finishReason ?? null, !seen.has(ev.index)));
      seen.add(ev.index);
    }, late) as Completion[] | CancelledJob;
    account(completionsOf(outcome));
    const results = Array.isArray(outcome) ? outcome : null;
    if (!results) cancelled();
    (results ?? []).forEach((r, i) => { if (!finished.has(i)) send(format.chunk(i, '', r.finishReason, !seen.has(i))); });
    if (results && format.usageChunk) send(format.usageChunk(results));
    send('[DONE]');
  } catch (e) {
    if (!open) throw e;
    send(errorBody((e as Error).message, e instanceof JobError && e.status < 500 ? 'invalid_request_error' : 'server_error'));
  }
  reply.raw.end();
  return reply;
}

function completionsOf(outcome: Completion[] | CancelledJob): Completion[] {
  return Array.isArray(outcome) ? outcome : outcome.cancelled;
}

/** CORS headers set on the reply by the server's hook, copied onto a hijacked stream's head. */
function corsHeaders(reply: FastifyReply): Record<string, string> {
  const origin = reply.getHeader('access-control-allow-origin');
  return typeof origin === 'string' ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {};
}

export function registerApiRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { models, limits } = ctx;
  const run = (request: FastifyRequest, reply: FastifyReply, job: JobRequest) => runJob(needPool(ctx), request, reply, job, limits.timeoutMs);

  const modelObject = (m: ModelInfo) => ({
    id: m.id, object: 'model', created: 0, owned_by: 'primer', kind: m.kind, architecture: m.architecture, context_length: m.context, labels: m.labels,
    chat_template: m.chatTemplate !== undefined,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: models.map(modelObject) }));
  // OpenAI's "retrieve model" (the openai client's models.retrieve(id)).
  app.get('/v1/models/:model', async (request: FastifyRequest<{ Params: { model: string } }>) => {
    const m = models.find((x) => x.id === request.params.model);
    if (!m) throw modelNotFound(models, request.params.model);
    return modelObject(m);
  });

  app.post('/v1/completions', { schema: { body: completionSchema(limits) } }, async (request: FastifyRequest<{ Body: CompletionBody }>, reply: FastifyReply) => {
    const body = request.body;
    refuseUnsupported(body);
    const m = pickModel(models, body.model, CAUSAL_KINDS, 'completions');
    const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
    const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const job: CompletionJob = {
      prompts, maxTokens: body.max_tokens ?? 16, temperature: body.temperature ?? 1, topP: body.top_p, topK: body.top_k,
      repetitionPenalty: body.repetition_penalty, stop, seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
    };
    const id = `cmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    return runGeneration(ctx, request, reply, m.id, job, body.stream === true, {
      chunk: (index, text, finish) => ({ id, object: 'text_completion', created, model: m.id, choices: [{ text, index, logprobs: null, finish_reason: finish }] }),
      final: (results) => completionResponse(id, created, m.id, results),
      usageChunk: body.stream_options?.include_usage ? (results) => ({ id, object: 'text_completion', created, model: m.id, choices: [], usage: usageOf(results) }) : undefined,
    });
  });

  app.post('/v1/fill-mask', {
    schema: { body: { type: 'object', required: ['text'], properties: { model: { type: 'string' }, text: { type: 'string', minLength: 1, maxLength: 20_000 }, top_k: { type: 'integer', minimum: 1, maximum: 100 } } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; text: string; top_k?: number } }>, reply) => {
    const m = pickModel(models, request.body.model, ['bert'], 'fill-mask');
    const masks = await run(request, reply, { type: 'fill-mask', model: m.id, text: request.body.text, topK: request.body.top_k ?? 5 }) as FillMaskResult[];
    return { model: m.id, masks };
  });

  app.post('/v1/classify', {
    schema: { body: { type: 'object', required: ['input'], properties: { model: { type: 'string' }, input: textOrList(limits.maxBatch) } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; input: string | string[] } }>, reply) => {
    const m = pickModel(models, request.body.model, ['classifier'], 'classification');
    const texts = typeof request.body.input === 'string' ? [request.body.input] : request.body.input;
    const results = await run(request, reply, { type: 'classify', model: m.id, texts }) as ClassifyResult[];
    return { model: m.id, data: results.map((r, index) => ({ index, ...r })) };
  });

  app.post('/v1/embeddings', {
    schema: { body: { type: 'object', required: ['input'], properties: { model: { type: 'string' }, input: textOrList(limits.maxBatch), encoding_format: { enum: ['float', 'base64'] }, user: { type: 'string' } } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; input: string | string[]; encoding_format?: 'float' | 'base64' } }>, reply) => {
    const m = pickModel(models, request.body.model, ['bert', ...CAUSAL_KINDS], 'embeddings');
    const texts = typeof request.body.input === 'string' ? [request.body.input] : request.body.input;
    const { vectors, tokens } = await run(request, reply, { type: 'embed', model: m.id, texts }) as { vectors: number[][]; tokens: number };
    const base64 = request.body.encoding_format === 'base64';
    return {
      object: 'list', model: m.id,
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: base64 ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : v })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  app.post('/v1/attention', {
    schema: { body: { type: 'object', required: ['text'], properties: { model: { type: 'string' }, text: { type: 'string', minLength: 1, maxLength: 2000 } } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; text: string } }>, reply) => {
    const m = pickModel(models, request.body.model, ['gpt2'], 'the attention view');
    const maps = await run(request, reply, { type: 'attention', model: m.id, text: request.body.text }) as AttentionMaps;
    return { model: m.id, ...maps };
  });
}

function completionResponse(id: string, created: number, model: string, results: Completion[]) {
  return {
    id, object: 'text_completion', created, model,
    choices: results.map((r, index) => ({ text: r.text, index, logprobs: null, finish_reason: r.finishReason })),
    usage: usageOf(results),
  };
}

export { JobError };
