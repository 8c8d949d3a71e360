/**
 * adamwGroup and sumSquaresGroup (one call per optimizer step for all parameters) give exactly the
 * bits of the per-tensor sequence they replace — scale(grad, f) then adamw per tensor, and
 * Σ sumSquares — natively and in the reference, for any thread count; bad arguments are named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ref from '../../src/backend/reference/kernels.ts';
import type { FloatArray } from '../../src/backend/types.ts';
import { Rng, assertClose, f32, guarded, randn, requireNative } from './kernels-helpers.ts';

// 0 and 1, SIMD tails, one element either side of a chunk (8192), and tensors above the parallel
// threshold (32768) on their own.
const SIZES = [0, 1, 7, 33, 8191, 8193, 40_000, 3, 100_003];
const WEIGHT_DECAY = SIZES.map((_, t) => [0, 0.1, 0.01][t % 3]!);
const [LR, B1, B2, EPS] = [1e-3, 0.9, 0.95, 1e-8];

interface Slot { p: Float32Array; g: Float32Array; m: Float32Array; v: Float32Array; intact: () => boolean }

/** Optimizer state for every size: misaligned, guarded arrays (so overruns are seen). */
function makeState(seed: number): Slot[] {
  const rng = new Rng(seed);
  return SIZES.map((n) => {
    const p = guarded(randn(rng, n)), g = guarded(randn(rng, n)), m = guarded(randn(rng, n, 0.1));
    const v = guarded(randn(rng, n, 0.1).map(Math.abs));
    return { p: p.a, g: g.a, m: m.a, v: v.a, intact: () => p.intact() && g.intact() && m.intact() && v.intact() };
  });
}

function copyState(s: Slot[]): Slot[] {
  return s.map((x) => ({ p: x.p.slice(), g: x.g.slice(), m: x.m.slice(), v: x.v.slice(), intact: () => true }));
}

const bits = (a: FloatArray) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
function assertSameBits(a: FloatArray, b: FloatArray, what: string): void {
  assert.equal(a.length, b.length, what);
  assert.ok(bits(a).equals(bits(b)), `${what}: not bit-identical`);
}

type Kernels = Pick<typeof ref, 'adamw' | 'scale' | 'adamwGroup' | 'sumSquares' | 'sumSquaresGroup'>;

/** The sequence the group kernel replaces: scale the gradients (when clipping), then one adamw per tensor. */
function perTensor(k: Kernels, s: Slot[], step: number, gradScale: number): void {
  s.forEach((x, t) => {
    if (gradScale !== 1) k.scale(x.g, gradScale, x.g, x.g.length);
    k.adamw(x.p, x.g, x.m, x.v, x.p.length, LR, B1, B2, EPS, WEIGHT_DECAY[t]!, step);
  });
}

function group(k: Kernels, s: Slot[], step: number, gradScale: number): void {
  k.adamwGroup(s.map((x) => x.p), s.map((x) => x.g), s.map((x) => x.m), s.map((x) => x.v), WEIGHT_DECAY, LR, B1, B2, EPS, step, gradScale);
}

function assertSameState(a: Slot[], b: Slot[], what: string): void {
  a.forEach((x, t) => {
    assertSameBits(x.p, b[t]!.p, `${what} param[${t}] (n=${SIZES[t]})`);
    assertSameBits(x.m, b[t]!.m, `${what} m[${t}]`);
    assertSameBits(x.v, b[t]!.v, `${what} v[${t}]`);
  });
}

for (const [name, kernels] of [['native', () => requireNative()], ['reference', () => ref]] as const) {
  test(`${name} adamwGroup is bit-identical to scale + adamw per tensor (per-tensor weight decay, gradScale ≠ 1 and = 1)`, () => {
    const k = kernels() as Kernels;
    for (const [step, gradScale] of [[1, 0.37], [7, 1], [3, 2.5e-3]] as const) {
      const viaGroup = makeState(40 + step), viaTensors = copyState(viaGroup), grads = viaGroup.map((x) => x.g.slice());
      group(k, viaGroup, step, gradScale);
      perTensor(k, viaTensors, step, gradScale);
      assertSameState(viaGroup, viaTensors, `${name} step ${step} gradScale ${gradScale}`);
      viaGroup.forEach((x, t) => assertSameBits(x.g, grads[t]!, `${name}: adamwGroup must not modify grads[${t}]`));
      assert.ok(viaGroup.every((x) => x.intact()), `${name}: adamwGroup wrote outside an array`);
      const before = makeState(40 + step);
      assert.ok(viaGroup.every((x, t) => x.p.length === 0 || x.p.some((p, i) => p !== before[t]!.p[i])), 'every non-empty parameter moved');
    }
  });

  test(`${name} sumSquaresGroup is bit-identical to Σ sumSquares in tensor order`, () => {
    const k = kernels() as Kernels;
    const xs = makeState(50).map((x) => x.g);
    let want = 0;
    for (const x of xs) want += k.sumSquares(x, x.length);
    assert.equal(k.sumSquaresGroup(xs), want);
    assert.ok(want > 100_000, `sum of squares ${want}`);
    assert.equal(k.sumSquaresGroup([]), 0);
    assert.equal(k.sumSquaresGroup([f32([3, 4]), new Float32Array(0), f32([12])]), 169);
  });
}

test('native adamwGroup and sumSquaresGroup agree with the reference', () => {
  const native = requireNative();
  const a = makeState(60), b = copyState(a);
  group(native, a, 4, 0.5);
  group(ref, b, 4, 0.5);
  a.forEach((x, t) => {
    assertClose(x.p, b[t]!.p, 1e-5, `param[${t}]`);
    assertClose(x.m, b[t]!.m, 1e-5, `m[${t}]`);
    assertClose(x.v, b[t]!.v, 1e-5, `v[${t}]`);
  });
  const xs = makeState(61).map((x) => x.g), nat = native.sumSquaresGroup(xs), want = ref.sumSquaresGroup(xs);
  assert.ok(Math.abs(nat - want) <= 1e-12 * want, `${nat} vs ${want}`);
});

