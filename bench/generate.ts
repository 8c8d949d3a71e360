/**
 * `npm run bench:generate`: greedy decoding speed with the KV cache (src/infer/decode.ts) for the
 * `mini` and `small` presets (random weights, vocabulary 8192), one stream and a batch of 8 streams,
 * next to PyTorch (bench/generate_torch.py: the same dims, its own KV cache) in the same run, and the
 * uncached forward (the whole window every token) for one stream to show what the cache buys.
 *
 * Timing: best of `repeats` runs of prompt (16 tokens) + 128 new tokens; tokens/s = streams × new / s.
 * Options: --quick (32 new tokens, 1 repeat), --no-torch, --threads N (both Primer and PyTorch).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { GPT } from '../src/models/gpt.ts';
import { gptPreset, type PresetName } from '../src/models/presets.ts';
import { generateBatchIds } from '../src/infer/decode.ts';
import { noGrad, withScope } from '../src/tensor/tensor.ts';
import { getNumThreads, setNumThreads } from '../src/backend/index.ts';
import { Rng } from '../src/util/random.ts';
import { repoRoot, writeBenchmarkSection, writeResults } from './report.ts';

// Sleeping (not spinning) OpenMP waits: decoding runs many tiny parallel regions, and on a shared
// machine spinning threads that get descheduled stall every barrier (10-50× slower under load).
// Read by libgomp when the addon loads (lazily, after this line); PyTorch inherits it too.
process.env.OMP_WAIT_POLICY ??= 'passive';
const quick = process.argv.includes('--quick');
const withTorch = !process.argv.includes('--no-torch');
const NEW = quick ? 32 : 128;
const PROMPT = 16;
const REPEATS = quick ? 1 : 2;
const threadsArg = process.argv.indexOf('--threads');
if (threadsArg > 0) setNumThreads(Number(process.argv[threadsArg + 1]));
const threads = getNumThreads();

/** Greedy decoding without a cache: every token re-runs the model on the whole window. */
function uncachedGreedy(model: GPT, prompt: readonly number[], n: number): void {
  const ctx = [...prompt];
  const v = model.config.vocab_size;
  for (let i = 0; i < n; i++) {
    const ids = Int32Array.from(ctx.slice(-model.config.n_positions));
    ctx.push(noGrad(() => withScope(() => {
      const row = model.forward(ids, 1, ids.length).logits.data.subarray((ids.length - 1) * v);
      let best = 0;
      for (let j = 1; j < v; j++) if (row[j]! > row[best]!) best = j;
      return best;
    })));
  }
}

function best(fn: () => void): number {
  let s = Infinity;
  for (let r = 0; r < REPEATS; r++) {
    const t0 = performance.now();
    fn();
    s = Math.min(s, (performance.now() - t0) / 1000);
  }
  return s;
}

function torchTokensPerSecond(preset: PresetName, batch: number): number | null {
  if (!withTorch) return null;
  const c = gptPreset(preset);
  const r = spawnSync('/usr/bin/python3', [join(repoRoot, 'bench', 'generate_torch.py'),
    '--layers', `${c.n_layer}`, '--dims', `${c.n_embd}`, '--heads', `${c.n_head}`, '--context', `${c.n_positions}`,
    '--vocab', `${c.vocab_size}`, '--prompt', `${PROMPT}`, '--new', `${NEW}`, '--batch', `${batch}`,
    '--threads', `${threads}`, '--repeats', `${REPEATS}`], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: `${threads}` } });
  if (r.status !== 0) {
    console.error(`PyTorch baseline failed: ${r.stderr || r.error?.message}`);
    return null;
  }
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { tokens_per_s: number }).tokens_per_s;
}

interface Row {
  preset: PresetName;
  streams: number;
  primer: number;
  torch: number | null;
  uncached: number | null;
}

const rows: Row[] = [];
for (const preset of ['mini', 'small'] as const) {
  const config = gptPreset(preset);
  const model = new GPT(config, 0).eval();
  const rng = new Rng(11);
  const prompts = Array.from({ length: 8 }, () => Array.from({ length: PROMPT }, () => rng.int(config.vocab_size)));
  generateBatchIds(model, [prompts[0]!], { temperature: 0, maxTokens: 8 }); // warm-up
  for (const streams of [1, 8]) {
    const s = best(() => generateBatchIds(model, prompts.slice(0, streams), { temperature: 0, maxTokens: NEW }));
    const primer = (streams * NEW) / s;
    let uncached: number | null = null;
    if (streams === 1) {
      const n = Math.min(NEW, 32);
      const t0 = performance.now();
      uncachedGreedy(model, prompts[0]!, n);
      uncached = n / ((performance.now() - t0) / 1000);
    }
    const torch = torchTokensPerSecond(preset, streams);
    rows.push({ preset, streams, primer, torch, uncached });
    console.log(`${preset} × ${streams}: primer ${primer.toFixed(0)} tok/s${torch ? `, PyTorch ${torch.toFixed(0)} tok/s (${(primer / torch).toFixed(2)}×)` : ''}${uncached ? `, uncached ${uncached.toFixed(0)} tok/s` : ''}`);
  }
}

const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(0));
const table = [
  '| preset | streams | Primer (KV cache) tok/s | per stream | PyTorch 1.13 tok/s | Primer / PyTorch | Primer without cache |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.preset} | ${r.streams} | ${fmt(r.primer)} | ${fmt(r.primer / r.streams)} | ${fmt(r.torch)} | ${r.torch ? `${(r.primer / r.torch).toFixed(2)}×` : '—'} | ${fmt(r.uncached)} |`),
];
writeResults(`generate-${threads}t`, { threads, newTokens: NEW, promptTokens: PROMPT, rows });
writeBenchmarkSection(threadsArg > 0 ? `Generation (${threads} thread${threads > 1 ? 's' : ''})` : 'Generation', `npm run bench:generate${threadsArg > 0 ? ` -- --threads ${threads}` : ''}`, `
Greedy decoding, random weights, vocabulary 8192, prompt ${PROMPT} tokens + ${NEW} new tokens (prefill included),
best of ${REPEATS}; ${threads} thread${threads > 1 ? 's' : ''} for both, OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}. "8 streams" is one batch of 8 prompts, one KV cache each, decoded in one forward per token
(aggregate tokens/s). PyTorch: bench/generate_torch.py, the same dims with a preallocated KV cache, fp32.
Load average at the end: ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores (shared machine: multi-threaded numbers suffer
most from other jobs, as OpenMP barriers wait for descheduled threads).

${table.join('\n')}
`);
