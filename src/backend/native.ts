/**
 * The native backend: C kernels behind N-API (native/*.c), built by node-gyp at install time or, in an
 * installed package, prebuilt for linux-x64 (scripts/install-native.mjs decides).
 * The addon exports one function per Backend method with the same positional arguments.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname, sep } from 'node:path';
import type { Backend } from './types.ts';
import { BACKEND_METHODS } from './reference/index.ts';

export interface NativeAddon extends Omit<Backend, 'name'> {
  getThreads(): number;
  setThreads(n: number): void;
  /** Instruction-set path compiled in: avx512bf16 | avx512 | avx2 | neon | generic. */
  buildInfo(): string;
  /** 0: OpenMP threads back on the process's CPUs; 1: workers pinned; 2: all pinned. Returns how many were pinned. */
  pinThreads?(mode: number): number;
}


const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let addon: NativeAddon | null | undefined;
const require = createRequire(import.meta.url);

/**
 * Finds the addon as node-gyp-build does: build/Release (compiled from source) first, then the package's
 * prebuilds/<platform>-<arch>/. Null when there is neither.
 */
function addonPath(): string | null {
  if (process.env.PRIMER_NATIVE_PATH !== undefined) return existsSync(process.env.PRIMER_NATIVE_PATH) ? process.env.PRIMER_NATIVE_PATH : null;
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  let path: string;
  try {
    path = nodeGypBuild.path(root);
  } catch {
    return null;
  }
  if (path.includes(`${sep}prebuilds${sep}linux-x64${sep}`) && !cpuRunsPrebuild()) {
    // npm may skip a dependency's install script (which would have compiled from source here), and
    // loading the prebuild would then die on the first AVX2 instruction: fall back instead.
    process.emitWarning('primer: the prebuilt native addon needs an x86-64-v3 CPU (AVX2, FMA); using the JavaScript backend. Compile it for this CPU with `npm rebuild primer --build-from-source` (npm runs primer\'s install script once allowed: `npm install-scripts approve primer`).');
    return null;
  }
  return path;
}

/** Whether this CPU has x86-64-v3's features, which the linux-x64 prebuild is compiled for (same list as scripts/install-native.mjs). */
function cpuRunsPrebuild(): boolean {
  try {
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
    return ['avx', 'avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm'].every((f) => flags.has(f));
  } catch {
    return false;
  }
}

/** Loads the compiled addon (or $PRIMER_NATIVE_PATH); null when it is not built. */
export function loadNativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  const path = addonPath();
  if (path === null) return (addon = null);
  // libgomp spins ~300k iterations between parallel regions by default; when the machine is busy
  // (other processes, other Primer workers) spinning threads steal the cores the kernels need and a
  // step can run 5–10× slower. A short spin keeps back-to-back kernels fast on an idle machine and
  // yields quickly on a busy one. Must be set before the addon (and libgomp) loads.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.GOMP_SPINCOUNT = '10000';
  }
  addon = require(path) as NativeAddon;
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
    throw new Error(`primer: the native addon is not built (no build/Release/primer_native.node, no prebuild for ${process.platform}-${process.arch}). Run "npm run build:native".`);
  }
  const impl: Record<string, unknown> = { name: 'native' };
  for (const m of BACKEND_METHODS) {
    const fn = (a as unknown as Record<string, unknown>)[m];
    impl[m] = typeof fn === 'function' ? fn : (fallback as unknown as Record<string, unknown>)[m];
  }
  return impl as unknown as Backend;
}
