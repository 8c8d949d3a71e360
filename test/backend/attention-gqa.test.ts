/**
 * Grouped-query / multi-query attention (kvHeads < h) in the fused attention kernels: the reference
 * against finite differences and against the repeat-K/V composition (HF's repeat_kv, what llama.ts
 * did before), the native kernels against the reference (fp32 and bf16), against their own
 * repeated-K/V results, and across thread counts (the split backward schedule).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward } from '../../src/backend/reference/attention.ts';
import type { FloatArray } from '../../src/backend/types.ts';
import { Rng, assertClose, randn, requireNative } from './kernels-helpers.ts';
import type { NativeAddon } from '../../src/backend/native.ts';

interface Case { b: number; h: number; hkv: number; tq: number; tk: number; d: number; causal: boolean; padded: boolean }
type Kernels = Pick<NativeAddon, 'attention' | 'attentionBackward'>;
const reference: Kernels = { attention, attentionBackward };
const label = (c: Case) => `b=${c.b} h=${c.h} kv=${c.hkv} tq=${c.tq} tk=${c.tk} d=${c.d} causal=${c.causal} padded=${c.padded}`;

function keyMask(c: Case): Uint8Array | null {
  if (!c.padded) return null;
  const m = new Uint8Array(c.b * c.tk).fill(1);
  for (let bi = 0; bi < c.b; bi++) for (let j = c.tk - Math.min(c.tk - 1, bi + 1); j < c.tk; j++) m[bi * c.tk + j] = 0;
  return m;
}

/** HF's repeat_kv: (B, Hkv, T, D) → (B, H, T, D), query head j reading kv head ⌊j/(H/Hkv)⌋. */
function repeatKV<T extends FloatArray>(x: T, c: Case): T {
  const g = c.h / c.hkv, size = c.tk * c.d;
  const out = new (x.constructor as new (n: number) => T)(c.b * c.h * size);
  for (let bi = 0; bi < c.b; bi++) for (let hh = 0; hh < c.h; hh++) {
    const src = (bi * c.hkv + Math.floor(hh / g)) * size;
    out.set(x.subarray(src, src + size), (bi * c.h + hh) * size);
  }
  return out;
}
/** The transpose of repeatKV: sums the gradients of a group's copies. */
function sumGroups<T extends FloatArray>(x: T, c: Case): Float64Array {
  const g = c.h / c.hkv, size = c.tk * c.d, out = new Float64Array(c.b * c.hkv * size);
  for (let bi = 0; bi < c.b; bi++) for (let hh = 0; hh < c.h; hh++) {
    const dst = (bi * c.hkv + Math.floor(hh / g)) * size, src = (bi * c.h + hh) * size;
    for (let i = 0; i < size; i++) out[dst + i] += x[src + i]!;
  }
  return out;
}

interface Run { out: FloatArray; lse: FloatArray; dq: FloatArray; dk: FloatArray; dv: FloatArray }
/** Forward then backward (zero-initialised gradients) with kvHeads = hkv (or plain multi-head on repeated K/V). */
function run(impl: Kernels, c: Case, q: FloatArray, k: FloatArray, v: FloatArray, dout: FloatArray, bf16 = false, repeated = false): Run {
  const make = (n: number) => (q instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));
  const [kk, vv, hkv] = repeated ? [repeatKV(k, c), repeatKV(v, c), c.h] : [k, v, c.hkv];
  const mask = keyMask(c), scale = 1 / Math.sqrt(c.d);
  const out = make(q.length), lse = make(c.b * c.h * c.tq), dq = make(q.length), dk = make(kk.length), dv = make(vv.length);
  impl.attention(q, kk, vv, out, lse, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, bf16, hkv);
  impl.attentionBackward(q, kk, vv, out, lse, dout, dq, dk, dv, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, bf16, hkv);
  return repeated ? { out, lse, dq, dk: sumGroups(dk, c), dv: sumGroups(dv, c) } : { out, lse, dq, dk, dv };
}

function inputs(c: Case, rng: Rng, f32: boolean) {
  const conv = (a: Float64Array) => (f32 ? Float32Array.from(a) : a);
  const nq = c.b * c.h * c.tq * c.d, nk = c.b * c.hkv * c.tk * c.d;
  return { q: conv(randn(rng, nq)), k: conv(randn(rng, nk)), v: conv(randn(rng, nk)), dout: conv(randn(rng, nq)) };
}

function compare(a: Run, b: Run, tol: number, what: string): void {
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) assertClose(a[name], b[name], tol, `${name} ${what}`, 1e-3);
}

