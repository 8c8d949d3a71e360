/**
 * The native backend: C kernels behind N-API (native/*.c), built by node-gyp at install time.
 * The addon exports one function per Backend method with the same positional arguments.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import type { Backend } from './types.ts';

export interface NativeAddon extends Omit<Backend, 'name'> {
  getThreads(): number;
  setThreads(n: number): void;
  /** Instruction-set path compiled in: avx512bf16 | avx512 | avx2 | neon | generic. */
  buildInfo(): string;
}

const BACKEND_METHODS = [
  'gemm', 'sumRows', 'add', 'mul', 'axpy', 'scale', 'sumSquares', 'unary', 'unaryBackward', 'permute',
  'layerNorm', 'layerNormBackward', 'softmax', 'softmaxBackward', 'crossEntropy', 'crossEntropyBackward',
  'embedding', 'embeddingBackward', 'dropout', 'dropoutBackward', 'attention', 'attentionBackward', 'adamw',
] as const satisfies ReadonlyArray<keyof Backend>;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let addon: NativeAddon | null | undefined;

/** Loads build/Release/primer_native.node (or $PRIMER_NATIVE_PATH); null when it is not built. */
export function loadNativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  const path = process.env.PRIMER_NATIVE_PATH ?? join(root, 'build', 'Release', 'primer_native.node');
  if (!existsSync(path)) return (addon = null);
  // libgomp spins ~300k iterations between parallel regions by default; when the machine is busy
  // (other processes, other Primer workers) spinning threads steal the cores the kernels need and a
  // step can run 5–10× slower. A short spin keeps back-to-back kernels fast on an idle machine and
  // yields quickly on a busy one. Must be set before the addon (and libgomp) loads.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.GOMP_SPINCOUNT = '10000';
  }
  addon = createRequire(import.meta.url)(path) as NativeAddon;
  return addon;
}

/** Methods the loaded addon does not (yet) provide. */
export function missingNativeMethods(): string[] {
  const a = loadNativeAddon();
  return BACKEND_METHODS.filter((m) => typeof (a as unknown as Record<string, unknown> | null)?.[m] !== 'function');
}

/**
 * The native backend. Throws when the addon is not built; methods the addon lacks fall back to the
 * given backend (the reference one), so a partial build still runs — missingNativeMethods() lists them.
 */
export function createNativeBackend(fallback: Backend): Backend {
  const a = loadNativeAddon();
  if (!a) {
    throw new Error(`primer: the native addon is not built (expected build/Release/primer_native.node). Run "npm run build:native".`);
  }
  const impl: Record<string, unknown> = { name: 'native' };
  for (const m of BACKEND_METHODS) {
    const fn = (a as unknown as Record<string, unknown>)[m];
    impl[m] = typeof fn === 'function' ? fn : (fallback as unknown as Record<string, unknown>)[m];
  }
  return impl as unknown as Backend;
}
