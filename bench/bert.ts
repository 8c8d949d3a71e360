/**
 * BERT learning parity over many seeds (npm run bench:bert): Primer's BERT (models/bert.ts, the shared
 * trainer, mlm.ts masking) against ../shared/bench/ref_bert.py (PyTorch) on the same char-level corpus,
 * N seeds per arm, every arm on the SAME recipe (bench/bert-primer.ts has Primer's side):
 *
 *   model   4 layers, 4 heads, 128 hidden, 512 intermediate, post-LN, GELU tanh, LayerNorm eps 1e-12,
 *           init N(0, 0.02), no dropout, MLM head tied to the token embedding
 *   data    vocab [PAD] [CLS] [SEP] [MASK] + sorted corpus chars; first 90% train, last 10% held out
 *   recipe  (defaults = ref_bert.py's) --steps 2000 --lr 2e-3 --warmup 200 --beta1 0.9 --beta2 0.99 --eps 1e-6
 *           --weight-decay 0.01 --mask-prob 0.15 --batch-size 16 --seq-len 128 --clip 1 --schedule linear
 *           (linear | cosine | constant after the linear warmup; ref_bert.py gets the same shape through
 *           bench/ref_bert_recipe.py); --nsp adds next-sentence prediction
 *   eval    20 fixed held-out batches every --eval-every 200 steps and at the end, in both arms (PyTorch's
 *           with ref_bert.py's own evaluate() via bench/ref_bert_recipe.py)
 *   escape  first evaluation with held-out MLM loss ≤ plateau − --escape-margin (0.15 nats), the plateau
 *           being the held-out loss of the best context-free predictor (bert-primer.ts contextFreePlateau)
 *
 * Arms: Primer (its own init Rng(seed), batches, masking), PyTorch (ref_bert.py --seed seed) and, unless
 * --no-same-start or --nsp, "same start" (Primer from ref_bert.py's initial weights on its batches, seed by
 * seed: paired with PyTorch). Seeds: --seeds N (1..N, default 5), --seed-list 3,7,11 or --seed S (one).
 * --bf16: bf16 autocast in both arms (Primer's trainer bf16, ref_bert.py --dtype bf16); its own section and results file.
 * --parallel runs 2 jobs at a time with 1 thread each (else one at a time, Primer on all threads, PyTorch
 * 1 OpenMP + all BLAS threads). --no-torch, --no-report (print only; BENCHMARKS.md and bench/results untouched).
 * --from-results bench/results/bert.json [--escape-margin M] re-renders the section without training.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getNumThreads, setNumThreads } from '../src/backend/index.ts';
import { repoRoot, writeResults, writeBenchmarkSection, machineDescription } from './report.ts';
import { charData, contextFreePlateau, ownRun, sameStartRun, SCHEDULES, type ArmRun, type CurvePoint, type Recipe } from './bert-primer.ts';
import { analyse, escapeStep, renderSection, type Arm, type BertResults, type Done } from './bert-report.ts';

const args = process.argv.slice(2);
const str = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;
const { values: o } = parseArgs({
  args, options: {
    seeds: str, 'seed-list': str, seed: str, steps: str, lr: str, warmup: str, beta1: str, beta2: str, eps: str, 'weight-decay': str,
    'mask-prob': str, 'batch-size': str, 'seq-len': str, clip: str, schedule: str, 'eval-every': str, 'escape-margin': str,
    nsp: flag, bf16: flag, parallel: flag, 'no-torch': flag, 'no-report': flag, 'no-same-start': flag, 'from-results': str, worker: str, threads: str,
  },
});

function num(name: keyof typeof o, fallback: number, ok: (x: number) => boolean, what: string): number {
  const raw = o[name];
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new RangeError(`bench:bert: --${name} must be ${what}, got ${JSON.stringify(raw)}`);
  return x;
}
const int = (x: number) => Number.isInteger(x) && x >= 1;
const schedule = (o.schedule ?? 'linear') as Recipe['schedule'];
if (!SCHEDULES.includes(schedule)) throw new RangeError(`bench:bert: --schedule must be one of ${SCHEDULES.join(', ')}, got ${JSON.stringify(o.schedule)}`);
const rc: Recipe = {
  steps: num('steps', 2000, int, 'a positive integer'), lr: num('lr', 2e-3, (x) => x > 0, 'a positive number'),
  warmup: num('warmup', 200, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'), beta1: num('beta1', 0.9, (x) => x >= 0 && x < 1, 'in [0, 1)'),
  beta2: num('beta2', 0.99, (x) => x >= 0 && x < 1, 'in [0, 1)'), eps: num('eps', 1e-6, (x) => x > 0, 'a positive number'),
  weightDecay: num('weight-decay', 0.01, (x) => x >= 0, '≥ 0'), maskProb: num('mask-prob', 0.15, (x) => x > 0 && x <= 1, 'in (0, 1]'),
  batch: num('batch-size', 16, int, 'a positive integer'), seq: num('seq-len', 128, (x) => int(x) && x >= (o.nsp ? 35 : 3), `an integer ≥ ${o.nsp ? 35 : 3}`),
  clip: num('clip', 1, (x) => x >= 0, '≥ 0 (0 = no clipping)'), schedule, evalEvery: num('eval-every', 200, (x) => int(x) && x > 10, 'an integer > 10'),
  nsp: o.nsp ?? false,
  bf16: o.bf16 ?? false,
};
const margin = num('escape-margin', 0.15, (x) => x >= 0, '≥ 0');
const refScript = join(repoRoot, '..', 'shared', 'bench', 'ref_bert.py');
const corpus = join(repoRoot, '..', 'shared', 'bench', 'data', 'shakespeare.txt');
const python = '/usr/bin/python3';
const seeds = o['seed-list'] !== undefined ? o['seed-list'].split(',').map((s) => Number(s.trim()))
  : o.seed !== undefined ? [num('seed', 0, Number.isInteger, 'an integer')]
  : Array.from({ length: num('seeds', 5, int, 'a positive integer') }, (_, i) => i + 1);
if (seeds.some((s) => !Number.isInteger(s) || s < 0) || new Set(seeds).size !== seeds.length) throw new RangeError(`bench:bert: --seed-list must be distinct integers ≥ 0, got ${JSON.stringify(o['seed-list'])}`);

/** Primer's arms run in a child process (`--worker primer|same --seed S`) so that two can run at once. */
if (o.worker !== undefined) {
  if (o.threads) setNumThreads(Number(o.threads));
  const seed = seeds[0]!;
  const run = o.worker === 'same' ? await sameStartRun(seed, rc, { python, refScript, corpus }) : await ownRun(seed, rc, corpus);
  console.log('RESULT ' + JSON.stringify(run));
  process.exit(0);
}

