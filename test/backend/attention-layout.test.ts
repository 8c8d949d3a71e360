/**
 * The fused attention kernels' token-major layout (rowStrides: q, k, v as column ranges of wider
 * rows, e.g. GPT-2's fused c_attn output, and out with the heads side by side) and the backward's
 * accumulate = false (dq, dk, dv overwritten, never read). The native kernels on token-major rows
 * must give exactly the bits of the head-major call on the same values (the packing reads the same
 * floats), and the reference the same values as its head-major spec; overwriting must equal adding
 * into zeros even where a whole key block is masked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward } from '../../src/backend/reference/attention.ts';
import type { FloatArray } from '../../src/backend/types.ts';
import { Rng, assertClose, randn, requireNative } from './kernels-helpers.ts';
import type { NativeAddon } from '../../src/backend/native.ts';

type Kernels = Pick<NativeAddon, 'attention' | 'attentionBackward'>;
const reference: Kernels = { attention, attentionBackward };

interface Case { b: number; h: number; hkv: number; tq: number; tk: number; d: number; causal: boolean; masked: boolean; fused: boolean }
const label = (c: Case) => `b=${c.b} h=${c.h} kv=${c.hkv} tq=${c.tq} tk=${c.tk} d=${c.d} causal=${c.causal} masked=${c.masked} fused=${c.fused}`;

const cases: Case[] = [
  { b: 2, h: 4, hkv: 4, tq: 16, tk: 16, d: 8, causal: true, masked: false, fused: true }, // GPT-2's c_attn rows [q | k | v]
  { b: 3, h: 2, hkv: 2, tq: 70, tk: 70, d: 20, causal: true, masked: false, fused: true }, // two key blocks, d not a whole vector
  { b: 2, h: 4, hkv: 2, tq: 5, tk: 130, d: 5, causal: false, masked: true, fused: false }, // GQA, Tq ≠ Tk, a fully masked key block
  { b: 1, h: 6, hkv: 1, tq: 33, tk: 33, d: 16, causal: false, masked: true, fused: false }, // multi-query
];

/** Token-major buffers holding the case's q, k, v (and out, dout) with spare columns around the heads. */
function layout(c: Case) {
  const [cq, ckv] = [c.h * c.d, c.hkv * c.d];
  if (c.fused) {
    const ld = cq + 2 * ckv;
    return { ld: [ld, ld, cq + 3] as [number, number, number], off: [0, cq, cq + ckv], shared: true };
  }
  return { ld: [cq + 2, ckv + 5, cq + 3] as [number, number, number], off: [1, 2, 0], shared: false };
}

function keyMask(c: Case): Uint8Array | null {
  if (!c.masked) return null;
  // batch 0 sees only its first 60 keys (the second and third key blocks are masked whole), the rest all
  return Uint8Array.from({ length: c.b * c.tk }, (_, i) => (i < c.tk && i % c.tk >= 60 ? 0 : 1));
}

/** head-major index (bi, hh, i, c) → token-major element of rows `ld` wide from column `off`. */
function convert(x: ArrayLike<number>, into: Float32Array, b: number, heads: number, t: number, d: number, ld: number, off: number, toTokenMajor: boolean): void {
  for (let bi = 0; bi < b; bi++)
    for (let hh = 0; hh < heads; hh++)
      for (let i = 0; i < t; i++)
        for (let c = 0; c < d; c++) {
          const hm = ((bi * heads + hh) * t + i) * d + c, tm = (bi * t + i) * ld + off + hh * d + c;
          if (toTokenMajor) into[tm] = x[hm]!;
          else into[hm] = x[tm]!;
        }
}

interface Result { out: Float32Array; lse: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array }

/** Forward + backward in the head-major layout (dq, dk, dv start as `init`: zeros, or NaN with accumulate off). */
function headMajor(impl: Kernels, c: Case, q: Float32Array, k: Float32Array, v: Float32Array, dout: Float32Array, bf16: boolean, overwrite: boolean): Result {
  const [nq, nk] = [c.b * c.h * c.tq * c.d, c.b * c.hkv * c.tk * c.d];
  const out = new Float32Array(nq), lse = new Float32Array(c.b * c.h * c.tq);
  const scale = 1 / Math.sqrt(c.d), mask = keyMask(c);
  impl.attention(q, k, v, out, lse, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, bf16, c.hkv);
  const fill = overwrite ? NaN : 0;
  const [dq, dk, dv] = [new Float32Array(nq).fill(fill), new Float32Array(nk).fill(fill), new Float32Array(nk).fill(fill)];
  impl.attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, bf16, c.hkv, null, !overwrite);
  return { out, lse, dq, dk, dv };
}

