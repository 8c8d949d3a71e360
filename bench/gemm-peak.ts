/**
 * The machine's GEMM peak as MFU's denominator, measured in the benchmark's own run (a figure from
 * bench:kernels on another day or machine would not describe this one): the best all-thread
 * GFLOP/s over a few large square-ish shapes, fp32 and bf16.
 */
import { loadNativeAddon } from '../src/backend/native.ts';

const SHAPES: Array<[number, number, number]> = [[1024, 1024, 1024], [2048, 512, 2048]];

export interface GemmPeak { fp32: number; bf16: number; shapes: string }

export function measureGemmPeak(seconds = 0.3): GemmPeak {
  const addon = loadNativeAddon();
  if (!addon) throw new Error('measureGemmPeak: the native addon is not built (npm run build:native)');
  const best = (bf16: boolean) => {
    let top = 0;
    for (const [m, k, n] of SHAPES) {
      const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
      const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 40503) % 1000) / 1000 - 0.5);
      const c = new Float32Array(m * n);
      const call = () => addon.gemm(a, b, c, null, m, n, k, false, false, false, 1, 0, 0, 0, bf16);
      call();
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        const t0 = performance.now();
        call();
        top = Math.max(top, (2 * m * n * k) / ((performance.now() - t0) / 1000) / 1e9);
      }
    }
    return top;
  };
  return { fp32: best(false), bf16: best(true), shapes: SHAPES.map(([m, k, n]) => `${m}×${k}×${n}`).join(', ') };
}
