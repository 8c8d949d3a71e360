/**
 * Buffer pool: activations and temporary gradients are recycled between training steps, so a
 * steady-state step allocates no new large ArrayBuffers (which would otherwise churn V8's heap and
 * make RSS drift). Buffers are keyed by dtype and exact length — training shapes repeat every step.
 */
import type { FloatArray } from '../backend/types.ts';

export type DType = 'float32' | 'float64';

interface Stats {
  /** Bytes currently handed out. */
  liveBytes: number;
  /** Highest liveBytes seen since the last resetPeak(). */
  peakBytes: number;
  /** Bytes parked in the free lists. */
  freeBytes: number;
  /** How many new ArrayBuffers the pool has created (constant in a steady-state loop). */
  created: number;
  /** How many requests were served from the free lists. */
  reused: number;
}

const free = new Map<string, FloatArray[]>();
const stats: Stats = { liveBytes: 0, peakBytes: 0, freeBytes: 0, created: 0, reused: 0 };

const key = (dtype: DType, n: number) => (dtype === 'float32' ? 'f' : 'd') + n;

/** A buffer of n elements with unspecified contents. */
export function allocBuffer(n: number, dtype: DType): FloatArray {
  const list = free.get(key(dtype, n));
  let buf = list?.pop();
  if (buf) {
    stats.reused++;
    stats.freeBytes -= buf.byteLength;
  } else {
    buf = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
    stats.created++;
  }
  stats.liveBytes += buf.byteLength;
  if (stats.liveBytes > stats.peakBytes) stats.peakBytes = stats.liveBytes;
  return buf;
}

/** A zero-filled buffer of n elements. */
export function allocZeroed(n: number, dtype: DType): FloatArray {
  const buf = allocBuffer(n, dtype);
  buf.fill(0);
  return buf;
}

/** Returns a buffer obtained from allocBuffer/allocZeroed to the pool. */
export function releaseBuffer(buf: FloatArray): void {
  const dtype: DType = buf instanceof Float32Array ? 'float32' : 'float64';
  const k = key(dtype, buf.length);
  let list = free.get(k);
  if (!list) free.set(k, (list = []));
  list.push(buf);
  stats.liveBytes -= buf.byteLength;
  stats.freeBytes += buf.byteLength;
}

export function poolStats(): Readonly<Stats> {
  return { ...stats };
}

export function resetPeak(): void {
  stats.peakBytes = stats.liveBytes;
}

/** Drops every parked buffer (e.g. after changing batch shapes) so the GC can reclaim them. */
export function clearPool(): void {
  free.clear();
  stats.freeBytes = 0;
}
