/**
 * Fused attention: the reference kernels against finite differences (float64), and the native
 * flash-attention kernels against the reference (fp32 and bf16 autocast), including odd sizes,
 * Tq ≠ Tk with the end-aligned causal mask, key padding and fully masked rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attention, attentionBackward } from '../../src/backend/reference/attention.ts';
import { loadNativeAddon, type NativeAddon } from '../../src/backend/native.ts';
import { Rng } from '../../src/util/random.ts';
import type { FloatArray } from '../../src/backend/types.ts';

type MaskKind = 'none' | 'padding' | 'fullyMasked';
interface Case { b: number; h: number; tq: number; tk: number; d: number; causal: boolean; mask: MaskKind }
interface Grads { dq: FloatArray; dk: FloatArray; dv: FloatArray }

function native(): NativeAddon {
  const addon = loadNativeAddon();
  assert.ok(addon, 'the native addon is not built (run npm run build:native)');
  assert.equal(typeof addon.attention, 'function', 'native addon lacks attention');
  assert.equal(typeof addon.attentionBackward, 'function', 'native addon lacks attentionBackward');
  return addon;
}

function randomArray<T extends FloatArray>(make: (n: number) => T, n: number, rng: Rng, scale = 1): T {
  const a = make(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
const f32 = (n: number) => new Float32Array(n);
const f64 = (n: number) => new Float64Array(n);

/** keyMask (b, tk): 'padding' hides a different tail (and one inner key) per batch; 'fullyMasked' also hides every key of batch 0. */
function makeMask(c: Case): Uint8Array | null {
  if (c.mask === 'none') return null;
  const m = new Uint8Array(c.b * c.tk).fill(1);
  for (let bi = 0; bi < c.b; bi++) {
    const pad = Math.min(c.tk - 1, Math.floor(c.tk / 3) + bi);
    for (let j = c.tk - pad; j < c.tk; j++) m[bi * c.tk + j] = 0;
    if (c.tk > 4) m[bi * c.tk + 1] = 0;
  }
  if (c.mask === 'fullyMasked') m.fill(0, 0, c.tk);
  return m;
}

/**
 * max |a − b| / max(max |b|, floor) over the finite entries; infinite entries (lse = −∞) must match
 * exactly. The floor keeps gradients that vanish mathematically (a row seeing a single key has
 * dq = dk = 0) from turning fp32 round-off into a huge relative error.
 */
