/**
 * `primer serve`: a Fastify HTTP server for one or more model directories, with inference in worker
 * threads, and the web UI (playground + training dashboard) served by the same process.
 *
 * Every error is JSON, OpenAI style: {"error": {"message", "type"}} with a 4xx for anything the client
 * can fix (malformed JSON, schema violations, unknown route or model, prompt over the context, 413 for
 * an oversized body, 429 when the queue is full) and 5xx only for server faults and timeouts.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { availableParallelism } from 'node:os';
import { describeModelDir, type ModelInfo } from './engine.ts';
import { WorkerPool, QueueFullError, JobError } from './pool.ts';
import { ApiError, registerApiRoutes, type ApiLimits } from './routes.ts';
import { registerUiRoutes } from './ui-routes.ts';
import { ModelLoadError } from '../models/load.ts';

export interface ServeOptions {
  /** Model directories (HF layout); the id of each is its directory name. */
  models: string[];
  /** Training run directory followed by the dashboard (metrics.jsonl). */
  runDir?: string;
  workers?: number;
  /** OpenMP threads per worker. */
  threads?: number;
  /** Requests allowed to wait for a worker before answering 429 (default 64). */
  maxQueue?: number;
  /** Request body limit in bytes (default 1 MiB). */
  bodyLimit?: number;
  maxTokens?: number;
  timeoutMs?: number;
  maxBatch?: number;
  logger?: boolean;
}

export interface PrimerServer {
  app: FastifyInstance;
  models: ModelInfo[];
  pool: WorkerPool | null;
  /** Stops accepting connections, lets running requests finish, stops the workers. */
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
  const pool = models.length
    ? await WorkerPool.start(models, { workers: o.workers ?? Math.min(2, availableParallelism()), maxQueue: o.maxQueue ?? 64, threads: o.threads })
    : null;
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: o.bodyLimit ?? 1 << 20, forceCloseConnections: 'idle', return503OnClosing: true,
    // No type coercion: {"prompt": 5} or {"max_tokens": "10"} is a client error, not something to guess at.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });

  app.removeContentTypeParser('text/plain'); // the API speaks JSON only: anything else is a 415
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    const send = (status: number, message: string, type = 'invalid_request_error') => reply.status(status).send({ error: { message, type } });
    if (error instanceof ApiError) return send(error.status, error.message, error.type);
    if (error instanceof QueueFullError) return send(429, error.message, 'rate_limit_exceeded');
    if (error instanceof JobError) return send(error.status, error.message, error.status < 500 ? 'invalid_request_error' : 'server_error');
    const fe = error as FastifyError;
    if (fe.validation) return send(400, `invalid request: ${fe.message}`);
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(415, `unsupported content-type ${JSON.stringify(request.headers['content-type'] ?? '')}; send application/json`);
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return send(fe.statusCode, fe.message);
    reply.log.error(error);
    return send(500, `internal error: ${error.message}`, 'server_error');
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send({ error: { message: `no route ${request.method} ${request.url}`, type: 'not_found' } }));

  app.get('/health', async () => ({
    status: 'ok', models: models.map((m) => m.id), workers: pool?.size ?? 0, busy: pool?.busyWorkers ?? 0, queued: pool?.queued ?? 0, restarts: pool?.restarts ?? 0,
  }));
  registerApiRoutes(app, pool, models, limits);
  registerUiRoutes(app, { runDir: o.runDir, models });
  app.addHook('onClose', async () => { await pool?.close(); });

  return { app, models, pool, close: () => app.close() };
}

/** Starts listening; resolves with the base URL. SIGTERM / SIGINT close gracefully once. */
export async function listen(server: PrimerServer, port: number, host: string, handleSignals = true): Promise<string> {
  const address = await server.app.listen({ port, host });
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
