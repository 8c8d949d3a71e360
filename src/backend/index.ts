/**
 * Backend selection. Native is the default; `PRIMER_BACKEND=reference` (or setBackend('reference'))
 * selects the plain-TypeScript reference backend.
 */
import type { Backend } from './types.ts';
import { referenceBackend } from './reference/index.ts';
import { createNativeBackend, loadNativeAddon } from './native.ts';
import { activeProfiler, enableProfiling, profilingRequested } from './profile.ts';

export type BackendName = 'native' | 'reference';
let current: Backend | null = null;
let native: Backend | null = null;

export function getBackendByName(name: BackendName): Backend {
  if (name === 'reference') return referenceBackend;
  if (name === 'native') return (native ??= createNativeBackend(referenceBackend));
  throw new Error(`primer: unknown backend "${String(name)}" (expected "native" or "reference")`);
}

export function backend(): Backend {
  if (current) return current;
  const env = process.env.PRIMER_BACKEND as BackendName | undefined;
  current = profiled(getBackendByName(env ?? (loadNativeAddon() ? 'native' : 'reference')));
  return current;
}

export function setBackend(name: BackendName): void {
  current = profiled(getBackendByName(name));
}

/** With PRIMER_PROFILE=1 (or after enableProfiling) every kernel call is timed; see profile.ts. */
function profiled(b: Backend): Backend {
  if (!activeProfiler() && profilingRequested()) enableProfiling();
  return activeProfiler()?.wrap(b) ?? b;
}

/** Starts the per-op profiler now (the CLI's --profile); the table prints at exit. */
export function startProfiling(): void {
  enableProfiling();
  if (current) current = profiled(current.name === 'native' ? getBackendByName('native') : referenceBackend);
}

/** Number of threads the native kernels use (OpenMP); 1 for the reference backend. */
export function setNumThreads(n: number): void {
  loadNativeAddon()?.setThreads(n);
}
export function getNumThreads(): number {
  return loadNativeAddon()?.getThreads() ?? 1;
}

export { referenceBackend };
export type { Backend };
