/**
 * Per-op profiler (`PRIMER_PROFILE=1`, or `--profile` on the CLI): wraps every backend kernel with a
 * wall-clock timer and, when asked (by default at process exit), prints one table: op, calls, total
 * ms, share of the profiled wall time, and GFLOP/s (GEMM, attention) or GB/s (memory-bound kernels).
 * The row "outside kernels" is the rest of the wall time: TypeScript ops, autograd bookkeeping,
 * allocation and data loading. Kernels are synchronous, so wall time per call is exact.
 */
import type { Backend, FloatArray } from './types.ts';

interface OpStats { calls: number; ms: number; flops: number; bytes: number }

/** Work of one call: FLOPs for compute-bound kernels, bytes moved for the memory-bound ones. */
type Work = (args: unknown[]) => { flops?: number; bytes?: number };

const f32 = (n: unknown) => 4 * (n as number);
const byteLengths = (list: unknown) => (list as FloatArray[]).reduce((sum, x) => sum + x.byteLength, 0);
const WORK: Record<string, Work> = {
  gemm: (a) => ({ flops: 2 * (a[4] as number) * (a[5] as number) * (a[6] as number) * (a[10] as number) }),
  // causal attention does about half of the 4·B·H·Tq·Tk·D of QKᵀ and P·V
  attention: (a) => ({ flops: (a[11] ? 2 : 4) * (a[5] as number) * (a[6] as number) * (a[7] as number) * (a[8] as number) * (a[9] as number) }),
  attentionBackward: (a) => ({ flops: (a[15] ? 5 : 10) * (a[9] as number) * (a[10] as number) * (a[11] as number) * (a[12] as number) * (a[13] as number) }),
  add: (a) => ({ bytes: 3 * f32(a[3]) }),
  mul: (a) => ({ bytes: 3 * f32(a[3]) }),
  axpy: (a) => ({ bytes: 3 * f32(a[3]) }),
  scale: (a) => ({ bytes: 2 * f32(a[3]) }),
  sumSquares: (a) => ({ bytes: f32(a[1]) }),
  unary: (a) => ({ bytes: 2 * f32(a[3]) }),
  unaryBackward: (a) => ({ bytes: 4 * f32(a[4]) }),
  permute: (a) => ({ bytes: 2 * (a[0] as FloatArray).length * 4 }),
  layerNorm: (a) => ({ bytes: 2 * f32((a[6] as number) * (a[7] as number)) }),
  layerNormBackward: (a) => ({ bytes: 3 * f32((a[8] as number) * (a[9] as number)) }),
  softmax: (a) => ({ bytes: 2 * f32((a[2] as number) * (a[3] as number)) }),
  softmaxBackward: (a) => ({ bytes: 3 * f32((a[3] as number) * (a[4] as number)) }),
  crossEntropy: (a) => ({ bytes: f32((a[4] as number) * (a[5] as number)) }),
  crossEntropyBackward: (a) => ({ bytes: 2 * f32((a[4] as number) * (a[5] as number)) }),
  embedding: (a) => ({ bytes: 2 * f32((a[3] as number) * (a[4] as number)) }),
  embeddingBackward: (a) => ({ bytes: 2 * f32((a[3] as number) * (a[4] as number)) }),
  sumRows: (a) => ({ bytes: f32((a[2] as number) * (a[3] as number)) }),
  adamw: (a) => ({ bytes: 7 * f32(a[4]) }),
  // per element: param, m, v read and written, grad read (its element size may be 4 or 8)
  adamwGroup: (a) => ({ bytes: 7 * byteLengths(a[0]) }),
  sumSquaresGroup: (a) => ({ bytes: byteLengths(a[0]) }),
  dropout: (a) => ({ bytes: 2 * f32(a[2]) }),
  dropoutBackward: (a) => ({ bytes: 2 * f32(a[2]) }),
};

