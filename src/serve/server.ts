/**
 * `primer serve`: a Fastify HTTP server for one or more model directories, with inference in worker
 * threads (continuous batching inside each), and the web UI (playground + training dashboard).
 *
 * Every error is JSON, OpenAI style: {"error": {"message", "type", "param", "code"}} with a 4xx for anything the client
 * can fix (malformed JSON, schema violations, unknown route or model, prompt over the context, 401
 * without the API key, 413 for an oversized body, 429 when the queue is full) and 5xx only for server
 * faults, timeouts and loading (503, as llama.cpp's /health).
 *
 * Limits: a request (headers and body) must arrive within bodyTimeoutMs, idle keep-alive connections
 * close after keepAliveMs, at most maxConnections sockets are open, and a request's generation has a
 * deadline (timeoutMs). A streaming client that disconnects stops its generation.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describeModelDir, type ModelInfo } from './engine.ts';
import { WorkerPool, QueueFullError, JobError } from './pool.ts';
import { ApiError, errorBody, registerApiRoutes, type ApiContext, type ApiLimits } from './routes.ts';
import { registerChatRoutes } from './routes-chat.ts';
import { registerUiRoutes } from './ui-routes.ts';
import { createMetrics } from './metrics.ts';
import { decodedPath, installSecurity, type SecurityOptions } from './security.ts';
import { ModelLoadError } from '../models/load.ts';

export interface ServeOptions extends SecurityOptions {
  /** Model directories (HF layout); the id of each is its directory name. */
  models: string[];
  /** Training run directory followed by the dashboard (metrics.jsonl); defaults to a served model directory that has one. */
  runDir?: string;
  /** Worker threads, each with its own copy of the models and its own decode batch. Default 1. */
  workers?: number;
  /** Jobs per worker decoded together (continuous-batching slots). Default 8. */
  parallel?: number;
  /** OpenMP threads per worker. */
  threads?: number;
  /** Requests allowed to wait for a slot before answering 429 (default 64). */
  maxQueue?: number;
  /** Request body limit in bytes (default 1 MiB). */
  bodyLimit?: number;
  maxTokens?: number;
  /** Per-request deadline (queue wait and generation), ms. Default 60 s. */
  timeoutMs?: number;
  maxBatch?: number;
  /** Time to receive a whole request, headers and body, ms. Default 10 s. */
  bodyTimeoutMs?: number;
  /** Idle keep-alive connections close after this, ms. Default 5 s. */
  keepAliveMs?: number;
  /** Open connections at most (more are refused). Default 512. */
  maxConnections?: number;
  /** On close, running requests get this long to finish before their streams are cut, ms. Default 10 s. */
  graceMs?: number;
  /** Return before the workers have loaded the models (/health answers 503 meanwhile); await `ready`. */
  deferModels?: boolean;
  logger?: boolean;
}

export interface PrimerServer {
  app: FastifyInstance;
  models: ModelInfo[];
  /** The worker pool once the models are loaded (null before, and when no model is served). */
  readonly pool: WorkerPool | null;
  /** Starts the workers (once; createServer already did unless deferModels) and resolves when the models are loaded. */
  load(): Promise<void>;
  /** Stops accepting connections, lets running requests finish within the grace period, stops the workers. */
  close(): Promise<void>;
}