test('reference adamwGroup takes float64 tensors (rounding the scaled gradient only for float32 grads)', () => {
  const rng = new Rng(62);
  const p = randn(rng, 50), g = randn(rng, 50), m = new Float64Array(50), v = new Float64Array(50);
  const p2 = p.slice(), g2 = g.slice(), m2 = m.slice(), v2 = v.slice();
  ref.adamwGroup([p], [g], [m], [v], [0.1], LR, B1, B2, EPS, 2, 0.3);
  ref.scale(g2, 0.3, g2, 50);
  ref.adamw(p2, g2, m2, v2, 50, LR, B1, B2, EPS, 0.1, 2);
  assertSameBits(p, p2, 'float64 param');
  assertSameBits(m, m2, 'float64 m');
  assertSameBits(v, v2, 'float64 v');
});

test('native group kernels give the same bits for any thread count', () => {
  const native = requireNative();
  const initial = native.getThreads();
  const run = (threads: number) => {
    native.setThreads(threads);
    const s = makeState(70);
    group(native, s, 5, 0.8);
    return { s, sq: native.sumSquaresGroup(makeState(71).map((x) => x.g)) };
  };
  try {
    const one = run(1);
    for (const threads of [2, 3]) {
      const many = run(threads);
      assertSameState(one.s, many.s, `${threads} threads`);
      assert.equal(many.sq, one.sq, `sumSquaresGroup with ${threads} threads`);
    }
  } finally {
    native.setThreads(initial);
  }
});

test('group kernels: bad arguments throw errors naming the kernel and the tensor', () => {
  const native = requireNative();
  const f = (n: number) => new Float32Array(n);
  const call = (k: Kernels, ps: FloatArray[], gs: FloatArray[], ms: FloatArray[], vs: FloatArray[], wd: number[], step = 1) =>
    k.adamwGroup(ps, gs, ms, vs, wd, LR, B1, B2, EPS, step, 1);
  for (const [k, prefix] of [[native, 'primer native'], [ref, 'reference']] as const) {
    assert.throws(() => call(k, [f(2), f(3)], [f(2), f(3)], [f(2), f(2)], [f(2), f(3)], [0, 0]), { name: 'RangeError', message: new RegExp(`${prefix}.*adamwGroup: 'm\\[1\\]' has 2 elements, needs 3`) });
    assert.throws(() => call(k, [f(2)], [f(2), f(2)], [f(2)], [f(2)], [0]), { name: 'RangeError', message: /adamwGroup: 'grads' has 2 entries, 'params' has 1/ });
    assert.throws(() => call(k, [f(2)], [f(2)], [f(2)], [f(2)], []), { name: 'RangeError', message: /adamwGroup: 'weightDecay' has 0 entries, 'params' has 1/ });
    assert.throws(() => call(k, [f(2)], [f(2)], [f(2)], [f(2)], [0], 0), { name: 'RangeError', message: /adamwGroup: step must be/ });
  }
  assert.throws(() => call(native, [f(2), new Float64Array(2)], [f(2), f(2)], [f(2), f(2)], [f(2), f(2)], [0, 0]), { name: 'TypeError', message: /adamwGroup: 'params\[1\]' must be a Float32Array/ });
  assert.throws(() => call(native, [f(2)], [f(2)], [f(2)], [f(2)], ['x' as unknown as number]), { name: 'TypeError', message: /adamwGroup: 'weightDecay\[0\]' must be a number/ });
  assert.throws(() => native.sumSquaresGroup(f(3) as unknown as Float32Array[]), { name: 'TypeError', message: /sumSquaresGroup: 'xs' must be an array/ });
  assert.throws(() => native.sumSquaresGroup([f(3), [1, 2] as unknown as Float32Array]), { name: 'TypeError', message: /sumSquaresGroup: 'xs\[1\]' must be a Float32Array/ });
});

test('native group kernels name the bad list element (kernel, list, index, problem)', () => {
  const native = requireNative();
  const f = (n: number) => new Float32Array(n);
  const call = (params: unknown[], grads: unknown[], m: unknown[], v: unknown[], wd: unknown[]) =>
    (native.adamwGroup as unknown as (...a: unknown[]) => void)(params, grads, m, v, wd, LR, B1, B2, EPS, 1, 1);
  assert.throws(() => call([f(2), f(3)], [f(2), new Float64Array(3)], [f(2), f(3)], [f(2), f(3)], [0, 0]),
    { name: 'TypeError', message: /adamwGroup: 'grads\[1\]' must be a Float32Array/ });
  assert.throws(() => call([f(2), f(3)], [f(2), f(3)], [f(2), f(2)], [f(2), f(3)], [0, 0]),
    { name: 'RangeError', message: /adamwGroup: 'm\[1\]' has 2 elements, needs 3 \(params\[i\]\.length\)/ });
  assert.throws(() => call([f(2)], [f(2)], [f(2)], [f(2)], ['x']), { name: 'TypeError', message: /adamwGroup: 'weightDecay\[0\]' must be a number/ });
  assert.throws(() => (native.sumSquaresGroup as unknown as (x: unknown[]) => number)([f(2), f(2), [1, 2]]),
    { name: 'TypeError', message: /sumSquaresGroup: 'xs\[2\]' must be a Float32Array/ });
  assert.throws(() => native.permute(f(6), f(6), [2, 3.5], [1, 0], false), { name: 'RangeError', message: /permute: 'shape\[1\]' must be an integer, got 3.5/ });
});