/** "gemm 4096x128·128x384 NT": the shape of op(A)·op(B) and which operands are transposed. */
function gemmName(a: unknown[]): string {
  const [m, n, k, batch] = [a[4], a[5], a[6], a[10]] as number[];
  return `gemm ${batch! > 1 ? `${batch}×` : ''}${m}x${k}·${k}x${n} ${a[7] ? 'T' : 'N'}${a[8] ? 'T' : 'N'}`;
}

export class Profiler {
  readonly stats = new Map<string, OpStats>();
  private started = performance.now();
  /** PRIMER_PROFILE=shapes: one row per GEMM shape instead of one for all GEMMs. */
  constructor(readonly detailed = false) {}

  /** A backend whose every kernel call is timed into this profiler. */
  wrap(inner: Backend): Backend {
    const wrapped: Record<string, unknown> = { name: inner.name };
    for (const key of Object.keys(inner) as Array<keyof Backend>) {
      const fn = inner[key];
      if (typeof fn !== 'function') continue;
      const work = WORK[key];
      const detail = key === 'gemm' && this.detailed;
      wrapped[key] = (...args: unknown[]) => {
        const t0 = performance.now();
        const result = (fn as (...a: unknown[]) => unknown).apply(inner, args);
        const ms = performance.now() - t0;
        const name = detail ? gemmName(args) : key;
        let s = this.stats.get(name);
        if (!s) this.stats.set(name, (s = { calls: 0, ms: 0, flops: 0, bytes: 0 }));
        s.calls++;
        s.ms += ms;
        if (work) {
          const w = work(args);
          s.flops += w.flops ?? 0;
          s.bytes += w.bytes ?? 0;
        }
        return result;
      };
    }
    return wrapped as unknown as Backend;
  }

  reset(): void {
    this.stats.clear();
    this.started = performance.now();
  }

  /** The table: kernels by total time, then the time spent outside them. */
  report(): string {
    const wallMs = performance.now() - this.started;
    const rows = [...this.stats.entries()].sort((a, b) => b[1].ms - a[1].ms);
    const kernelMs = rows.reduce((sum, [, s]) => sum + s.ms, 0);
    const pct = (ms: number) => `${((100 * ms) / wallMs).toFixed(1)}%`;
    const rate = (s: OpStats) =>
      s.flops ? `${(s.flops / s.ms / 1e6).toFixed(1)} GFLOP/s` : s.bytes ? `${(s.bytes / s.ms / 1e6).toFixed(1)} GB/s` : '';
    const lines = [
      `primer profile: ${(wallMs / 1000).toFixed(2)} s wall, ${(kernelMs / 1000).toFixed(2)} s in kernels`,
      `${'op'.padEnd(34)}${'calls'.padStart(9)}${'total ms'.padStart(11)}${'share'.padStart(8)}  rate`,
    ];
    for (const [name, s] of rows) {
      lines.push(`${name.padEnd(34)}${String(s.calls).padStart(9)}${s.ms.toFixed(1).padStart(11)}${pct(s.ms).padStart(8)}  ${rate(s)}`);
    }
    lines.push(`${'outside kernels'.padEnd(34)}${''.padStart(9)}${(wallMs - kernelMs).toFixed(1).padStart(11)}${pct(wallMs - kernelMs).padStart(8)}  (TypeScript ops, autograd, data)`);
    return lines.join('\n');
  }
}

let active: Profiler | null = null;

/** The process's profiler when PRIMER_PROFILE is set (or enableProfiling was called), else null. */
export function activeProfiler(): Profiler | null {
  return active;
}

/** Turns profiling on for backends created from now on; prints the table at exit unless told not to. */
export function enableProfiling(o: { printAtExit?: boolean } = {}): Profiler {
  if (active) return active;
  active = new Profiler(process.env.PRIMER_PROFILE === 'shapes');
  if (o.printAtExit ?? true) {
    const profiler = active;
    process.once('exit', () => process.stderr.write(`${profiler.report()}\n`));
  }
  return active;
}

export function profilingRequested(): boolean {
  const v = process.env.PRIMER_PROFILE;
  return v !== undefined && v !== '' && v !== '0';
}
