/** `primer serve` (HTTP API + web UI) and `primer dashboard` (follow a training run in the browser). */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { createServer, listen, type ServeOptions } from '../serve/server.ts';
import { isLoopback } from '../serve/security.ts';
import { PrimerError } from '../io/errors.ts';
import { action, intArg } from './options.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface CommonFlags {
  model?: string[];
  port: string;
  host: string;
  workers?: number;
  parallel: number;
  threads?: number;
  queue: number;
  maxTokens: number;
  timeout: number;
  bodyLimit: number;
  bodyTimeout: number;
  keepAlive: number;
  maxConnections: number;
  grace: number;
  apiKey?: string;
  cors?: string;
  allowHost?: string[];
  run?: string;
}

function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--port <n>', 'TCP port 0-65535 (0 = any free port)', '8080')
    .option('--host <addr>', 'interface to listen on (beyond loopback, set an API key)', '127.0.0.1')
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 and /metrics (default: $PRIMER_API_KEY)')
    .option('--cors <origin>', 'allow browsers on this origin (or *) to call the API (default: no CORS)')
    .option('--allow-host <name>', 'another Host name the web UI may be reached by (DNS-rebinding guard); repeatable', collect)
    .option('--workers <n>', 'inference worker threads, each with its own decode batch (default 1)', intArg(1))
    .option('--parallel <n>', 'requests decoded together per worker (continuous-batching slots)', intArg(1), 8)
    .option('--threads <n>', 'kernel (OpenMP) threads per worker (default: all cores)', intArg(1))
    .option('--queue <n>', 'requests that may wait for a slot before answering 429', intArg(0), 64)
    .option('--max-tokens <n>', 'largest max_tokens a request may ask for', intArg(1), 512)
    .option('--timeout <s>', 'per-request deadline in seconds (queue wait and generation)', intArg(1), 60)
    .option('--body-timeout <s>', 'seconds a client has to send a whole request (headers and body)', intArg(1), 10)
    .option('--keep-alive <s>', 'idle keep-alive connections close after this many seconds', intArg(1), 5)
    .option('--max-connections <n>', 'open connections at most', intArg(1), 512)
    .option('--grace <s>', 'on SIGTERM, seconds running requests get before their streams are cut', intArg(0), 10)
    .option('--body-limit <bytes>', 'largest request body', intArg(1024), 1 << 20);
}

/** --port and --host checked before any model loads: a bad value is one line and exit 1. */
async function checkAddress(port: string, host: string): Promise<number> {
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new PrimerError('BAD_PORT', `--port ${port}: expected a port number from 0 to 65535`);
  if (isIP(host) === 0) {
    try {
      await lookup(host);
    } catch (e) {
      throw new PrimerError('BAD_HOST', `--host ${host}: not an IP address or a name this machine resolves (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  return Number(port);
}

/** A listen failure as one line (no stack): the address, and what the system said. */
function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  const why: Record<string, string> = {
    EADDRINUSE: 'the address is already in use (another server on this port?)',
    EACCES: 'permission denied (ports below 1024 need privileges)',
    EADDRNOTAVAIL: 'this machine has no such address',
    ENOTFOUND: 'the host name does not resolve',
  };
  return new PrimerError('LISTEN', `cannot listen on ${host}:${port}: ${why[e.code ?? ''] ?? e.message}`);
}

async function start(o: CommonFlags, what: string, path: string): Promise<void> {
  // Token-by-token decoding is many tiny parallel regions with idle gaps between requests: sleeping
  // OpenMP waits keep idle workers off the CPU and avoid stalls when cores are shared. libgomp reads
  // this when the native addon loads, which happens later (in the workers).
  process.env.OMP_WAIT_POLICY ??= 'passive';
  const port = await checkAddress(o.port, o.host);
  if (o.run !== undefined && !(existsSync(o.run) && statSync(o.run).isDirectory())) {
    throw new PrimerError('RUN_DIR', `--run ${o.run}: no such directory`);
  }
  // Followed anyway (a run that has not logged yet creates it), but a mistyped path would show an empty chart forever.
  if (o.run !== undefined && !existsSync(join(o.run, 'metrics.jsonl'))) {
    process.stderr.write(`primer ${what}: note: ${o.run} has no metrics.jsonl yet; the charts fill in once a run writes it (is this the --out of a pretrain or finetune run?)\n`);
  }
  // An empty key would quietly serve an open API to someone who meant to lock it.
  if (o.apiKey !== undefined && o.apiKey.trim() === '') throw new PrimerError('API_KEY', '--api-key is empty: give the key clients must send, or leave the option out for an open server');
  const apiKey = o.apiKey ?? (process.env.PRIMER_API_KEY || undefined);
  const options: ServeOptions = {
    models: o.model ?? [], runDir: o.run, workers: o.workers, parallel: o.parallel, threads: o.threads, maxQueue: o.queue,
    maxTokens: o.maxTokens, timeoutMs: o.timeout * 1000, bodyLimit: o.bodyLimit, bodyTimeoutMs: o.bodyTimeout * 1000,
    keepAliveMs: o.keepAlive * 1000, maxConnections: o.maxConnections, graceMs: o.grace * 1000,
    apiKey, cors: o.cors, host: o.host, allowedHosts: o.allowHost, deferModels: true,
  };
  // Model directories are checked (no weights loaded) before listening; the workers load after, while /health says 503.
  const server = await createServer(options);
  let base: string;
  try {
    base = await listen(server, port, o.host);
  } catch (e) {
    await server.close();
    throw listenError(e as NodeJS.ErrnoException, o.host, port);
  }
  if (!isLoopback(o.host) && !apiKey) {
    process.stderr.write(`primer ${what}: WARNING: listening on ${o.host}, beyond this machine, with no API key: anyone who can reach it can use the models. Set --api-key or PRIMER_API_KEY.\n`);
  }
  // The banner shows the address actually bound (the port chosen for --port 0, the real interface).
  console.log(`primer ${what}: ${base}${path}  (models: ${server.models.map((m) => `${m.id} [${m.kind}]`).join(', ') || 'none'})${apiKey ? '  [API key required]' : ''}`);
  try {
    await server.load();
  } catch (e) {
    await server.close();
    throw e;
  }
}

export function registerServeCommands(program: Command): void {
  withCommonOptions(program
    .command('serve')
    .description('serve models over HTTP (OpenAI-compatible /v1/completions, fill-mask, classify, embeddings) with a web UI')
    .requiredOption('--model <dir>', 'model directory (HF layout with tokenizer); repeat to serve several', collect)
    .option('--run <dir>', 'also follow this training run in the dashboard'))
    .action(action((o: CommonFlags) => start(o, 'serve', '/ui/')));

  withCommonOptions(program
    .command('dashboard')
    .description('follow a training run (metrics.jsonl) live in the browser')
    .requiredOption('--run <dir>', 'run directory being written by `primer pretrain`')
    .option('--model <dir>', 'also serve a model for the playground; repeatable', collect))
    .action(action((o: CommonFlags) => start(o, 'dashboard', '/ui/#dashboard')));
}
