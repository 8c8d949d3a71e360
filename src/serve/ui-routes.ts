/**
 * The web UI's routes: static files from src/serve/ui, uPlot served from node_modules (no CDN, no
 * bundler step), and GET /v1/run/metrics, which the dashboard polls to follow a run's metrics.jsonl
 * (incrementally: the client sends back the byte offset it has read up to).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ModelInfo } from './engine.ts';
import { ApiError } from './routes.ts';

const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), 'ui');
const UI_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

function uplotFile(name: 'uPlot.iife.min.js' | 'uPlot.min.css'): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('uplot/package.json')), 'dist', name);
}

/** Complete lines of a JSONL file from byte `offset`; a partly written last line waits for the next poll. */
export function readJsonlFrom(path: string, offset: number, maxBytes = 4 << 20): { records: unknown[]; offset: number; size: number } {
  if (!existsSync(path)) return { records: [], offset: 0, size: 0 };
  const size = statSync(path).size;
  if (offset > size) offset = 0; // the file was replaced (a new run)
  const length = Math.min(size - offset, maxBytes);
  if (length <= 0) return { records: [], offset, size };
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  const end = buf.lastIndexOf(0x0a);
  if (end < 0) {
    // A finished line longer than maxBytes would stop the dashboard at this offset forever: skip it.
    if (length === maxBytes && offset + length < size) return { records: [], offset: nextLineStart(path, offset + length, size), size };
    return { records: [], offset, size };
  }
  const records: unknown[] = [];
  for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      // A corrupt line (e.g. a crash mid-write) is skipped, not fatal for the dashboard.
    }
  }
  return { records, offset: offset + end + 1, size };
}

/** The offset after the first newline at or after `from` (size when none yet: the line is still being written). */
function nextLineStart(path: string, from: number, size: number): number {
  const chunk = Buffer.alloc(1 << 16);
  const fd = openSync(path, 'r');
  try {
    for (let at = from; at < size; at += chunk.length) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
      const i = chunk.subarray(0, n).indexOf(0x0a);
      if (i >= 0) return at + i + 1;
    }
  } finally {
    closeSync(fd);
  }
  return from;
}

export function registerUiRoutes(app: FastifyInstance, o: { runDir?: string; models: ModelInfo[] }): void {
  const cache = new Map<string, string>();
  const file = (path: string) => {
    // Re-read in development would be nicer, but caching keeps the load test off the disk.
    let s = cache.get(path);
    if (s === undefined) cache.set(path, (s = readFileSync(path, 'utf8')));
    return s;
  };
  app.get('/', async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/', async (_req, reply) => reply.type(UI_FILES['index.html']!).send(file(join(UI_DIR, 'index.html'))));
  app.get('/ui/:name', async (request: FastifyRequest<{ Params: { name: string } }>, reply) => {
    const type = UI_FILES[request.params.name];
    if (!type) throw new ApiError(404, `no UI file ${request.params.name}`, 'not_found');
    return reply.type(type).send(file(join(UI_DIR, request.params.name)));
  });
  app.get('/ui/vendor/uplot.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(file(uplotFile('uPlot.iife.min.js'))));
  app.get('/ui/vendor/uplot.css', async (_req, reply) => reply.type('text/css; charset=utf-8').send(file(uplotFile('uPlot.min.css'))));

  app.get('/v1/run/metrics', {
    schema: { querystring: { type: 'object', properties: { offset: { type: 'string', pattern: '^[0-9]{1,15}$' } } } },
  }, async (request: FastifyRequest<{ Querystring: { offset?: string } }>) => {
    if (!o.runDir) throw new ApiError(404, 'no run directory is followed (start with `primer dashboard --run DIR` or `serve --run DIR`)', 'not_found');
    const runDir = resolve(o.runDir);
    const got = readJsonlFrom(join(runDir, 'metrics.jsonl'), Number(request.query.offset ?? 0));
    return { run: runDir, ...got };
  });
}
