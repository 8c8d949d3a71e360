/**
 * `npm run bench:generate`: greedy decoding speed with the KV cache (src/infer/decode.ts) for the
 * `mini` and `small` presets (random weights, vocabulary 8192), one stream and a batch of 8 streams,
 * next to PyTorch (bench/generate_torch.py: the same dims, its own KV cache) in the same run, and the
 * uncached forward (the whole window every token) for one stream to show what the cache buys.
 *
 * Timing: best of `repeats` runs of prompt (16 tokens) + 128 new tokens; tokens/s = streams × new / s.
 * Options: --quick (32 new tokens, 1 repeat), --no-torch, --threads N (both Primer and PyTorch).
 *
 * OpenMP wait policy: each side runs under its fastest. Primer under its default (the library's and
 * `primer generate`'s: short spinning, src/backend/native.ts); PyTorch under OMP_WAIT_POLICY=passive
 * (with its default, spinning, its OpenMP and OpenBLAS pools fight: 8 streams ran 2.8× slower). A
 * child process measures Primer under passive as well, the policy `primer serve` sets: decoding is
 * many short parallel regions, and waking a sleeping thread for each costs tens of µs on a VM.
 * (--child: print this process's Primer rows as JSON and exit.)
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

const quick = process.argv.includes('--quick');
const child = process.argv.includes('--child');
const withTorch = !process.argv.includes('--no-torch') && !child;
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
    '--threads', `${threads}`, '--repeats', `${REPEATS}`], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: `${threads}`, OMP_WAIT_POLICY: 'passive' } });
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
  /** Primer under OMP_WAIT_POLICY=passive (the child process), as `primer serve` runs. */
  passive: number | null;
  torch: number | null;
  uncached: number | null;
}

/** Primer's rows in this process: KV-cache decoding, and the uncached forward for one stream. */
function primerRows(): Row[] {
  const rows: Row[] = [];
  for (const preset of ['mini', 'small'] as const) {
    const config = gptPreset(preset);
    const model = new GPT(config, 0).eval();
    const rng = new Rng(11);
    const prompts = Array.from({ length: 8 }, () => Array.from({ length: PROMPT }, () => rng.int(config.vocab_size)));
    generateBatchIds(model, [prompts[0]!], { temperature: 0, maxTokens: 8 }); // warm-up
    for (const streams of [1, 8]) {
      const s = best(() => generateBatchIds(model, prompts.slice(0, streams), { temperature: 0, maxTokens: NEW }));
      let uncached: number | null = null;
      if (streams === 1 && !child) {
        const n = Math.min(NEW, 32);
        const t0 = performance.now();
        uncachedGreedy(model, prompts[0]!, n);
        uncached = n / ((performance.now() - t0) / 1000);
      }
      rows.push({ preset, streams, primer: (streams * NEW) / s, passive: null, torch: null, uncached });
    }
  }
  return rows;
}

if (child) {
  console.log(JSON.stringify(primerRows()));
  process.exit(0);
}

/** Primer's tokens/s per row under OMP_WAIT_POLICY=passive, from a child process (libgomp reads it at load). */
function passiveRows(): number[] | null {
  const args = [...process.execArgv, process.argv[1]!, '--child', ...(quick ? ['--quick'] : []), ...(threadsArg > 0 ? ['--threads', `${threads}`] : [])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'passive' } });
  if (r.status !== 0) {
    console.error(`Primer under the passive policy failed: ${r.stderr || r.error?.message}`);
    return null;
  }
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as Row[]).map((row) => row.primer);
}

const rows = primerRows();
const passive = passiveRows();
rows.forEach((row, i) => {
  row.passive = passive?.[i] ?? null;
  row.torch = torchTokensPerSecond(row.preset, row.streams);
  console.log(`${row.preset} × ${row.streams}: primer ${row.primer.toFixed(0)} tok/s${row.passive ? ` (passive ${row.passive.toFixed(0)})` : ''}${row.torch ? `, PyTorch ${row.torch.toFixed(0)} tok/s (${(row.primer / row.torch).toFixed(2)}×)` : ''}${row.uncached ? `, uncached ${row.uncached.toFixed(0)} tok/s` : ''}`);
});

const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(0));
const ratio = (a: number | null, b: number | null) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
const table = [
  '| preset | streams | Primer (KV cache) tok/s | per stream | PyTorch 1.13 tok/s | Primer / PyTorch | Primer, passive waits | passive / PyTorch | Primer without cache |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.preset} | ${r.streams} | ${fmt(r.primer)} | ${fmt(r.primer / r.streams)} | ${fmt(r.torch)} | ${ratio(r.primer, r.torch)} | ${fmt(r.passive)} | ${ratio(r.passive, r.torch)} | ${fmt(r.uncached)} |`),
];
const primerPolicy = process.env.OMP_WAIT_POLICY ? `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}` : `GOMP_SPINCOUNT=${process.env.GOMP_SPINCOUNT ?? 'libgomp default'}`;
writeResults(`generate-${threads}t`, { threads, newTokens: NEW, promptTokens: PROMPT, primerPolicy, torchPolicy: 'OMP_WAIT_POLICY=passive', rows });
writeBenchmarkSection(threadsArg > 0 ? `Generation (${threads} thread${threads > 1 ? 's' : ''})` : 'Generation', `npm run bench:generate${threadsArg > 0 ? ` -- --threads ${threads}` : ''}`, `
Greedy decoding, random weights, vocabulary 8192, prompt ${PROMPT} tokens + ${NEW} new tokens (prefill included),
best of ${REPEATS}; ${threads} thread${threads > 1 ? 's' : ''} for both. "8 streams" is one batch of 8 prompts, one KV cache each, decoded in one forward per token
(aggregate tokens/s). PyTorch: bench/generate_torch.py, the same dims with a preallocated KV cache, fp32.
OpenMP wait policies, each side's fastest: Primer ${primerPolicy} (its default), PyTorch OMP_WAIT_POLICY=passive.
"Primer, passive waits": Primer under OMP_WAIT_POLICY=passive (what \`primer serve\` sets), in a child process.
Load average at the end: ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores.

${table.join('\n')}
`);
