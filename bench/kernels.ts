/**
 * Kernel benchmark (`npm run bench:kernels`): native GEMM GFLOP/s (fp32 and bf16, 1 thread and all
 * threads) against numpy/OpenBLAS in the same run, fused attention forward+backward times, and the
 * effective bandwidth of the memory-bound kernels. Writes bench/results/kernels.json and the
 * "Kernels" section of BENCHMARKS.md.
 *
 * Timing: each measurement is the best of several batches of calls (the machine is shared, so the
 * best batch is the least disturbed one); ours and OpenBLAS's are interleaved over rounds so both
 * see the same conditions. PRIMER_BENCH_ROUNDS (default 3) sets the number of rounds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { loadNativeAddon, type NativeAddon } from '../src/backend/native.ts';
import { Unary } from '../src/backend/types.ts';
import { machineDescription, writeBenchmarkSection, writeResults } from './report.ts';

const COMMAND = 'npm run bench:kernels';
/** M × K × N: C (M×N) = A (M×K) · B (K×N), the transformer's linear-layer shapes plus a square one. */
const GEMM_SHAPES: Array<[number, number, number]> = [
  [768, 128, 384], [768, 128, 512], [768, 512, 128], [3072, 128, 128], [1024, 1024, 1024],
];
const ROUNDS = Number(process.env.PRIMER_BENCH_ROUNDS ?? 3);
// Many short batches: on a shared machine the best one is the least disturbed.
const BATCH_SECONDS = 0.03;
const BATCHES = 15;

const native = loadNativeAddon();
if (!native) {
  console.error('bench:kernels: the native addon is not built (npm run build:native)');
  process.exit(1);
}
const addon: NativeAddon = native;
const allThreads = addon.getThreads();

/**
 * Best seconds per call of fn over BATCHES batches of ~BATCH_SECONDS each (after one warm-up call).
 * clock 'cpu' times with the process's CPU time, which other processes do not inflate: the
 * 1-thread GEMM figures (ours and OpenBLAS's alike) use it, as this machine is shared.
 */
function bestSeconds(fn: () => void, clock: 'wall' | 'cpu' = 'wall'): number {
  const now = clock === 'wall' ? () => performance.now() / 1e3 : () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  fn();
  const t0 = now();
  fn();
  const once = Math.max(now() - t0, 1e-7);
  const reps = Math.max(1, Math.min(10_000, Math.round(BATCH_SECONDS / once)));
  let best = Infinity;
  for (let b = 0; b < BATCHES; b++) {
    const start = now();
    for (let r = 0; r < reps; r++) fn();
    best = Math.min(best, (now() - start) / reps);
  }
  return best;
}

function randomArray(n: number, seed = 1): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

function withThreads<T>(threads: number, fn: () => T): T {
  addon.setThreads(threads);
  try { return fn(); } finally { addon.setThreads(allThreads); }
}

const key = ([m, k, n]: [number, number, number]) => `${m}x${k}x${n}`;

/** GFLOP/s of our gemm for each shape at the given thread count and precision. */
function measureOurs(threads: number, bf16: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  withThreads(threads, () => {
    for (const shape of GEMM_SHAPES) {
      const [m, k, n] = shape;
      const a = randomArray(m * k, 1), b = randomArray(k * n, 2), c = new Float32Array(m * n);
      const s = bestSeconds(() => addon.gemm(a, b, c, null, m, n, k, false, false, false, 1, 0, 0, 0, bf16), threads === 1 ? 'cpu' : 'wall');
      out[key(shape)] = (2 * m * n * k) / s / 1e9;
    }
  });
  return out;
}