function relError(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, floor = 1e-30): number {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (!Number.isFinite(e)) { assert.equal(a, e, `${what}[${i}]`); continue; }
    assert.ok(Number.isFinite(a), `${what}[${i}] = ${a}, expected ${e}`);
    diff = Math.max(diff, Math.abs(a - e));
    scale = Math.max(scale, Math.abs(e));
  }
  return diff / Math.max(scale, floor);
}
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, floor = 1e-30): void {
  const err = relError(actual, expected, what, floor);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

const label = (c: Case) => `b=${c.b} h=${c.h} tq=${c.tq} tk=${c.tk} d=${c.d} causal=${c.causal} mask=${c.mask}`;

// --- (a) reference backward vs central finite differences, float64 --------------------------------

test('reference attentionBackward matches finite differences (float64)', () => {
  const cases: Case[] = [
    { b: 1, h: 2, tq: 5, tk: 5, d: 3, causal: false, mask: 'none' },
    { b: 2, h: 1, tq: 5, tk: 5, d: 4, causal: true, mask: 'none' },
    { b: 2, h: 2, tq: 6, tk: 6, d: 3, causal: false, mask: 'padding' },
    { b: 1, h: 1, tq: 3, tk: 7, d: 4, causal: true, mask: 'none' }, // KV-cache alignment
    { b: 2, h: 1, tq: 5, tk: 4, d: 2, causal: true, mask: 'fullyMasked' }, // rows with nothing visible
  ];
  const rng = new Rng(7);
  for (const c of cases) {
    const nq = c.b * c.h * c.tq * c.d, nk = c.b * c.h * c.tk * c.d;
    const q = randomArray(f64, nq, rng), k = randomArray(f64, nk, rng), v = randomArray(f64, nk, rng);
    const w = randomArray(f64, nq, rng); // loss = Σ w ∘ out, so dout = w
    const mask = makeMask(c), scale = 1 / Math.sqrt(c.d);
    const out = f64(nq), lse = f64(c.b * c.h * c.tq);
    const loss = () => {
      attention(q, k, v, out, lse, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, false);
      let s = 0;
      for (let i = 0; i < nq; i++) s += w[i]! * out[i]!;
      return s;
    };
    loss();
    const dq = f64(nq), dk = f64(nk), dv = f64(nk);
    attentionBackward(q, k, v, out, lse, w, dq, dk, dv, c.b, c.h, c.tq, c.tk, c.d, scale, c.causal, mask, false);
    for (const [x, g, name] of [[q, dq, 'dq'], [k, dk, 'dk'], [v, dv, 'dv']] as const) {
      const numeric = f64(x.length), eps = 1e-5;
      for (let i = 0; i < x.length; i++) {
        const x0 = x[i]!;
        x[i] = x0 + eps; const up = loss();
        x[i] = x0 - eps; const down = loss();
        x[i] = x0;
        numeric[i] = (up - down) / (2 * eps);
      }
      assertClose(g, numeric, 1e-6, `${name} ${label(c)}`);
      assert.ok(numeric.some((y) => Math.abs(y) > 1e-3), `${name} ${label(c)}: gradient should not vanish`);
    }
  }
});

// --- (b) native vs reference, fp32 ---------------------------------------------------------------

interface Inputs { q: Float32Array; k: Float32Array; v: Float32Array; dout: Float32Array; mask: Uint8Array | null; init: Grads }

/** Inputs as subarrays at an odd element offset, so the native kernels see unaligned pointers. */
function unaligned(a: Float32Array): Float32Array {
  const buf = new Float32Array(a.length + 3);
  buf.set(a, 1);
  return buf.subarray(1, a.length + 1);
}
function makeInputs(c: Case, rng: Rng): Inputs {
  const nq = c.b * c.h * c.tq * c.d, nk = c.b * c.h * c.tk * c.d;
  return {
    q: unaligned(randomArray(f32, nq, rng)), k: unaligned(randomArray(f32, nk, rng)), v: unaligned(randomArray(f32, nk, rng)),
    dout: unaligned(randomArray(f32, nq, rng)), mask: makeMask(c),
    // non-zero initial gradients: backward must add to them
    init: { dq: randomArray(f32, nq, rng, 0.1), dk: randomArray(f32, nk, rng, 0.1), dv: randomArray(f32, nk, rng, 0.1) },
  };
}
type Kernels = Pick<NativeAddon, 'attention' | 'attentionBackward'>;
function forward(impl: Kernels, c: Case, x: Inputs, bf16: boolean) {
  const out = f32(c.b * c.h * c.tq * c.d).fill(NaN), lse = f32(c.b * c.h * c.tq).fill(NaN);
  impl.attention(x.q, x.k, x.v, out, lse, c.b, c.h, c.tq, c.tk, c.d, 1 / Math.sqrt(c.d), c.causal, x.mask, bf16);
  return { out, lse };
}
function backward(impl: Kernels, c: Case, x: Inputs, out: Float32Array, lse: Float32Array, bf16: boolean): Grads {
  const g = { dq: x.init.dq.slice(), dk: x.init.dk.slice(), dv: x.init.dv.slice() };
  impl.attentionBackward(x.q, x.k, x.v, out, lse, x.dout, g.dq, g.dk, g.dv,
    c.b, c.h, c.tq, c.tk, c.d, 1 / Math.sqrt(c.d), c.causal, x.mask, bf16);
  return g;
}

/** Compares native and reference forward (out, lse) and backward (both fed the reference's out, lse). */
function compareToReference(nat: NativeAddon, c: Case, x: Inputs, bf16: boolean, fwdTol: number, bwdTol: number): void {
  const ref = forward({ attention, attentionBackward }, c, x, bf16);
  const got = forward(nat, c, x, bf16);
  assertClose(got.out, ref.out, fwdTol, `out ${label(c)} bf16=${bf16}`);
  assertClose(got.lse, ref.lse, fwdTol, `lse ${label(c)} bf16=${bf16}`);
  const refGrads = backward({ attention, attentionBackward }, c, x, ref.out, ref.lse, bf16);
  const gotGrads = backward(nat, c, x, ref.out, ref.lse, bf16);
  for (const name of ['dq', 'dk', 'dv'] as const) {
    // compare the increments, so the initial values do not hide errors
    const inc = (g: Grads) => g[name].map((y, i) => y - x.init[name][i]!);
    assertClose(inc(gotGrads), inc(refGrads), bwdTol, `${name} ${label(c)} bf16=${bf16}`, 1);
  }
}

const nativeCases: Case[] = [];
{
  const ts = [1, 7, 33, 129], ds = [1, 7, 32, 64];
  let n = 0;
  for (const t of ts) {
    for (const d of ds) {
      const mask: MaskKind = (['none', 'padding', 'fullyMasked'] as const)[n % 3]!;
      nativeCases.push({ b: 2, h: t > 64 && d > 32 ? 1 : 2, tq: t, tk: t, d, causal: n % 2 === 0, mask });
      n++;
    }
  }
  nativeCases.push(
    { b: 1, h: 3, tq: 3, tk: 7, d: 5, causal: true, mask: 'none' },
    { b: 2, h: 1, tq: 1, tk: 129, d: 32, causal: true, mask: 'padding' }, // decode step with a KV cache
    { b: 1, h: 2, tq: 65, tk: 130, d: 16, causal: true, mask: 'none' },
    { b: 2, h: 2, tq: 70, tk: 33, d: 9, causal: true, mask: 'padding' }, // Tq > Tk: leading rows see nothing
    { b: 1, h: 1, tq: 129, tk: 66, d: 33, causal: false, mask: 'fullyMasked' },
  );
}

test('native attention forward and backward match the reference (fp32)', () => {
  const nat = native();
  const rng = new Rng(11);
  for (const c of nativeCases) compareToReference(nat, c, makeInputs(c, rng), false, 1e-5, 1e-5);
});

test('native attention: fully masked rows give zeros, lse = -Infinity and zero gradients', () => {
  const nat = native();
  const c: Case = { b: 2, h: 2, tq: 9, tk: 9, d: 7, causal: true, mask: 'fullyMasked' };
  const x = makeInputs(c, new Rng(3));
  const { out, lse } = forward(nat, c, x, false);
  const rowsPerBatch = c.h * c.tq;
  for (let r = 0; r < 2 * rowsPerBatch; r++) {
    if (r < rowsPerBatch) {
      assert.equal(lse[r], -Infinity);
      assert.ok(out.subarray(r * c.d, (r + 1) * c.d).every((y) => y === 0), `row ${r} should be zero`);
    } else {
      assert.ok(Number.isFinite(lse[r]!), `row ${r} of the unmasked batch has a finite lse`);
    }
  }
  const zero = { dq: f32(x.q.length), dk: f32(x.k.length), dv: f32(x.v.length) };
  const g = backward(nat, c, { ...x, init: zero }, out, lse, false);
  const n0 = rowsPerBatch * c.d; // batch 0 occupies the first rows of q and k alike (tq = tk)
  for (const name of ['dq', 'dk', 'dv'] as const) {
    assert.ok(g[name].subarray(0, n0).every((y) => y === 0), `${name} of the masked batch is zero`);
    assert.ok(g[name].subarray(n0).some((y) => y !== 0), `${name} of the other batch is not`);
  }
});

test('native attention does not depend on the thread count', () => {
  const nat = native();
  const saved = nat.getThreads();
  try {
    // a single head with several key blocks: with more than one thread the backward pass splits
    // into (key block) and (query block) tasks, which must reproduce the one-pass sums exactly
    const c: Case = { b: 1, h: 1, tq: 200, tk: 200, d: 24, causal: true, mask: 'padding' };
    const x = makeInputs(c, new Rng(5));
    const results = [1, 2, 3].map((threads) => {
      nat.setThreads(threads);
      const f = forward(nat, c, x, false);
      return { ...f, ...backward(nat, c, x, f.out, f.lse, false) };
    });
    for (const r of results.slice(1)) {
      for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) assert.deepEqual(r[name], results[0]![name], name);
    }
  } finally {
    nat.setThreads(saved);
  }
});

