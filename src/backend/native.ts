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

/** x86-64-v3's features, which the linux-x64 prebuild is compiled for (abm is how /proc/cpuinfo names LZCNT; scripts/install-native.mjs checks the same). */
const X86_64_V3 = ['avx', 'avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm'];
/** What the linux-x64-avx512bf16 prebuild needs besides: x86-64-v4's AVX-512 subsets and AVX512-BF16 (Zen 4, Zen 5, Sapphire Rapids). */
const AVX512_BF16 = ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl', 'avx512_bf16'];

/** The CPU's feature flags from /proc/cpuinfo (empty where there is none). */
function cpuFlags(): Set<string> {
  try {
    return new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/**
 * Which addon to load, given node-gyp-build's choice (`found`: build/Release, compiled from source for
 * this machine, first; else the package's prebuilds/<platform>-<arch>/) and the CPU's flags. A from-source
 * build is always kept. The linux-x64 prebuild (x86-64-v3: AVX2 + FMA) is swapped for the
 * linux-x64-avx512bf16 one (AVX-512 micro-kernels, VDPBF16PS for bf16) where the CPU has those features
 * and that prebuild exists, and refused (null) on a CPU without x86-64-v3. The instruction set is thus
 * picked at load time, so a package installed from the registry gets the AVX-512 kernels on Zen 4/5.
 */
export function choosePrebuild(found: string, flags: ReadonlySet<string>, exists: (path: string) => boolean = existsSync): string | null {
  const v3Dir = `${sep}prebuilds${sep}linux-x64${sep}`;
  const at = found.lastIndexOf(v3Dir);
  if (at < 0) return found;
  if (!X86_64_V3.every((f) => flags.has(f))) return null;
  const wide = `${found.slice(0, at)}${sep}prebuilds${sep}linux-x64-avx512bf16${sep}${found.slice(at + v3Dir.length)}`;
  return AVX512_BF16.every((f) => flags.has(f)) && exists(wide) ? wide : found;
}

/** The addon to load ($PRIMER_NATIVE_PATH, else as choosePrebuild says); null when there is none that runs here. */
function addonPath(): string | null {
  if (process.env.PRIMER_NATIVE_PATH !== undefined) return existsSync(process.env.PRIMER_NATIVE_PATH) ? process.env.PRIMER_NATIVE_PATH : null;
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  let found: string;
  try {
    found = nodeGypBuild.path(root);
  } catch {
    return null;
  }
  const path = choosePrebuild(found, cpuFlags());
  if (path === null) {
    // npm may skip a dependency's install script (which would have compiled from source here), and
    // loading the prebuild would then die on the first AVX2 instruction: fall back instead.
    process.emitWarning('primer: the prebuilt native addon needs an x86-64-v3 CPU (AVX2, FMA); using the JavaScript backend. Compile it for this CPU with `npm rebuild primer --build-from-source` (npm runs primer\'s install script once allowed: `npm install-scripts approve primer`).');
  }
  return path;
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
