/** `primer serve` (HTTP API + web UI) and `primer dashboard` (follow a training run in the browser). */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { createServer, listen, type ServeOptions } from '../serve/server.ts';
import { PrimerError } from '../io/errors.ts';
import { action, intArg } from './options.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface CommonFlags {
  model?: string[];
  port: number;
  host: string;
  workers?: number;
  threads?: number;
  queue: number;
  maxTokens: number;
  timeout: number;
  bodyLimit: number;
  run?: string;
}

function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--port <n>', 'TCP port (0 = any free port)', intArg(0), 8080)
    .option('--host <addr>', 'interface to listen on', '127.0.0.1')
    .option('--workers <n>', 'inference worker threads (default: min(2, cores))', intArg(1))
    .option('--threads <n>', 'kernel (OpenMP) threads per worker (default: all cores)', intArg(1))
    .option('--queue <n>', 'requests that may wait for a worker before answering 429', intArg(0), 64)
    .option('--max-tokens <n>', 'largest max_tokens a request may ask for', intArg(1), 512)
    .option('--timeout <s>', 'per-request deadline in seconds', intArg(1), 60)
    .option('--body-limit <bytes>', 'largest request body', intArg(1024), 1 << 20);
}

async function start(o: CommonFlags, what: string, path: string): Promise<void> {
  // Token-by-token decoding is many tiny parallel regions with idle gaps between requests: sleeping
  // OpenMP waits keep idle workers off the CPU and avoid stalls when cores are shared. libgomp reads
  // this when the native addon loads, which happens later (in createServer).
  process.env.OMP_WAIT_POLICY ??= 'passive';
  if (o.run !== undefined && !(existsSync(o.run) && statSync(o.run).isDirectory())) {
    throw new PrimerError('RUN_DIR', `--run ${o.run}: no such directory`);
  }
  const options: ServeOptions = {
    models: o.model ?? [], runDir: o.run, workers: o.workers, threads: o.threads, maxQueue: o.queue,
    maxTokens: o.maxTokens, timeoutMs: o.timeout * 1000, bodyLimit: o.bodyLimit,
  };
  const server = await createServer(options);
  const base = await listen(server, o.port, o.host);
  console.log(`primer ${what}: ${base}${path}  (models: ${server.models.map((m) => `${m.id} [${m.kind}]`).join(', ') || 'none'})`);
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
