/**
 * Fused attention with relative-position logits (HF relative_key: `relative` [B, T, H, 2T−1] adds
 * r_ij = relative[b, i, h, i − j + T − 1] to q_i·k_j before the scale) and their gradient dRelative:
 * the reference against an explicit score matrix and against finite differences (float64), the
 * native kernels against the reference (fp32 and bf16; key padding, fully masked rows, causal, GQA,
 * token-major rows, T not a multiple of the 64-query block, D not a whole vector, the few-rows path),
 * accumulate = false overwriting every dRelative entry, and thread-count independence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward } from '../../src/backend/reference/attention.ts';
import type { NativeAddon } from '../../src/backend/native.ts';
import type { FloatArray } from '../../src/backend/types.ts';
import { Rng, assertClose, numericGradient, randn, requireNative } from './kernels-helpers.ts';

/** assertClose over the finite entries; the others (lse = −∞ of a fully masked row) must match exactly. */
function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const finite = Array.from(expected, Number.isFinite);
  Array.from(expected).forEach((e, i) => { if (!finite[i]) assert.equal(actual[i], e, `${what}[${i}]`); });
  assertClose(Array.from(actual).filter((_, i) => finite[i]), Array.from(expected).filter((_, i) => finite[i]), tol, what, 1e-3);
}

type Kernels = Pick<NativeAddon, 'attention' | 'attentionBackward'>;
const reference: Kernels = { attention, attentionBackward };

interface Case { b: number; h: number; hkv: number; t: number; d: number; causal: boolean; mask: 'none' | 'padding' | 'fullyMasked' }
const label = (c: Case) => `b=${c.b} h=${c.h} kv=${c.hkv} t=${c.t} d=${c.d} causal=${c.causal} mask=${c.mask}`;
const relSize = (c: Case) => c.b * c.t * c.h * (2 * c.t - 1);

/** 'padding' hides a tail of a different length per batch item and key 1; 'fullyMasked' also every key of item 0. */
function keyMask(c: Case): Uint8Array | null {
  if (c.mask === 'none') return null;
  const m = new Uint8Array(c.b * c.t).fill(1);
  for (let bi = 0; bi < c.b; bi++) {
    for (let j = c.t - Math.min(c.t - 1, Math.floor(c.t / 4) + bi); j < c.t; j++) m[bi * c.t + j] = 0;
    if (c.t > 3) m[bi * c.t + 1] = 0;
  }
  if (c.mask === 'fullyMasked') m.fill(0, 0, c.t);
  return m;
}

interface Inputs { q: FloatArray; k: FloatArray; v: FloatArray; rel: FloatArray; dout: FloatArray }
function inputs(c: Case, rng: Rng, make: (x: Float64Array) => FloatArray): Inputs {
  const [nq, nk] = [c.b * c.h * c.t * c.d, c.b * c.hkv * c.t * c.d];
  // relative logits of the size q·d gives (a few units), so that they move the softmax
  return { q: make(randn(rng, nq)), k: make(randn(rng, nk)), v: make(randn(rng, nk)), rel: make(randn(rng, relSize(c), 2)), dout: make(randn(rng, nq)) };
}

interface Result { out: FloatArray; lse: FloatArray; dq: FloatArray; dk: FloatArray; dv: FloatArray; dRel: FloatArray }

/**
 * Forward and backward (head-major) on arrays like x's. Gradients start as `init` (a number, or NaN
 * with accumulate = false: every element must be overwritten).
 */