export async function createServer(o: ServeOptions): Promise<PrimerServer> {
  const models = o.models.map((dir) => describeModelDir(dir));
  const ids = new Set<string>();
  for (const m of models) {
    if (ids.has(m.id)) throw new ModelLoadError(`two served models are both named "${m.id}" (model ids are directory names)`);
    ids.add(m.id);
  }
  const limits: ApiLimits = { maxTokens: o.maxTokens ?? 512, timeoutMs: o.timeoutMs ?? 60_000, maxBatch: o.maxBatch ?? 16 };
  const graceMs = o.graceMs ?? 10_000;
  let pool: WorkerPool | null = null;
  let loading = models.length > 0;
  const bodyTimeout = o.bodyTimeoutMs ?? 10_000;
  const app = Fastify({
    logger: o.logger ?? false, bodyLimit: o.bodyLimit ?? 1 << 20, forceCloseConnections: 'idle', return503OnClosing: true,
    requestTimeout: bodyTimeout, keepAliveTimeout: o.keepAliveMs ?? 5_000, connectionTimeout: 0,
    // Node checks request deadlines on this interval (default 30 s): check often so slow bodies are cut near the limit.
    http: { headersTimeout: bodyTimeout, connectionsCheckingInterval: Math.min(1000, bodyTimeout) },
    // No type coercion: {"prompt": 5} or {"max_tokens": "10"} is a client error, not something to guess at.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  });
  app.server.maxConnections = o.maxConnections ?? 512;
  const metrics = createMetrics(() => ({ queued: pool?.queued ?? 0, batch: pool?.sequences ?? 0, loading }));

  app.removeContentTypeParser('text/plain'); // the API speaks JSON only: anything else is a 415
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    const send = (status: number, message: string, type = 'invalid_request_error', param: string | null = null, code: string | null = null) => reply.status(status).send(errorBody(message, type, param, code));
    if (error instanceof ApiError) return send(error.status, error.message, error.type, error.param, error.code);
    if (error instanceof QueueFullError) return send(429, error.message, 'rate_limit_exceeded');
    if (error instanceof JobError) return send(error.status, error.message, error.status < 500 ? 'invalid_request_error' : 'server_error');
    const fe = error as FastifyError;
    if (fe.validation) return validationError(fe, send);
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(415, `unsupported content-type ${JSON.stringify(request.headers['content-type'] ?? '')}; send application/json`);
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return send(fe.statusCode, fe.message);
    reply.log.error(error);
    return send(500, `internal error: ${error.message}`, 'server_error');
  });
  app.setNotFoundHandler((request, reply) => {
    // A route that exists for another method (GET /v1/completions) is a 405 naming the methods it takes.
    const url = decodedPath(request.url);
    const allowed = ['GET', 'POST'].filter((method) => method !== request.method && app.hasRoute({ method: method as 'GET' | 'POST', url }));
    if (allowed.length) {
      return reply.status(405).header('allow', allowed.join(', ')).send(errorBody(`${request.method} is not allowed on ${url}; use ${allowed.join(' or ')}`, 'method_not_allowed'));
    }
    return reply.status(404).send(errorBody(`no route ${request.method} ${request.url}`, 'not_found'));
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.duration.observe({ route }, reply.elapsedTime / 1000);
  });

  installSecurity(app, o);

  // llama.cpp semantics: 503 while the models load, 200 once requests can be served.
  app.get('/health', async (_request, reply) => {
    const state = { models: models.map((m) => m.id), workers: pool?.size ?? 0, busy: pool?.busyWorkers ?? 0, sequences: pool?.sequences ?? 0, queued: pool?.queued ?? 0, restarts: pool?.restarts ?? 0 };
    if (loading) return reply.status(503).send({ status: 'loading', ...errorBody('Loading model', 'unavailable_error'), ...state });
    return { status: 'ok', ...state };
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  const ctx: ApiContext = { pool: () => pool, models, limits, metrics };
  registerApiRoutes(app, ctx);
  registerChatRoutes(app, ctx);
  // A served model directory that is a training run (metrics.jsonl) is what the dashboard follows by default.
  registerUiRoutes(app, { runDir: o.runDir ?? models.find((m) => existsSync(join(m.dir, 'metrics.jsonl')))?.dir, models });
  app.addHook('onClose', async () => { await pool?.close(graceMs); });

  let ready: Promise<void> | null = null;
  const load = () => (ready ??= !loading ? Promise.resolve() : WorkerPool.start(models, {
    // One worker by default: its requests share one decode batch (more workers split the batch and the cores).
    workers: o.workers ?? 1, parallel: o.parallel, maxQueue: o.maxQueue ?? 64, threads: o.threads,
  }).then((p) => { pool = p; loading = false; }));
  if (!o.deferModels) await load();

  let closing: Promise<void> | null = null;
  const close = () => (closing ??= (async () => {
    // Stop accepting at once; the pool gives running jobs the grace period, then cuts them, which
    // ends their streams, so the HTTP close below is not held open by long generations.
    const app_ = app.close();
    // A connection that never sends a request is neither idle (Fastify's forceCloseConnections) nor
    // running, and would hold the close open forever: past the grace period every socket is cut.
    const cut = setTimeout(() => app.server.closeAllConnections(), graceMs + 100);
    await (ready ?? Promise.resolve()).catch(() => undefined);
    await Promise.all([app_, pool?.close(graceMs)]).finally(() => clearTimeout(cut));
  })());
  return { app, models, get pool() { return pool; }, load, close };
}

interface SchemaError { instancePath: string; keyword: string; message?: string; params: { allowedValues?: unknown[]; missingProperty?: string } }

/**
 * A schema violation as OpenAI reports one: `param` names the field (messages[0].role), and the message
 * lists the accepted values of an enum rather than ajv's bare "one of the allowed values".
 */
function validationError(fe: FastifyError, send: (status: number, message: string, type?: string, param?: string | null) => unknown): unknown {
  const errors = (fe.validation ?? []) as SchemaError[];
  const context = fe.validationContext ?? 'body';
  const describe = (e: SchemaError) => `${context}${e.instancePath} ${e.keyword === 'enum' && e.params.allowedValues
    ? `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}` : e.message}`;
  const first = errors[0];
  const segments = first ? [...first.instancePath.split('/').slice(1), ...(first.params.missingProperty ? [first.params.missingProperty] : [])] : [];
  const param = segments.reduce((p, seg) => (/^\d+$/.test(seg) ? `${p}[${seg}]` : p ? `${p}.${seg}` : seg), '') || null;
  return send(400, `invalid request: ${errors.length ? errors.map(describe).join(', ') : fe.message}`, 'invalid_request_error', param);
}

/** Starts listening; resolves with the base URL. SIGTERM / SIGINT close gracefully once (exit 0). */
export async function listen(server: PrimerServer, port: number, host: string, handleSignals = true): Promise<string> {
  await server.app.listen({ port, host });
  // The address actually bound (Fastify's own pick prefers loopback even when every interface listens).
  const a = server.app.server.address() as AddressInfo;
  const address = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  if (handleSignals) {
    const stop = (signal: string) => {
      process.stderr.write(`primer serve: ${signal}, finishing running requests…\n`);
      server.close().then(() => process.exit(0), (e) => { process.stderr.write(`${(e as Error).message}\n`); process.exit(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }
  return address;
}