// ---------------------------------------------------------------- numpy / OpenBLAS
const NUMPY_SCRIPT = `
import json, sys, time, os, ctypes
import numpy as np
def blas_info():
    try:
        import threadpoolctl
        for i in threadpoolctl.threadpool_info():
            if i.get('user_api') == 'blas':
                return {k: i.get(k) for k in ('internal_api', 'version', 'architecture', 'threading_layer', 'num_threads', 'filepath')}
    except Exception:
        pass
    # No threadpoolctl: find the loaded OpenBLAS and ask it directly.
    np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)
    for line in open('/proc/self/maps'):
        path = line.split()[-1]
        if 'openblas' in path.lower() and '.so' in path:
            lib = ctypes.CDLL(path)
            info = {'filepath': path}
            for suffix in ('', '64_'):
                for prefix in ('openblas', 'scipy_openblas'):
                    for what in ('corename', 'config'):
                        fn = getattr(lib, f'{prefix}_get_{what}{suffix}', None)
                        if fn is not None:
                            fn.restype = ctypes.c_char_p
                            info[what] = fn().decode()
            if 'config' in info: info['version'] = info['config'].split()[1]
            if 'corename' in info: info['architecture'] = info.pop('corename')
            return info
    return {'internal_api': 'unknown (not OpenBLAS?)'}
shapes = json.loads(sys.argv[1]); batch_s = float(sys.argv[2]); batches = int(sys.argv[3])
clock = time.process_time if sys.argv[4] == 'cpu' else time.perf_counter
res = {}
for m, k, n in shapes:
    a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(k, n).astype(np.float32)
    c = np.empty((m, n), np.float32)
    np.matmul(a, b, out=c)
    t = clock(); np.matmul(a, b, out=c); once = max(clock() - t, 1e-7)
    reps = max(1, min(10000, round(batch_s / once))); best = 1e9
    for _ in range(batches):
        t = clock()
        for _ in range(reps): np.matmul(a, b, out=c)
        best = min(best, (clock() - t) / reps)
    res[f'{m}x{k}x{n}'] = 2 * m * n * k / best / 1e9
print(json.dumps({'numpy': np.__version__, 'python': sys.executable, 'blas': blas_info(), 'gflops': res}))
`;

interface NumpyRun { numpy: string; python: string; blas: Record<string, unknown>; gflops: Record<string, number> }