function run(impl: Kernels, c: Case, x: Inputs, opts: { bf16?: boolean; overwrite?: boolean; init?: number } = {}): Result {
  const like = (n: number) => (x.q instanceof Float32Array ? new Float32Array(n) : new Float64Array(n));
  const [nq, nk] = [c.b * c.h * c.t * c.d, c.b * c.hkv * c.t * c.d];
  const out = like(nq), lse = like(c.b * c.h * c.t);
  const scale = 1 / Math.sqrt(c.d), mask = keyMask(c), bf16 = opts.bf16 ?? false;
  impl.attention(x.q, x.k, x.v, out, lse, c.b, c.h, c.t, c.t, c.d, scale, c.causal, mask, bf16, c.hkv, null, x.rel);
  const fill = opts.overwrite ? NaN : (opts.init ?? 0);
  const [dq, dk, dv, dRel] = [like(nq).fill(fill), like(nk).fill(fill), like(nk).fill(fill), like(relSize(c)).fill(fill)];
  impl.attentionBackward(x.q, x.k, x.v, out, lse, x.dout, dq, dk, dv, c.b, c.h, c.t, c.t, c.d, scale, c.causal, mask, bf16, c.hkv, null,
    !opts.overwrite, x.rel, dRel);
  return { out, lse, dq, dk, dv, dRel };
}

test('reference relative attention: the scores are scale·(q_i·k_j + relative[b, i, h, i − j + T − 1])', () => {
  const c: Case = { b: 2, h: 2, hkv: 2, t: 4, d: 3, causal: false, mask: 'padding' };
  const x = inputs(c, new Rng(1), (a) => a);
  const { out } = run(reference, c, x);
  const mask = keyMask(c)!, scale = 1 / Math.sqrt(c.d);
  for (let bi = 0; bi < c.b; bi++)
    for (let hh = 0; hh < c.h; hh++)
      for (let i = 0; i < c.t; i++) {
        const head = (bi * c.h + hh) * c.t;
        const s = Array.from({ length: c.t }, (_, j) => {
          if (!mask[bi * c.t + j]) return -Infinity;
          let dot = x.rel[((bi * c.t + i) * c.h + hh) * (2 * c.t - 1) + i - j + c.t - 1]!;
          for (let e = 0; e < c.d; e++) dot += x.q[(head + i) * c.d + e]! * x.k[(head + j) * c.d + e]!;
          return scale * dot;
        });
        const p = s.map((y) => Math.exp(y - Math.max(...s)));
        const sum = p.reduce((a, y) => a + y, 0);
        for (let e = 0; e < c.d; e++) {
          const want = p.reduce((a, y, j) => a + (y / sum) * x.v[(head + j) * c.d + e]!, 0);
          assert.ok(Math.abs(out[(head + i) * c.d + e]! - want) < 1e-12, `b=${bi} h=${hh} i=${i} e=${e}`);
        }
      }
});

test('reference relative attention backward matches finite differences (float64), dRelative included', () => {
  const cases: Case[] = [
    { b: 2, h: 2, hkv: 2, t: 5, d: 3, causal: false, mask: 'padding' },
    { b: 1, h: 2, hkv: 1, t: 4, d: 2, causal: true, mask: 'none' },
    { b: 2, h: 1, hkv: 1, t: 6, d: 3, causal: false, mask: 'fullyMasked' },
  ];
  const rng = new Rng(2);
  for (const c of cases) {
    const x = inputs(c, rng, (a) => a);
    const loss = () => {
      const { out } = run(reference, c, x);
      let s = 0; // Σ dout ∘ out, so its gradient wrt out is dout
      for (let i = 0; i < out.length; i++) s += out[i]! * x.dout[i]!;
      return s;
    };
    for (const overwrite of [false, true]) {
      const g = run(reference, c, x, { overwrite });
      for (const [arr, grad, name] of [[x.q, g.dq, 'dq'], [x.k, g.dk, 'dk'], [x.v, g.dv, 'dv'], [x.rel, g.dRel, 'dRelative']] as const) {
        const numeric = numericGradient(arr, loss, 1e-5);
        assertClose(grad, numeric, 1e-7, `${label(c)} overwrite=${overwrite} ${name}`, 1e-3);
        assert.ok(numeric.some((y) => Math.abs(y) > 1e-3), `${label(c)} ${name}: gradient should not vanish`);
      }
    }
  }
});