/** Re-renders the BENCHMARKS.md section from a results file (optionally with another --escape-margin) without training. */
if (o['from-results'] !== undefined) {
  const res = JSON.parse(readFileSync(o['from-results'], 'utf8')) as BertResults;
  if (o['escape-margin'] !== undefined) {
    res.plateau = { ...res.plateau, margin, threshold: res.plateau.context_free - margin };
    for (const r of res.runs) r.escape = escapeStep(r.curve, res.plateau.threshold);
  }
  writeBenchmarkSection(sectionTitle(res.recipe), res.command, renderSection(res));
  console.log(`rewrote the BERT section of BENCHMARKS.md from ${o['from-results']} (escape margin ${res.plateau.margin})`);
  process.exit(0);
}

/** BENCHMARKS.md section and bench/results file of a recipe: MLM or MLM + NSP, fp32 or bf16. */
function sectionTitle(r: Recipe): string {
  return `BERT pre-training${r.nsp ? ' (MLM + NSP)' : ''}${r.bf16 ? ' (bf16)' : ''}`;
}
function resultsName(r: Recipe): string {
  return `bert${r.nsp ? '-nsp' : ''}${r.bf16 ? '-bf16' : ''}`;
}

/** The recipe as this script's flags (for workers) and as ref_bert.py's (the same values). */
const ownFlags = (r: Recipe) => ['--steps', r.steps, '--lr', r.lr, '--warmup', r.warmup, '--beta1', r.beta1, '--beta2', r.beta2, '--eps', r.eps,
  '--weight-decay', r.weightDecay, '--mask-prob', r.maskProb, '--batch-size', r.batch, '--seq-len', r.seq, '--clip', r.clip, '--schedule', r.schedule,
  '--eval-every', r.evalEvery, ...(r.nsp ? ['--nsp'] : []), ...(r.bf16 ? ['--bf16'] : [])].map(String);
