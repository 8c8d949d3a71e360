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

// Free lists in least-recently-used order (a Map iterates in insertion order; touching a key
// re-inserts it). Parked bytes are capped so variable shapes (fine-tuning batches padded to their
// longest text, generation) cannot grow the pool without bound: stale sizes are evicted first.
const free = new Map<string, FloatArray[]>();
const stats: Stats = { liveBytes: 0, peakBytes: 0, freeBytes: 0, created: 0, reused: 0 };
const MIN_FREE_CAP = 256 * 2 ** 20;
let freeCapOverride: number | null = null;

/** Parked bytes allowed: the peak working set of a step (so a steady loop reuses everything), ≥ 256 MiB. */
function freeCap(): number {
  return freeCapOverride ?? Math.max(MIN_FREE_CAP, stats.peakBytes);
}

/** Overrides the cap on parked bytes (null restores the default). */
export function setPoolCap(bytes: number | null): void {
  freeCapOverride = bytes;
}

const key = (dtype: DType, n: number) => (dtype === 'float32' ? 'f' : 'd') + n;

/** A buffer of n elements with unspecified contents. */
export function allocBuffer(n: number, dtype: DType): FloatArray {
  const k = key(dtype, n);
  const list = free.get(k);
  let buf = list?.pop();
  if (list) {
    free.delete(k);
    if (list.length) free.set(k, list);
  }
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
  stats.liveBytes -= buf.byteLength;
  const cap = freeCap();
  if (buf.byteLength > cap) return;
  for (const [oldKey, oldList] of free) {
    if (stats.freeBytes + buf.byteLength <= cap) break;
    while (oldList.length && stats.freeBytes + buf.byteLength > cap) stats.freeBytes -= oldList.pop()!.byteLength;
    if (!oldList.length) free.delete(oldKey);
  }
  const list = free.get(k) ?? [];
  free.delete(k);
  free.set(k, list);
  list.push(buf);
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