const nativeCases: Case[] = [
  { b: 2, h: 3, hkv: 3, t: 7, d: 5, causal: false, mask: 'padding' }, // one block of ≤ 64 queries
  { b: 2, h: 2, hkv: 2, t: 66, d: 20, causal: false, mask: 'padding' }, // last query block of 2 rows (few-rows path), D not a whole vector
  { b: 2, h: 2, hkv: 2, t: 129, d: 32, causal: true, mask: 'fullyMasked' },
  { b: 1, h: 4, hkv: 2, t: 70, d: 16, causal: false, mask: 'padding' }, // GQA
  { b: 1, h: 1, hkv: 1, t: 200, d: 24, causal: false, mask: 'padding' }, // one head: the split backward with several threads
  { b: 16, h: 4, hkv: 4, t: 128, d: 32, causal: false, mask: 'padding' }, // the tiny BERT preset's shapes
  { b: 1, h: 2, hkv: 2, t: 3, d: 1, causal: false, mask: 'none' },
];
const keys = ['out', 'lse', 'dq', 'dk', 'dv', 'dRel'] as const;

test('native relative attention matches the reference (fp32, accumulating and overwriting)', () => {
  const native = requireNative();
  const rng = new Rng(3);
  for (const c of nativeCases) {
    const x = inputs(c, rng, (a) => Float32Array.from(a));
    const want = run(reference, c, x, { init: 0.5 });
    const got = run(native, c, x, { init: 0.5 });
    for (const key of keys) assertNear(got[key], want[key], 2e-5, `${label(c)} ${key}`);
    // accumulate = false: every element written (NaN-filled buffers), equal to adding into zeros
    const fresh = run(native, c, x, { overwrite: true }), zero = run(native, c, x);
    for (const key of keys) assert.deepEqual(Array.from(fresh[key]), Array.from(zero[key]), `${label(c)} overwrite ${key}`);
    // dRelative is 0 wherever no visible key has that distance (e.g. entries m < i of row i)
    const w = 2 * c.t - 1;
    for (let row = 0; row < c.b * c.t * c.h; row++) {
      const i = Math.floor(row / c.h) % c.t;
      for (let m = 0; m < w; m++) if (m < i || m > i + c.t - 1) assert.equal(zero.dRel[row * w + m], 0, `${label(c)} dRel row ${row} entry ${m}`);
    }
  }
});

test('native relative attention with bf16 autocast matches the bf16 reference (relative itself is not rounded)', () => {
  const native = requireNative();
  const dpbf16 = native.buildInfo() === 'avx512bf16';
  const rng = new Rng(4);
  for (const c of [nativeCases[1]!, nativeCases[3]!]) {
    const x = inputs(c, rng, (a) => Float32Array.from(a));
    const want = run(reference, c, x, { bf16: true });
    const got = run(native, c, x, { bf16: true });
    for (const key of keys) assertNear(got[key], want[key], dpbf16 ? 2e-2 : 2e-5, `${label(c)} bf16 ${key}`);
  }
});