const refFlags = (r: Recipe) => ['--iters', r.steps, '--lr', r.lr, '--warmup_iters', r.warmup, '--beta1', r.beta1, '--beta2', r.beta2, '--eps', r.eps,
  '--weight_decay', r.weightDecay, '--mask_prob', r.maskProb, '--batch_size', r.batch, '--seq_len', r.seq, '--grad_clip', r.clip, '--nsp', r.nsp ? 1 : 0].map(String);

interface Job { arm: Arm; seed: number }

const live = new Set<ChildProcess>();

/** Runs a command, relaying its progress lines with a prefix; resolves with its stdout lines. */
function runLines(cmd: string, argv: string[], env: NodeJS.ProcessEnv, label: string, relay: RegExp): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const lines: string[] = [];
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (pending + chunk).split('\n');
      pending = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        if (relay.test(l)) console.log(`[${label}] ${l.trim()}`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr = (stderr + chunk).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      live.delete(child);
      if (pending) lines.push(pending);
      if (code === 0) resolve(lines);
      else reject(new Error(`${label}: ${cmd} ${argv.join(' ')} exited with ${code}:\n${stderr}`));
    });
  });
}

const withTorch = !o['no-torch'] && existsSync(python) && existsSync(refScript) && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const sameStart = withTorch && !rc.nsp && !o['no-same-start'];
const allThreads = getNumThreads();
const jobThreads = o.parallel ? 1 : allThreads;
const data = charData(corpus);
const { unigramEntropy, plateau } = contextFreePlateau(data);
const threshold = plateau - margin;
const escapeOf = (curve: CurvePoint[]) => escapeStep(curve, threshold);

async function runJob(job: Job): Promise<Done> {
  const label = `${job.arm} s${job.seed}`;
  const env = { ...process.env, OMP_NUM_THREADS: String(jobThreads) };
  if (job.arm !== 'torch') {
    const argv = [...process.execArgv, fileURLToPath(import.meta.url), '--worker', job.arm, '--seed', String(job.seed), '--threads', String(jobThreads), ...ownFlags(rc)];
    const lines = await runLines(process.execPath, argv, env, label, /^\s+\S+ s\d+ @/);
    const run = JSON.parse(lines.find((l) => l.startsWith('RESULT '))!.slice(7)) as ArmRun;
    return { ...run, arm: job.arm, seed: job.seed, escape: escapeOf(run.curve) };
  }
  // fp32 PyTorch is fastest with 1 OpenMP + N OpenBLAS threads here (as in bench/train.ts); bf16 runs in
  // PyTorch's own kernels, so it gets the N threads as OpenMP threads.
  const threadFlags = rc.bf16 ? ['--threads', String(jobThreads), '--blas_threads', '1'] : ['--threads', '1', '--blas_threads', String(jobThreads)];
  const argv = [join(repoRoot, 'bench', 'ref_bert_recipe.py'), refScript, '--eval_every', String(rc.evalEvery), '--schedule', rc.schedule, '--',
    '--corpus', corpus, ...threadFlags, '--dtype', rc.bf16 ? 'bf16' : 'fp32', '--log_every', '50', '--seed', String(job.seed), ...refFlags(rc)];
  const lines = await runLines(python, argv, env, label, /^eval \d+:/);
  const res = JSON.parse(lines.find((l) => l.startsWith('{"script": "ref_bert"'))!) as Record<string, number> & { torch: string };
  const wrap = JSON.parse(lines.find((l) => l.startsWith('{"wrapper"'))!) as { eval_seconds: number };
  const curve: CurvePoint[] = lines.filter((l) => /^eval \d+:/.test(l)).map((l) => JSON.parse(l.slice(l.indexOf('{'))));
  curve.push({ step: rc.steps, heldout_mlm_loss: res.heldout_mlm_loss!, heldout_mlm_acc: res.heldout_mlm_acc!, heldout_nsp_acc: res.heldout_nsp_acc });
  // ref_bert.py times each step including the evaluations run at its start: take them out again.
  const timedTokens = res.timed_steps! * res.tokens_per_step!;
  const seconds = timedTokens / res.tokens_per_sec! - wrap.eval_seconds;
  return {
    arm: 'torch', seed: job.seed, torch: res.torch, params: res.params!, tokens_per_sec: Math.round(timedTokens / seconds), seconds: +seconds.toFixed(1),
    heldout_mlm_loss: res.heldout_mlm_loss!, heldout_mlm_acc: res.heldout_mlm_acc!, heldout_nsp_acc: res.heldout_nsp_acc, curve, escape: escapeOf(curve),
  };
}

