/**
 * The inference API: OpenAI-compatible /v1/completions (JSON or server-sent events) and /v1/embeddings,
 * plus /v1/fill-mask, /v1/classify and /v1/attention. Bodies are validated by JSON schema (Fastify/ajv)
 * before they reach a worker; anything the schema cannot express (prompt longer than the context,
 * the wrong kind of model) comes back from the engine as a RequestError → 4xx.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelInfo, ModelKind, ClassifyResult, AttentionMaps } from './engine.ts';
import type { Completion, TextEvent } from '../infer/decode.ts';
import type { FillMaskResult } from '../infer/fill-mask.ts';
import { JobError, type WorkerPool } from './pool.ts';
import type { JobRequest } from './worker.ts';

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
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error') {
    super(message);
  }
}

/** The served model a request names, or the first of the needed kind. */
function pickModel(models: ModelInfo[], name: string | undefined, kinds: ModelKind[], what: string): ModelInfo {
  if (name !== undefined) {
    const m = models.find((x) => x.id === name);
    if (!m) throw new ApiError(404, `model "${name}" is not served here (available: ${models.map((x) => x.id).join(', ') || 'none'})`, 'model_not_found');
    return m;
  }
  const m = models.find((x) => kinds.includes(x.kind));
  if (!m) throw new ApiError(400, `no served model can do ${what}`);
  return m;
}

/** Runs one job with the request's deadline; cancels it if the client goes away. */
async function runJob(pool: WorkerPool, request: FastifyRequest, job: JobRequest, timeoutMs: number, onEvent?: (e: unknown) => void): Promise<unknown> {
  const { id, done } = pool.submit(job, onEvent);
  let timer: NodeJS.Timeout | undefined;
  // The client went away: stop decoding for nobody (a no-op once the job is done).
  const onClose = () => pool.cancel(id);
  request.raw.socket?.once('close', onClose);
  try {
    return await Promise.race([done, new Promise((_, reject) => {
      timer = setTimeout(() => {
        pool.cancel(id);
        reject(new ApiError(504, `request timed out after ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
    })]);
  } finally {
    clearTimeout(timer);
    request.raw.socket?.off('close', onClose);
  }
}

export function registerApiRoutes(app: FastifyInstance, pool: WorkerPool | null, models: ModelInfo[], limits: ApiLimits): void {
  const needPool = (): WorkerPool => {
    if (!pool) throw new ApiError(400, 'no model is served (start with --model DIR)');
    return pool;
  };

  app.get('/v1/models', async () => ({
    object: 'list',
    data: models.map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: 'primer', kind: m.kind, architecture: m.architecture, context_length: m.context, labels: m.labels })),
  }));

  app.post('/v1/completions', { schema: { body: completionSchema(limits) } }, async (request: FastifyRequest<{ Body: CompletionBody }>, reply: FastifyReply) => {
    const body = request.body;
    const m = pickModel(models, body.model, ['gpt2'], 'completions');
    const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
    const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
    const job: JobRequest = {
      type: 'complete', model: m.id,
      job: {
        prompts, maxTokens: body.max_tokens ?? 16, temperature: body.temperature ?? 1, topP: body.top_p, topK: body.top_k,
        repetitionPenalty: body.repetition_penalty, stop, seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
      },
    };
    const id = `cmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (index: number, t: string, finish: string | null) => ({ id, object: 'text_completion', created, model: m.id, choices: [{ text: t, index, logprobs: null, finish_reason: finish }] });
    if (!body.stream) {
      const results = await runJob(needPool(), request, job, limits.timeoutMs) as Completion[];
      return completionResponse(id, created, m.id, results);
    }
    // Headers go out with the first token, so errors found before it (prompt too long) are plain 4xx.
    let open = false;
    const finished = new Set<number>();
    const send = (data: unknown) => {
      if (!open) {
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
        open = true;
      }
      reply.raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    };
    try {
      const results = await runJob(needPool(), request, job, limits.timeoutMs, (e) => {
        const ev = e as TextEvent;
        if (ev.finishReason) finished.add(ev.index);
        send(chunk(ev.index, ev.text, ev.finishReason ?? null));
      }) as Completion[] | null;
      (results ?? []).forEach((r, i) => { if (!finished.has(i)) send(chunk(i, '', r.finishReason)); });
      send('[DONE]');
    } catch (e) {
      if (!open) throw e;
      send({ error: { message: (e as Error).message, type: 'server_error' } });
    }
    reply.raw.end();
    return reply;
  });

  app.post('/v1/fill-mask', {
    schema: { body: { type: 'object', required: ['text'], properties: { model: { type: 'string' }, text: { type: 'string', minLength: 1, maxLength: 20_000 }, top_k: { type: 'integer', minimum: 1, maximum: 100 } } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; text: string; top_k?: number } }>) => {
    const m = pickModel(models, request.body.model, ['bert'], 'fill-mask');
    const masks = await runJob(needPool(), request, { type: 'fill-mask', model: m.id, text: request.body.text, topK: request.body.top_k ?? 5 }, limits.timeoutMs) as FillMaskResult[];
    return { model: m.id, masks };
  });

  app.post('/v1/classify', {
    schema: { body: { type: 'object', required: ['input'], properties: { model: { type: 'string' }, input: textOrList(limits.maxBatch) } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; input: string | string[] } }>) => {
    const m = pickModel(models, request.body.model, ['classifier'], 'classification');
    const texts = typeof request.body.input === 'string' ? [request.body.input] : request.body.input;
    const results = await runJob(needPool(), request, { type: 'classify', model: m.id, texts }, limits.timeoutMs) as ClassifyResult[];
    return { model: m.id, data: results.map((r, index) => ({ index, ...r })) };
  });

  app.post('/v1/embeddings', {
    schema: { body: { type: 'object', required: ['input'], properties: { model: { type: 'string' }, input: textOrList(limits.maxBatch), encoding_format: { enum: ['float', 'base64'] }, user: { type: 'string' } } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; input: string | string[]; encoding_format?: 'float' | 'base64' } }>) => {
    const m = pickModel(models, request.body.model, ['bert', 'gpt2'], 'embeddings');
    const texts = typeof request.body.input === 'string' ? [request.body.input] : request.body.input;
    const { vectors, tokens } = await runJob(needPool(), request, { type: 'embed', model: m.id, texts }, limits.timeoutMs) as { vectors: number[][]; tokens: number };
    const base64 = request.body.encoding_format === 'base64';
    return {
      object: 'list', model: m.id,
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: base64 ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : v })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  app.post('/v1/attention', {
    schema: { body: { type: 'object', required: ['text'], properties: { model: { type: 'string' }, text: { type: 'string', minLength: 1, maxLength: 2000 } } } },
  }, async (request: FastifyRequest<{ Body: { model?: string; text: string } }>) => {
    const m = pickModel(models, request.body.model, ['gpt2'], 'the attention view');
    const maps = await runJob(needPool(), request, { type: 'attention', model: m.id, text: request.body.text }, limits.timeoutMs) as AttentionMaps;
    return { model: m.id, ...maps };
  });
}

function completionResponse(id: string, created: number, model: string, results: Completion[]) {
  const promptTokens = results.reduce((s, r) => s + r.promptTokens, 0);
  const completionTokens = results.reduce((s, r) => s + r.ids.length, 0);
  return {
    id, object: 'text_completion', created, model,
    choices: results.map((r, index) => ({ text: r.text, index, logprobs: null, finish_reason: r.finishReason })),
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}

export { JobError };