/** The same call on token-major rows; results converted back to head-major for comparison. */
function tokenMajor(impl: Kernels, c: Case, q: Float32Array, k: Float32Array, v: Float32Array, dout: Float32Array, bf16: boolean, overwrite: boolean): Result {
  const { ld, off, shared } = layout(c);
  const rows = (t: number, w: number) => new Float32Array(c.b * t * w);
  const qkv = shared ? rows(c.tq, ld[0]) : null;
  const [Q, K, V] = shared ? [qkv!, qkv!, qkv!] : [rows(c.tq, ld[0]), rows(c.tk, ld[1]), rows(c.tk, ld[1])];
  convert(q, Q, c.b, c.h, c.tq, c.d, ld[0], off[0]!, true);
  convert(k, K, c.b, c.hkv, c.tk, c.d, ld[1], off[1]!, true);
  convert(v, V, c.b, c.hkv, c.tk, c.d, ld[1], off[2]!, true);
  const at = (x: Float32Array, o: number) => x.subarray(o);
  const DO = rows(c.tq, ld[2]);
  convert(dout, DO, c.b, c.h, c.tq, c.d, ld[2], 0, true);
  const O = rows(c.tq, ld[2]).fill(7), lse = new Float32Array(c.b * c.h * c.tq);
  const scale = 1 / Math.sqrt(c.d), mask = keyMask(c);
  impl.attention(at(Q, off[0]!), at(K, off[1]!), at(V, off[2]!), O, lse, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, bf16, c.hkv, ld);
  const fill = overwrite ? NaN : 0;
  const dqkv = shared ? rows(c.tq, ld[0]).fill(fill) : null;
  const [dQ, dK, dV] = shared ? [dqkv!, dqkv!, dqkv!] : [rows(c.tq, ld[0]).fill(fill), rows(c.tk, ld[1]).fill(fill), rows(c.tk, ld[1]).fill(fill)];
  impl.attentionBackward(at(Q, off[0]!), at(K, off[1]!), at(V, off[2]!), O, lse, DO, at(dQ, off[0]!), at(dK, off[1]!), at(dV, off[2]!),
    c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, bf16, c.hkv, ld, !overwrite);
  const [nq, nk] = [c.b * c.h * c.tq * c.d, c.b * c.hkv * c.tk * c.d];
  const back = (x: Float32Array, n: number, heads: number, t: number, w: number, o: number) => {
    const r = new Float32Array(n);
    convert(x, r, c.b, heads, t, c.d, w, o, false);
    return r;
  };
  // columns outside the heads are never written (7 stays 7 in out's spare columns)
  for (let r = 0; r < c.b * c.tq; r++) for (let col = c.h * c.d; col < ld[2]; col++) assert.equal(O[r * ld[2] + col], 7, `${label(c)}: out spare column written`);
  return {
    out: back(O, nq, c.h, c.tq, ld[2], 0), lse,
    dq: back(dQ, nq, c.h, c.tq, ld[0], off[0]!), dk: back(dK, nk, c.hkv, c.tk, ld[1], off[1]!), dv: back(dV, nk, c.hkv, c.tk, ld[1], off[2]!),
  };
}

function inputs(c: Case, rng: Rng) {
  const [nq, nk] = [c.b * c.h * c.tq * c.d, c.b * c.hkv * c.tk * c.d];
  const r = (n: number) => Float32Array.from(randn(rng, n));
  return { q: r(nq), k: r(nk), v: r(nk), dout: r(nq) };
}

const keys = ['out', 'lse', 'dq', 'dk', 'dv'] as const;
function assertSame(a: Result, b: Result, what: string): void {
  for (const key of keys) assert.deepEqual(Array.from(a[key]), Array.from(b[key]), `${what}: ${key}`);
}

test('native attention on token-major rows gives the head-major bits; accumulate = false equals adding into zeros', () => {
  const native = requireNative();
  const rng = new Rng(41);
  for (const c of cases) {
    const x = inputs(c, rng);
    for (const bf16 of [false, true]) {
      const want = headMajor(native, c, x.q, x.k, x.v, x.dout, bf16, false);
      assert.ok(want.dk.every(Number.isFinite));
      assertSame(headMajor(native, c, x.q, x.k, x.v, x.dout, bf16, true), want, `${label(c)} bf16=${bf16} head-major, overwrite`);
      assertSame(tokenMajor(native, c, x.q, x.k, x.v, x.dout, bf16, false), want, `${label(c)} bf16=${bf16} token-major`);
      assertSame(tokenMajor(native, c, x.q, x.k, x.v, x.dout, bf16, true), want, `${label(c)} bf16=${bf16} token-major, overwrite`);
    }
  }
});

test('reference attention on token-major rows equals its head-major spec, and the native kernels match it', () => {
  const native = requireNative();
  const rng = new Rng(42);
  for (const c of cases) {
    const x = inputs(c, rng);
    const want = headMajor(reference, c, x.q, x.k, x.v, x.dout, false, false);
    for (const overwrite of [false, true]) {
      assertSame(tokenMajor(reference, c, x.q, x.k, x.v, x.dout, false, overwrite), want, `${label(c)} overwrite=${overwrite}`);
      const got = tokenMajor(native, c, x.q, x.k, x.v, x.dout, false, overwrite);
      for (const key of keys) assertClose(got[key], want[key], 2e-5, `${label(c)} native vs reference ${key}`, 1e-3);
    }
  }
});

test('token-major attention rejects row strides narrower than the heads and rows past the end of a buffer', () => {
  const native = requireNative();
  const [b, h, t, d] = [2, 2, 3, 4];
  const f = (n: number) => new Float32Array(n);
  for (const impl of [native, reference]) {
    assert.throws(() => impl.attention(f(100), f(100), f(100), f(100), f(b * h * t), b, h, t, t, d, 1, true, null, false, h, [7, 8, 8]),
      (e: Error) => e instanceof RangeError && /rowStrides\[0\]/.test(e.message), 'stride 7 < 2 heads × 4');
    // the last row of q starts at (b·t − 1)·24 and needs 8 floats
    const need = (b * t - 1) * 24 + h * d;
    assert.throws(() => impl.attention(f(need - 1), f(need), f(need), f(need), f(b * h * t), b, h, t, t, d, 1, true, null, false, h, [24, 24, 24]),
      (e: Error) => e instanceof RangeError && /q has/.test(e.message), 'q one float short');
    const ok: FloatArray[] = [f(need), f(need), f(need), f(need)];
    impl.attention(ok[0]!, ok[1]!, ok[2]!, ok[3]!, f(b * h * t), b, h, t, t, d, 1, true, null, false, h, [24, 24, 24]);
  }
});