test('reference GQA attention backward matches finite differences (float64)', () => {
  const rng = new Rng(21);
  for (const c of [
    { b: 2, h: 4, hkv: 2, tq: 4, tk: 4, d: 3, causal: true, padded: false },
    { b: 1, h: 3, hkv: 1, tq: 3, tk: 5, d: 2, causal: true, padded: true },
  ] satisfies Case[]) {
    const x = inputs(c, rng, false);
    const scale = 1 / Math.sqrt(c.d), mask = keyMask(c);
    const out = new Float64Array(x.q.length), lse = new Float64Array(c.b * c.h * c.tq);
    const loss = () => {
      attention(x.q, x.k, x.v, out, lse, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, false, c.hkv);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i]! * x.dout[i]!;
      return s;
    };
    const g = run(reference, c, x.q, x.k, x.v, x.dout);
    for (const [name, arr, grad] of [['dq', x.q, g.dq], ['dk', x.k, g.dk], ['dv', x.v, g.dv]] as const) {
      const numeric = new Float64Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        const x0 = arr[i]!;
        arr[i] = x0 + 1e-6; const up = loss();
        arr[i] = x0 - 1e-6; const down = loss();
        arr[i] = x0;
        numeric[i] = (up - down) / 2e-6;
      }
      assertClose(grad, numeric, 1e-6, `${name} ${label(c)}`);
    }
  }
});

const cases: Case[] = [
  { b: 2, h: 4, hkv: 2, tq: 7, tk: 7, d: 5, causal: true, padded: false },
  { b: 1, h: 6, hkv: 1, tq: 33, tk: 33, d: 32, causal: true, padded: true }, // multi-query
  { b: 2, h: 8, hkv: 2, tq: 129, tk: 129, d: 64, causal: true, padded: false },
  { b: 1, h: 4, hkv: 2, tq: 70, tk: 140, d: 16, causal: true, padded: false }, // KV cache: Tq < Tk
  { b: 2, h: 4, hkv: 4, tq: 9, tk: 9, d: 8, causal: false, padded: true }, // kvHeads = h: plain multi-head
  { b: 2, h: 2, hkv: 1, tq: 1, tk: 65, d: 32, causal: true, padded: true }, // one decode step
];

test('reference GQA attention equals attention on repeated K/V (repeat_kv composition)', () => {
  const rng = new Rng(22);
  for (const c of cases.slice(0, 3)) {
    const x = inputs(c, rng, false);
    compare(run(reference, c, x.q, x.k, x.v, x.dout), run(reference, c, x.q, x.k, x.v, x.dout, false, true), 1e-12, label(c));
  }
});

test('native GQA attention matches the reference and the native repeated-K/V composition (fp32)', () => {
  const nat = requireNative();
  const rng = new Rng(23);
  for (const c of cases) {
    const x = inputs(c, rng, true);
    const got = run(nat, c, x.q, x.k, x.v, x.dout);
    compare(got, run(reference, c, x.q, x.k, x.v, x.dout), 1e-5, `native vs reference ${label(c)}`);
    compare(got, run(nat, c, x.q, x.k, x.v, x.dout, false, true), 1e-5, `native vs native repeated ${label(c)}`);
  }
});

test('native GQA attention with bf16 autocast matches the bf16 reference', () => {
  const nat = requireNative();
  const tol = nat.buildInfo() === 'avx512bf16' ? 1e-2 : 1e-5;
  const rng = new Rng(24);
  for (const c of [cases[0]!, cases[2]!]) {
    const x = inputs(c, rng, true);
    compare(run(nat, c, x.q, x.k, x.v, x.dout, true), run(reference, c, x.q, x.k, x.v, x.dout, true), tol, `bf16 ${label(c)}`);
  }
});

test('native GQA attention backward does not depend on the thread count (one group: split schedule)', () => {
  const nat = requireNative();
  const saved = nat.getThreads();
  const c: Case = { b: 1, h: 4, hkv: 1, tq: 200, tk: 200, d: 24, causal: true, padded: true };
  const x = inputs(c, new Rng(25), true);
  try {
    const runs = [1, 2, 3].map((threads) => { nat.setThreads(threads); return run(nat, c, x.q, x.k, x.v, x.dout); });
    for (const r of runs.slice(1)) for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) assert.deepEqual(r[name], runs[0]![name], name);
  } finally {
    nat.setThreads(saved);
  }
});

test('GQA attention rejects kvHeads that do not divide h, and k/v sized for h heads only when kvHeads says so', () => {
  const nat = requireNative();
  const f = (n: number) => new Float32Array(n);
  const [b, h, t, d] = [1, 4, 3, 2];
  const nq = b * h * t * d, nk = b * 2 * t * d;
  for (const impl of [nat, reference]) {
    impl.attention(f(nq), f(nk), f(nk), f(nq), f(b * h * t), b, h, t, t, d, 1, true, null, false, 2); // valid
    assert.throws(() => impl.attention(f(nq), f(nk), f(nk), f(nq), f(b * h * t), b, h, t, t, d, 1, true, null, false, 3),
      { name: 'RangeError', message: /attention: h = 4 must be a multiple of kvHeads = 3/ });
    assert.throws(() => impl.attention(f(nq), f(nk), f(nk), f(nq), f(b * h * t), b, h, t, t, d, 1, true, null, false),
      (e: Error) => e instanceof RangeError && /attention: k has 12 elements/.test(e.message));
    assert.throws(() => impl.attentionBackward(f(nq), f(nk), f(nk), f(nq), f(b * h * t), f(nq), f(nq), f(nk - 1), f(nk), b, h, t, t, d, 1, true, null, false, 2),
      (e: Error) => e instanceof RangeError && /attentionBackward: dk has 11 elements/.test(e.message));
  }
});
