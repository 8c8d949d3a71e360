/**
 * Backend selection. Native is the default; `PRIMER_BACKEND=reference` (or setBackend('reference'))
 * selects the plain-TypeScript reference backend.
 */
import { availableParallelism } from 'node:os';
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

/** Whether pinComputeThreads holds the pin (its nested calls do nothing). */
let pinned = false;

/**
 * Pins each native thread (the calling one included) to its own CPU for a long compute loop, and
 * returns the function that unpins them. Why: with another process on the cores, an unpinned team
 * is shuffled between CPUs by the scheduler and every OpenMP barrier waits for whichever thread
 * was just moved behind the other process; pinned, the team kept 85–100 % of its quiet speed
 * beside a `nice -n 10` busy loop on 2 cores, unpinned 45 % (BENCHMARKS.md, "Training under load").
 * Only when the team has exactly one thread per CPU this process may use, so two pinned processes
 * never pile onto the same few cores of a larger machine; PRIMER_PIN_THREADS=0 turns it off.
 * Unpinning matters: threads Node creates later inherit the main thread's CPU mask.
 */
export function pinComputeThreads(): () => void {
  // Nested calls (a generation inside a training callback) leave the outermost pin in charge.
  if (pinned) return () => {};
  const addon = backend().name === 'native' ? loadNativeAddon() : null;
  if (!addon?.pinThreads || process.env.PRIMER_PIN_THREADS === '0') return () => {};
  const threads = addon.getThreads();
  if (threads < 2 || threads !== availableParallelism()) return () => {};
  if (addon.pinThreads(2) === 0) return () => {};
  pinned = true;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    pinned = false;
    addon.pinThreads!(0);
  };
}

export { referenceBackend };
export type { Backend };