test('native relative attention on token-major rows gives the head-major bits', () => {
  const native = requireNative();
  const c: Case = { b: 2, h: 2, hkv: 2, t: 70, d: 12, causal: false, mask: 'padding' };
  const x = inputs(c, new Rng(5), (a) => Float32Array.from(a));
  const want = run(native, c, x);
  // BERT's layout: q its own [B, T, H·D] tensor, k and v the two halves of one [B, T, 2·H·D] projection
  const cw = c.h * c.d, n = c.b * c.t;
  const toRows = (src: FloatArray, dst: Float32Array, ld: number, off: number) => {
    for (let bi = 0; bi < c.b; bi++) for (let hh = 0; hh < c.h; hh++) for (let i = 0; i < c.t; i++) for (let e = 0; e < c.d; e++)
      dst[(bi * c.t + i) * ld + off + hh * c.d + e] = src[((bi * c.h + hh) * c.t + i) * c.d + e]!;
  };
  const fromRows = (src: Float32Array, ld: number, off: number) => {
    const r = new Float32Array(c.b * c.h * c.t * c.d);
    for (let bi = 0; bi < c.b; bi++) for (let hh = 0; hh < c.h; hh++) for (let i = 0; i < c.t; i++) for (let e = 0; e < c.d; e++)
      r[((bi * c.h + hh) * c.t + i) * c.d + e] = src[(bi * c.t + i) * ld + off + hh * c.d + e]!;
    return r;
  };
  const Q = new Float32Array(n * cw), KV = new Float32Array(n * 2 * cw), DO = new Float32Array(n * cw);
  toRows(x.q, Q, cw, 0); toRows(x.k, KV, 2 * cw, 0); toRows(x.v, KV, 2 * cw, cw); toRows(x.dout, DO, cw, 0);
  const strides = [cw, 2 * cw, cw] as const, scale = 1 / Math.sqrt(c.d), mask = keyMask(c);
  const O = new Float32Array(n * cw), lse = new Float32Array(c.b * c.h * c.t);
  native.attention(Q, KV, KV.subarray(cw), O, lse, c.b, c.h, c.t, c.t, c.d, scale, false, mask, false, c.h, strides, x.rel);
  const dQ = new Float32Array(n * cw).fill(NaN), dKV = new Float32Array(n * 2 * cw).fill(NaN), dRel = new Float32Array(relSize(c)).fill(NaN);
  native.attentionBackward(Q, KV, KV.subarray(cw), O, lse, DO, dQ, dKV, dKV.subarray(cw), c.b, c.h, c.t, c.t, c.d, scale, false, mask, false,
    c.h, strides, false, x.rel, dRel);
  const got = { out: fromRows(O, cw, 0), lse, dq: fromRows(dQ, cw, 0), dk: fromRows(dKV, 2 * cw, 0), dv: fromRows(dKV, 2 * cw, cw), dRel };
  for (const key of keys) assert.deepEqual(Array.from(got[key]), Array.from(want[key]), key);
});

test('native relative attention does not depend on the thread count', () => {
  const native = requireNative();
  const saved = native.getThreads();
  try {
    for (const c of [nativeCases[4]!, nativeCases[2]!]) {
      const x = inputs(c, new Rng(6), (a) => Float32Array.from(a));
      const results = [1, 2, 3].map((threads) => {
        native.setThreads(threads);
        return [run(native, c, x, { init: 0.25 }), run(native, c, x, { overwrite: true })];
      });
      for (const r of results.slice(1))
        for (const [mode, res] of r.entries())
          for (const key of keys) assert.deepEqual(Array.from(res[key]), Array.from(results[0]![mode]![key]), `${label(c)} mode ${mode} ${key}`);
    }
  } finally {
    native.setThreads(saved);
  }
});

test('relative logits are checked: Tq = Tk and [B, T, H, 2T−1] elements, in both backends', () => {
  const native = requireNative();
  const [b, h, t, d] = [2, 2, 5, 4];
  const n = b * h * t * d, nr = b * t * h * (2 * t - 1);
  const f = (k: number) => new Float32Array(k);
  for (const impl of [native, reference]) {
    const fwd = (rel: Float32Array, tk = t) => impl.attention(f(n * 2), f(n * 2), f(n * 2), f(n), f(b * h * t), b, h, t, tk, d, 0.5, false, null, false, h, null, rel);
    const bwd = (rel: Float32Array | null, dRel: Float32Array | null) =>
      impl.attentionBackward(f(n), f(n), f(n), f(n), f(b * h * t), f(n), f(n), f(n), f(n), b, h, t, t, d, 0.5, false, null, false, h, null, true, rel, dRel);
    fwd(f(nr)); bwd(f(nr), f(nr)); bwd(null, f(nr)); // valid
    assert.throws(() => fwd(f(nr - 1)), (e: Error) => e instanceof RangeError && /\brelative\b/.test(e.message), 'short relative');
    assert.throws(() => fwd(f(nr * 2), t + 1), (e: Error) => e instanceof RangeError && /tq = tk/.test(e.message), 'Tq ≠ Tk');
    assert.throws(() => bwd(f(nr), f(nr - 1)), (e: Error) => e instanceof RangeError && /dRelative/.test(e.message), 'short dRelative');
  }
  assert.throws(() => native.attention(f(n), f(n), f(n), f(n), f(b * h * t), b, h, t, t, d, 0.5, false, null, false, h, null,
    new Float64Array(nr) as unknown as Float32Array), TypeError);
});