/** Pythons with numpy, one per distinct numpy install (/usr/bin/python3 first, then python3 on PATH). */
function findNumpyPythons(): string[] {
  const candidates = [process.env.PRIMER_BENCH_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  const seen = new Map<string, string>();
  for (const py of candidates) {
    if (py.startsWith('/') && !existsSync(py)) continue;
    const r = spawnSync(py, ['-c', 'import numpy, os; print(os.path.realpath(numpy.__file__))'], { encoding: 'utf8' });
    if (r.status === 0 && !seen.has(r.stdout.trim())) seen.set(r.stdout.trim(), py);
  }
  return [...seen.values()];
}

function runNumpy(python: string, threads: number): NumpyRun | null {
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine for old OpenBLAS builds; they
  // slow a current one, so the benchmark's child runs without them (and reports the kernel it uses).
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const clock = threads === 1 ? 'cpu' : 'wall';
  const r = spawnSync(python, ['-c', NUMPY_SCRIPT, JSON.stringify(GEMM_SHAPES), String(BATCH_SECONDS), String(BATCHES), clock], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    console.warn(`numpy via ${python} failed: ${r.stderr.trim().split('\n').pop()}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as NumpyRun;
}

// ---------------------------------------------------------------- attention and memory-bound kernels
interface AttentionResult { shape: string; forwardMs: number | null; backwardMs: number | null; forwardGflops: number | null }

function measureAttention(b: number, h: number, t: number, d: number): AttentionResult {
  const shape = `B=${b} H=${h} T=${t} d=${d} causal`;
  if (typeof addon.attention !== 'function' || typeof addon.attentionBackward !== 'function') {
    return { shape, forwardMs: null, backwardMs: null, forwardGflops: null };
  }
  const n = b * h * t * d;
  const q = randomArray(n, 3), k = randomArray(n, 4), v = randomArray(n, 5), dout = randomArray(n, 6);
  const out = new Float32Array(n), lse = new Float32Array(b * h * t);
  const dq = new Float32Array(n), dk = new Float32Array(n), dv = new Float32Array(n);
  const scale = 1 / Math.sqrt(d);
  const fwd = () => addon.attention(q, k, v, out, lse, b, h, t, t, d, scale, true, null, false);
  const forward = bestSeconds(fwd);
  fwd();
  const backward = bestSeconds(() => addon.attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, b, h, t, t, d, scale, true, null, false));
  // Causal: about half of the T×T scores are computed; QKᵀ and P·V are 2·T·T·d flops each.
  const forwardFlops = 2 * 2 * b * h * t * t * d / 2;
  return { shape, forwardMs: forward * 1e3, backwardMs: backward * 1e3, forwardGflops: forwardFlops / forward / 1e9 };
}

interface BandwidthResult { kernel: string; size: string; gbPerS: number | null }

function measureBandwidth(): BandwidthResult[] {
  const rows = 4096, cols = 768, n = rows * cols;
  const x = randomArray(n, 7), out = new Float32Array(n);
  const results: BandwidthResult[] = [];
  const has = (name: string) => typeof (addon as unknown as Record<string, unknown>)[name] === 'function';
  // Effective GB/s = bytes each call must read + write once, over the time per call.
  const gbps = (bytes: number, s: number) => bytes / s / 1e9;
  if (has('layerNorm')) {
    const w = randomArray(cols, 8), bias = randomArray(cols, 9), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    const s = bestSeconds(() => addon.layerNorm(x, w, bias, out, mean, rstd, rows, cols, 1e-5));
    results.push({ kernel: 'layerNorm', size: `${rows}×${cols}`, gbPerS: gbps(2 * 4 * n, s) });
  } else results.push({ kernel: 'layerNorm', size: `${rows}×${cols}`, gbPerS: null });
  if (has('unary')) {
    const s = bestSeconds(() => addon.unary(Unary.GeluTanh, x, out, n));
    results.push({ kernel: 'unary(GeluTanh)', size: `${n}`, gbPerS: gbps(2 * 4 * n, s) });
  } else results.push({ kernel: 'unary(GeluTanh)', size: `${n}`, gbPerS: null });
  if (has('adamw')) {
    const p = randomArray(n, 10), g = randomArray(n, 11), m = new Float32Array(n), v = new Float32Array(n);
    let step = 1;
    const s = bestSeconds(() => addon.adamw(p, g, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0.01, step++));
    results.push({ kernel: 'adamw', size: `${n}`, gbPerS: gbps(7 * 4 * n, s) }); // reads p,g,m,v; writes p,m,v
  } else results.push({ kernel: 'adamw', size: `${n}`, gbPerS: null });
  return results;
}

// ---------------------------------------------------------------- run
function lscpu(): string {
  const r = spawnSync('lscpu', [], { encoding: 'utf8' });
  if (r.status !== 0) return machineDescription();
  const field = (name: string) => r.stdout.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim() ?? '?';
  const flags = field('Flags').split(' ');
  const isa = ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'].filter((f) => flags.includes(f)).join(', ');
  return `${field('Model name')}, ${field('CPU\\(s\\)')} CPUs (${field('Core\\(s\\) per socket')} cores/socket), L2 ${field('L2 cache')}, L3 ${field('L3 cache')}; ${isa}`;
}

const best = (xs: Array<Record<string, number>>, k: string) => Math.max(...xs.map((x) => x[k] ?? 0));
const fmt = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits));

const loadBefore = loadavg()[0]!;
const pythons = findNumpyPythons();
console.log(`primer kernels benchmark — build ${addon.buildInfo()}, ${allThreads} threads; numpy: ${pythons.join(', ') || 'none'}`);
const ours: Record<string, Array<Record<string, number>>> = { fp32_1: [], fp32_all: [], bf16_1: [], bf16_all: [] };
const blas: Record<string, Array<Record<string, number>>> = { t1: [], all: [] };
/** Per OpenBLAS install and thread count: its description and every round's GFLOP/s. */
const installs = new Map<string, { run: NumpyRun; threads: number; rounds: Array<Record<string, number>> }>();
for (let round = 0; round < ROUNDS; round++) {
  ours.fp32_1!.push(measureOurs(1, false));
  ours.fp32_all!.push(measureOurs(allThreads, false));
  ours.bf16_1!.push(measureOurs(1, true));
  ours.bf16_all!.push(measureOurs(allThreads, true));
  for (const py of pythons) {
    for (const [name, t] of [['t1', 1], ['all', allThreads]] as const) {
      const r = runNumpy(py, t);
      if (!r) continue;
      blas[name]!.push(r.gflops);
      const id = `${py}|${t}`;
      if (!installs.has(id)) installs.set(id, { run: r, threads: t, rounds: [] });
      installs.get(id)!.rounds.push(r.gflops);
    }
  }
  console.log(`round ${round + 1}/${ROUNDS} done`);
}

const gemmRows = GEMM_SHAPES.map((shape) => {
  const k = key(shape);
  const row = {
    shape: k,
    fp32_1t: best(ours.fp32_1!, k), fp32_all: best(ours.fp32_all!, k),
    bf16_1t: best(ours.bf16_1!, k), bf16_all: best(ours.bf16_all!, k),
    openblas_1t: blas.t1!.length ? best(blas.t1!, k) : null, openblas_all: blas.all!.length ? best(blas.all!, k) : null,
  };
  return {
    ...row,
    fp32_vs_openblas_1t: row.openblas_1t ? row.fp32_1t / row.openblas_1t : null,
    fp32_vs_openblas_all: row.openblas_all ? row.fp32_all / row.openblas_all : null,
    bf16_vs_fp32_1t: row.bf16_1t / row.fp32_1t,
    bf16_vs_fp32_all: row.bf16_all / row.fp32_all,
  };
});
const attention = [measureAttention(12, 4, 64, 32), measureAttention(8, 6, 256, 64)];
const bandwidth = measureBandwidth();

const cpu = lscpu();
const loadAfter = loadavg()[0]!;
const numpyResults = [...installs.values()].map(({ run, threads, rounds }) => ({
  python: run.python, numpy: run.numpy, blas: run.blas, threads,
  gflops: Object.fromEntries(GEMM_SHAPES.map((shape) => [key(shape), best(rounds, key(shape))])),
}));
const blasDesc = numpyResults.filter((r) => r.threads === allThreads)
  .map((r) => `numpy ${r.numpy} (${r.python}): ${Object.entries(r.blas).filter(([n]) => !['filepath', 'num_threads', 'config'].includes(n)).map(([n, v]) => `${n}=${v}`).join(', ')}`);
const data = {
  date: new Date().toISOString(), command: COMMAND, machine: machineDescription(), cpu, build: addon.buildInfo(),
  threads: allThreads, rounds: ROUNDS, loadAverage: { before: loadBefore, after: loadAfter }, numpy: numpyResults, gemm: gemmRows, attention, bandwidth,
};
const path = writeResults('kernels', data);

const lines: string[] = [];
lines.push(`CPU: ${cpu}. Native build: \`${addon.buildInfo()}\`, ${allThreads} threads (OpenMP). Best of ${BATCHES} batches × ${ROUNDS} rounds, ours and OpenBLAS interleaved. 1-minute load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after (other processes on the ${allThreads} cores distort the all-thread numbers most).`);
lines.push('');
lines.push(blasDesc.length ? `OpenBLAS reference (run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE; the faster install per shape is the baseline): ${blasDesc.join('; ')}.` : 'OpenBLAS reference: no python3 with numpy found, ratios n/a.');
lines.push('');
lines.push('GEMM C(M×N) = A(M×K)·B(K×N), GFLOP/s (2·M·N·K / time; 1T = one thread timed by process CPU time, all = all threads timed by the wall clock):');
lines.push('');
lines.push('| M×K×N | fp32 1T | fp32 all | bf16 1T | bf16 all | OpenBLAS 1T | OpenBLAS all | fp32/OpenBLAS 1T | fp32/OpenBLAS all | bf16/fp32 1T | bf16/fp32 all |');
lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of gemmRows) {
  lines.push(`| ${r.shape} | ${fmt(r.fp32_1t)} | ${fmt(r.fp32_all)} | ${fmt(r.bf16_1t)} | ${fmt(r.bf16_all)} | ${fmt(r.openblas_1t)} | ${fmt(r.openblas_all)} | ${fmt(r.fp32_vs_openblas_1t, 2)} | ${fmt(r.fp32_vs_openblas_all, 2)} | ${fmt(r.bf16_vs_fp32_1t, 2)} | ${fmt(r.bf16_vs_fp32_all, 2)} |`);
}
const perInstall = pythons
  .map((py) => ({ one: installs.get(`${py}|1`), all: installs.get(`${py}|${allThreads}`) }))
  .filter((x) => x.one && x.all);
if (perInstall.length > 1) {
  lines.push('');
  lines.push('Each OpenBLAS install, GFLOP/s (1 thread / all threads):');
  lines.push('');
  lines.push(`| M×K×N | ${perInstall.map((x) => `numpy ${x.all!.run.numpy}, OpenBLAS ${x.all!.run.blas.version ?? x.all!.run.blas.config ?? '?'}`).join(' | ')} |`);
  lines.push(`|---|${perInstall.map(() => '---:').join('|')}|`);
  for (const shape of GEMM_SHAPES) {
    const k = key(shape);
    lines.push(`| ${k} | ${perInstall.map((x) => `${fmt(best(x.one!.rounds, k))} / ${fmt(best(x.all!.rounds, k))}`).join(' | ')} |`);
  }
}
lines.push('');
lines.push('Fused attention (fp32, all threads; forward GFLOP/s counts the ~half of QKᵀ and P·V a causal mask leaves):');
lines.push('');
lines.push('| shape | forward ms | backward ms | forward GFLOP/s |');
lines.push('|---|---:|---:|---:|');
for (const a of attention) lines.push(`| ${a.shape} | ${fmt(a.forwardMs, 3)} | ${fmt(a.backwardMs, 3)} | ${fmt(a.forwardGflops)} |`);
lines.push('');
lines.push('Memory-bound kernels (all threads), effective GB/s = bytes read + written once per call / time:');
lines.push('');
lines.push('| kernel | elements | GB/s |');
lines.push('|---|---:|---:|');
for (const b of bandwidth) lines.push(`| ${b.kernel} | ${b.size} | ${fmt(b.gbPerS)} |`);
writeBenchmarkSection('Kernels', COMMAND, lines.join('\n'));
console.log(lines.join('\n'));
console.log(`\nwrote ${path} and the Kernels section of BENCHMARKS.md`);