const arms: Arm[] = ['primer', ...(withTorch ? ['torch' as const] : []), ...(sameStart ? ['same' as const] : [])];
const queue: Job[] = seeds.flatMap((seed) => arms.map((arm) => ({ arm, seed })));
const done: Done[] = [];
const loadAtStart = loadavg()[0]!;
const started = Date.now();
console.log(`bench:bert on ${machineDescription()}: seeds ${seeds.join(', ')}; arms ${arms.join(', ')}; ${o.parallel ? '2 jobs at a time, 1 thread each' : `one job at a time, ${allThreads} threads`}`);
console.log(`recipe ${ownFlags(rc).join(' ')}; plateau ${plateau.toFixed(4)} (unigram entropy ${unigramEntropy.toFixed(4)}), escape ≤ ${threshold.toFixed(4)}`);
try {
  await Promise.all(Array.from({ length: o.parallel ? 2 : 1 }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const r = await runJob(job);
      done.push(r);
      console.log(`${job.arm} s${job.seed}: held-out MLM ${r.heldout_mlm_loss} acc ${r.heldout_mlm_acc}, escape ${r.escape ?? 'none'}, ${r.tokens_per_sec} tok/s`);
    }
  }));
} catch (e) {
  queue.length = 0;
  for (const c of live) c.kill(); // the other slot's run would otherwise go on alone
  throw e;
}
const wallSeconds = (Date.now() - started) / 1000;
const loadAtEnd = loadavg()[0]!;

const mode = o.parallel ? '2 runs at a time, 1 thread each (Primer OMP_NUM_THREADS=1; ref_bert.py --threads 1 --blas_threads 1)'
  : `one run at a time (Primer ${allThreads} threads; ref_bert.py ${rc.bf16 ? `${allThreads} OpenMP + 1 BLAS thread` : `1 OpenMP + ${allThreads} BLAS threads`})`;
const results: BertResults = {
  command: `npm run bench:bert${args.length ? ' -- ' + args.join(' ') : ''}`, date: new Date().toISOString(), machine: machineDescription(), mode,
  load_average: [loadAtStart, loadAtEnd], wall_seconds: Math.round(wallSeconds), recipe: rc, seeds, arms, vocab: data.vocab,
  plateau: { unigram_entropy: unigramEntropy, context_free: plateau, margin, threshold }, runs: done,
};
const { summaries, tests } = analyse(results);
if (o['no-report']) {
  console.log('\n' + renderSection(results));
  console.log(JSON.stringify({ ...results, runs: done.map((r) => ({ ...r, curve: undefined })), summaries, tests }));
  process.exit(0);
}
writeResults(resultsName(rc), { ...results, summaries, tests });
writeBenchmarkSection(sectionTitle(rc), results.command, renderSection(results));
console.log(`wrote bench/results/${resultsName(rc)}.json and the BERT section of BENCHMARKS.md`);
