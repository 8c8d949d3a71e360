/**
 * pinComputeThreads (src/backend/index.ts): during training each native thread, the Node main thread
 * included, sits on its own CPU; afterwards every thread is back on the process's CPU mask (threads
 * Node creates later inherit the main thread's mask). Read from the kernel: /proc/self/task/<tid>/status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { getNumThreads, pinComputeThreads, setNumThreads } from '../../src/backend/index.ts';
import { requireNative } from './kernels-helpers.ts';

/** CPUs each thread of this process may run on, by thread id. */
function threadMasks(): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync('/proc/self/task')) {
    const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
    out.set(Number(tid), /^Cpus_allowed_list:\s*(\S+)/m.exec(status)![1]!);
  }
  return out;
}
const single = (list: string) => /^\d+$/.test(list);

/** One native thread per CPU, the team started (a GEMM); returns the thread count to restore. */
function fullTeam(): number {
  const saved = getNumThreads();
  setNumThreads(availableParallelism());
  requireNative().gemm(new Float32Array(64 * 64), new Float32Array(64 * 64), new Float32Array(64 * 64), null, 64, 64, 64, false, false, false, 1, 0, 0, 0, false);
  return saved;
}

test('training threads are pinned one per CPU while pinned, and released after', { skip: process.platform !== 'linux' && 'Linux affinity API' }, () => {
  const cpus = availableParallelism();
  const processMask = threadMasks().get(process.pid)!;
  const saved = fullTeam();
  try {
    const release = pinComputeThreads();
    const during = threadMasks();
    if (cpus >= 2) {
      assert.ok(single(during.get(process.pid)!), `main thread mask while pinned: ${during.get(process.pid)}`);
      const pinned = [...during.values()].filter(single);
      assert.equal(new Set(pinned).size, cpus, `one thread per CPU: ${pinned.join(' ')}`);
    } else {
      assert.equal(during.get(process.pid), processMask, 'one CPU: nothing to pin');
    }
    release();
    const after = threadMasks();
    for (const [tid, mask] of after) assert.equal(mask, processMask, `thread ${tid} released to the process mask`);

    // A team smaller than the CPUs could pile onto the same cores as another process: never pinned.
    if (cpus >= 2) {
      setNumThreads(cpus - 1);
      const releaseSmall = pinComputeThreads();
      assert.equal(threadMasks().get(process.pid), processMask);
      releaseSmall();
      setNumThreads(cpus);
      process.env.PRIMER_PIN_THREADS = '0';
      const releaseOff = pinComputeThreads();
      assert.equal(threadMasks().get(process.pid), processMask, 'PRIMER_PIN_THREADS=0 turns pinning off');
      releaseOff();
    }
  } finally {
    delete process.env.PRIMER_PIN_THREADS;
    setNumThreads(saved);
  }
});

test('a nested pin (generation inside training) leaves the outer one in charge; a finished decoding is pinned, then released', { skip: process.platform !== 'linux' && 'Linux affinity API' }, async () => {
  const cpus = availableParallelism();
  const processMask = threadMasks().get(process.pid)!;
  if (cpus < 2) {
    pinComputeThreads()();
    assert.equal(threadMasks().get(process.pid), processMask, 'one CPU: nothing to pin');
    return;
  }
  const saved = fullTeam();
  try {
    const outer = pinComputeThreads();
    const inner = pinComputeThreads();
    inner();
    assert.ok(single(threadMasks().get(process.pid)!), 'still pinned after the inner release');
    outer();
    outer(); // a second release is a no-op
    assert.equal(threadMasks().get(process.pid), processMask);

    const { pinnedDecoding } = await import('../../src/infer/decode.ts');
    const seen = pinnedDecoding(() => threadMasks().get(process.pid)!);
    assert.ok(single(seen), `main thread mask during decoding: ${seen}`);
    assert.equal(threadMasks().get(process.pid), processMask, 'released after decoding');
    assert.throws(() => pinnedDecoding(() => { throw new Error('boom'); }), /boom/);
    assert.equal(threadMasks().get(process.pid), processMask, 'released when decoding throws');
  } finally {
    setNumThreads(saved);
  }
});