// --- (c) bf16 autocast ---------------------------------------------------------------------------

test('native bf16 attention matches the bf16 reference', () => {
  const nat = native();
  // With AVX512_BF16 the forward also rounds P to bf16 for VDPBF16PS; otherwise the native kernel
  // does fp32 math on the same rounded inputs as the reference.
  const dpbf16 = nat.buildInfo() === 'avx512bf16';
  const fwdTol = dpbf16 ? 1e-2 : 1e-5;
  const rng = new Rng(13);
  const cases: Case[] = [
    { b: 2, h: 2, tq: 33, tk: 33, d: 32, causal: true, mask: 'none' },
    { b: 1, h: 2, tq: 129, tk: 129, d: 64, causal: false, mask: 'padding' },
    { b: 2, h: 1, tq: 7, tk: 20, d: 7, causal: true, mask: 'fullyMasked' },
    { b: 1, h: 1, tq: 1, tk: 65, d: 1, causal: true, mask: 'none' },
  ];
  for (const c of cases) {
    const x = makeInputs(c, rng);
    compareToReference(nat, c, x, true, fwdTol, 1e-5);
    // and bf16 really rounds: the result differs from fp32 by about bf16 precision
    const full = forward(nat, c, x, false).out, half = forward(nat, c, x, true).out;
    const err = relError(half, full, 'bf16 vs fp32');
    assert.ok(err > 1e-4 && err < 3e-2, `${label(c)}: bf16 vs fp32 relative difference ${err}`);
  }
});

