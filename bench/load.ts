/**
 * `npm run bench:load`: autocannon against POST /v1/completions of `primer serve` on 127.0.0.1, two
 * consecutive runs (50 connections, 30 s each by default), reporting status codes, p50/p99 latency,
 * and the server's RSS before, between and after (it must not keep growing).
 *
 * The server runs in a child process (this file with --child) serving a `tiny` GPT with random
 * weights and a small BPE tokenizer, so the numbers measure the serving path rather than a big model.
 * Options: --duration S, --connections N, --max-tokens N, --runs N (default 2).
 *
 * `--batching [--model DIR] [--seconds S]`: the continuous-batching run instead (bench/load-batching.ts):
 * 1 and then 8 concurrent streaming clients against one worker serving DIR (default: a `mini` GPT with
 * random weights), total tokens/s, p50/p99 time to first token and per-token latency.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { GPT } from '../src/models/gpt.ts';
import { gptPreset } from '../src/models/presets.ts';
import { saveModelDir } from '../src/models/load.ts';
import { trainTokenizer } from '../src/tokenizers/index.ts';
import { createServer, listen } from '../src/serve/server.ts';
import { writeBenchmarkSection, writeResults } from './report.ts';
import { batchingTable, runClients } from './load-batching.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

process.env.OMP_WAIT_POLICY ??= 'passive'; // as `primer serve` sets it (src/cli/serve.ts)

if (process.argv.includes('--child')) {
  const dir = process.argv[process.argv.indexOf('--child') + 1]!;
  const batching = process.argv.includes('--batching');
  const server = await createServer({ models: [dir], maxQueue: 64, ...(batching ? { workers: 1, parallel: 8 } : {}) });
  console.log(`LISTENING ${await listen(server, 0, '127.0.0.1')}`);
} else if (process.argv.includes('--batching')) {
  await batchingMain();
} else {
  await main();
}

/** Starts the server child on a model directory; resolves with its base URL. */
function startChild(modelDir: string, extra: string[]): Promise<{ child: ReturnType<typeof spawn>; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', modelDir, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve({ child, base: m[1]! });
    });
    child.on('exit', () => reject(new Error(`server exited: ${out}`)));
  });
}