// --- (d) backward accumulates --------------------------------------------------------------------

test('attentionBackward accumulates into dq, dk, dv', () => {
  const nat = native();
  const c: Case = { b: 2, h: 2, tq: 17, tk: 17, d: 8, causal: true, mask: 'padding' };
  const x = makeInputs(c, new Rng(17));
  for (const impl of [nat, { attention, attentionBackward }]) {
    const { out, lse } = forward(impl, c, x, false);
    const zero = () => ({ dq: f32(x.q.length), dk: f32(x.k.length), dv: f32(x.v.length) });
    const once = backward(impl, c, { ...x, init: zero() }, out, lse, false);
    const twice = zero();
    for (let rep = 0; rep < 2; rep++) {
      impl.attentionBackward(x.q, x.k, x.v, out, lse, x.dout, twice.dq, twice.dk, twice.dv,
        c.b, c.h, c.tq, c.tk, c.d, 1 / Math.sqrt(c.d), c.causal, x.mask, false);
    }
    for (const name of ['dq', 'dk', 'dv'] as const) {
      assert.ok(once[name].some((y) => y !== 0), `${name} is not trivially zero`);
      assert.deepEqual(twice[name], once[name].map((y) => 2 * y), `${name}: two calls give twice the gradient`);
    }
  }
});

// --- (e) argument validation ---------------------------------------------------------------------

test('attention kernels reject bad arguments with a RangeError naming the kernel', () => {
  const nat = native();
  const [b, h, t, d] = [2, 2, 5, 4];
  const n = b * h * t * d;
  const ok = () => ({ q: f32(n), k: f32(n), v: f32(n), out: f32(n), lse: f32(b * h * t), dout: f32(n), dq: f32(n), dk: f32(n), dv: f32(n) });
  for (const impl of [nat, { attention, attentionBackward }] as Kernels[]) {
    const fwd = (a: ReturnType<typeof ok>, mask: Uint8Array | null = null, tk = t) =>
      impl.attention(a.q, a.k, a.v, a.out, a.lse, b, h, t, tk, d, 0.5, true, mask, false);
    const bwd = (a: ReturnType<typeof ok>) =>
      impl.attentionBackward(a.q, a.k, a.v, a.out, a.lse, a.dout, a.dq, a.dk, a.dv, b, h, t, t, d, 0.5, true, null, false);
    fwd(ok()); bwd(ok()); // valid shapes pass
    assert.throws(() => fwd({ ...ok(), q: f32(n - 1) }), (e: Error) => e instanceof RangeError && /attention/.test(e.message) && /\bq\b/.test(e.message));
    assert.throws(() => fwd({ ...ok(), lse: f32(b * h * t - 1) }), (e: Error) => e instanceof RangeError && /attention/.test(e.message) && /lse/.test(e.message));
    assert.throws(() => fwd(ok(), null, t + 1), (e: Error) => e instanceof RangeError && /attention/.test(e.message) && /tk=6/.test(e.message));
    assert.throws(() => fwd(ok(), new Uint8Array(b * t - 1)), (e: Error) => e instanceof RangeError && /attention/.test(e.message) && /keyMask/.test(e.message));
    assert.throws(() => bwd({ ...ok(), dk: f32(n - 1) }), (e: Error) => e instanceof RangeError && /attentionBackward/.test(e.message) && /dk/.test(e.message));
    assert.throws(() => bwd({ ...ok(), dout: f32(3) }), (e: Error) => e instanceof RangeError && /attentionBackward/.test(e.message) && /dout/.test(e.message));
    assert.throws(() => impl.attention(f32(n), f32(n), f32(n), f32(n), f32(b * h * t), b, -1, t, t, d, 0.5, false, null, false),
      (e: Error) => e instanceof RangeError && /attention/.test(e.message));
  }
  // the native kernels take Float32Array only
  const a = ok();
  assert.throws(() => nat.attention(new Float64Array(n) as unknown as Float32Array, a.k, a.v, a.out, a.lse, b, h, t, t, d, 0.5, true, null, false), TypeError);
});