async function batchingMain(): Promise<void> {
  const seconds = arg('seconds', 30);
  const maxTokens = arg('max-tokens', 64);
  const i = process.argv.indexOf('--model');
  let modelDir = i > 0 ? process.argv[i + 1]! : '';
  let root = '';
  if (!modelDir) {
    root = mkdtempSync(join(tmpdir(), 'primer-load-'));
    modelDir = join(root, 'mini-gpt');
    const texts = Array(50).fill('Once upon a time there was a little model that learned to tell stories about cats and dogs.');
    const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 400, texts, minFrequency: 1 });
    const config = gptPreset('mini', { vocabSize: tokenizer.vocabSize });
    saveModelDir(modelDir, new GPT(config, 0), config, tokenizer);
  }
  const { child, base } = await startChild(modelDir, ['--batching']);
  const cfg = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as { n_layer: number; n_embd: number; vocab_size: number; n_positions: number };
  try {
    await runClients(base, 1, 3, 8); // warm-up: tsx compile, first allocations
    const rows = [await runClients(base, 1, seconds, maxTokens), await runClients(base, 8, seconds, maxTokens)];
    for (const r of rows) console.log(`${r.clients} client(s): ${r.tokensPerSecond.toFixed(1)} tokens/s, TTFT p50 ${r.ttftP50.toFixed(1)} ms p99 ${r.ttftP99.toFixed(1)} ms, per token p50 ${r.perTokenP50.toFixed(1)} ms p99 ${r.perTokenP99.toFixed(1)} ms`);
    writeResults('load-batching', { modelDir, seconds, maxTokens, rows });
    writeBenchmarkSection('Serving: continuous batching', 'npm run bench:load -- --batching', `
Streaming clients (\`stream: true\`, max_tokens ${maxTokens}, temperature 0.8, one request after another per client for ${seconds} s)
against \`primer serve\` with one worker and 8 batch slots (\`--workers 1 --parallel 8\`), model ${i > 0 ? `\`${modelDir}\`` : 'a random-weight `mini` GPT'}
(${cfg.n_layer} layers, ${cfg.n_embd} dims, vocabulary ${cfg.vocab_size}, context ${cfg.n_positions}). Tokens/s is the server's
primer_tokens_generated_total over the wall time; TTFT is request → first streamed piece; per-token is the gap between pieces.
Load average at the end: ${loadavg()[0]!.toFixed(1)} (the 2-core machine was shared with other jobs).

${batchingTable(rows)}
`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
    if (root) rmSync(root, { recursive: true, force: true });
  }
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const duration = arg('duration', 30);
  const connections = arg('connections', 50);
  const maxTokens = arg('max-tokens', 16);
  const root = mkdtempSync(join(tmpdir(), 'primer-load-'));
  const modelDir = join(root, 'tiny-gpt');
  const texts = Array(50).fill('Once upon a time there was a little model that learned to tell stories about cats and dogs.');
  const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 400, texts, minFrequency: 1 });
  const config = gptPreset('tiny', { vocabSize: tokenizer.vocabSize });
  saveModelDir(modelDir, new GPT(config, 0), config, tokenizer);

  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', modelDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let crashed = false;
  let stopping = false;
  // A crash is an exit before we ask for one, or a failing exit after SIGTERM.
  child.on('exit', (code) => { if (!stopping || code !== 0) crashed = true; });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`server exited: ${out}`)));
  });

  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 0.8 });
  // Warm the workers (tsx compile, first allocations) before the baseline RSS.
  for (let i = 0; i < 20; i++) await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const rss = [rssMiB(child.pid!)];
  const runs: autocannon.Result[] = [];
  const nRuns = arg('runs', 2);
  for (let r = 0; r < nRuns; r++) {
    const result = await autocannon({
      url: `${base}/v1/completions`, method: 'POST', connections, duration, body,
      headers: { 'content-type': 'application/json' },
    });
    runs.push(result);
    rss.push(rssMiB(child.pid!));
    const codes = Object.entries(result.statusCodeStats ?? {}).map(([c, s]) => `${c}: ${(s as { count: number }).count}`).join(', ');
    console.log(`run ${r + 1}: ${result.requests.total} requests (${codes}), errors ${result.errors}, timeouts ${result.timeouts}, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, RSS ${rss[r + 1]!.toFixed(0)} MiB`);
  }
  const health = await (await fetch(`${base}/health`)).json() as { status: string };
  stopping = true;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  rmSync(root, { recursive: true, force: true });

  const count = (res: autocannon.Result, pred: (code: number) => boolean) =>
    Object.entries(res.statusCodeStats ?? {}).filter(([c]) => pred(Number(c))).reduce((s, [, v]) => s + (v as { count: number }).count, 0);
  const rows = runs.map((res, i) => `| ${i + 1} | ${res.requests.total} | ${res.requests.average.toFixed(0)} | ${count(res, (c) => c >= 200 && c < 300)} | ${count(res, (c) => c === 429)} | ${count(res, (c) => c >= 500)} | ${res.errors + res.timeouts} | ${res.latency.p50} | ${res.latency.p99} | ${rss[i]!.toFixed(0)} → ${rss[i + 1]!.toFixed(0)} |`);
  const fives = runs.reduce((s, r) => s + count(r, (c) => c >= 500), 0);
  writeResults('load', { duration, connections, maxTokens, rss, runs: runs.map((r) => ({ requests: r.requests.total, statusCodeStats: r.statusCodeStats, latency: r.latency, errors: r.errors, timeouts: r.timeouts })) });
  writeBenchmarkSection('Serving load', 'npm run bench:load', `
autocannon, POST /v1/completions on 127.0.0.1, ${connections} connections, ${duration} s per run, ${runs.length} consecutive runs;
body \`${body}\`. Server: \`primer serve\` defaults (1 worker thread with 8 batch slots, queue 64) with a \`tiny\` GPT (random
weights). Load average at the end: ${loadavg()[0]!.toFixed(1)} (the 2-core machine was shared with other jobs).

| run | requests | req/s | 2xx | 429 | 5xx | errors + timeouts | p50 ms | p99 ms | server RSS MiB (before → after) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

5xx responses: ${fives}. Server crashed: ${crashed ? 'yes' : 'no'} (health after the runs: ${health.status}).
`);
  if (fives > 0 || crashed) process.exitCode = 1;
}
