/**
 * The Llama-block autograd ops (rmsNorm, rope, siluMul, grouped-query attention): backward against
 * finite differences (float64, reference backend), native against reference (fp32), and each against
 * the composition of older ops that src/models/llama.ts used (layerNorm trick, concat/slice
 * rotate_half, tanh-built silu, repeat_kv by concat).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setBackend, type BackendName } from '../../src/backend/index.ts';
import { Tensor, setDefaultDtype, noGrad, type DType } from '../../src/tensor/tensor.ts';
import * as T from '../../src/tensor/index.ts';
import { Rng } from '../../src/util/random.ts';
import { randomTensor, relError, numericGrads } from '../helpers/numeric.ts';

after(() => {
  setDefaultDtype('float32');
  setBackend('native');
});

const invFreq = (d: number) => Array.from({ length: d / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / d));

/** Analytic vs numeric gradients of Σ w ⊙ op(inputs) (float64, reference backend). */
function checkGrad(name: string, inputs: Tensor[], op: (...xs: Tensor[]) => Tensor, tol = 1e-6): void {
  const rng = new Rng(99);
  for (const t of inputs) t.requiresGrad = true;
  const w = randomTensor(noGrad(() => op(...inputs)).shape, rng);
  const objective = () => noGrad(() => {
    const y = op(...inputs);
    let s = 0;
    for (let i = 0; i < y.size; i++) s += y.data[i]! * w.data[i]!;
    return s;
  });
  T.sum(T.mul(op(...inputs), w)).backward();
  const numeric = numericGrads(inputs, objective);
  inputs.forEach((t, i) => {
    const err = relError(t.grad!.data, numeric[i]!);
    assert.ok(err < tol, `${name}: input ${i} gradient relative error ${err.toExponential(2)} ≥ ${tol}`);
  });
}

test('llama ops backward matches finite differences (float64, reference)', () => {
  setBackend('reference');
  setDefaultDtype('float64');
  const rng = new Rng(1);
  const r = (...shape: number[]) => randomTensor(shape, rng);
  checkGrad('rmsNorm', [r(2, 3, 6), r(6)], (x, w) => T.rmsNorm(x, w, 1e-5));
  const tables = T.rotaryTables(invFreq(4), 12, 'float64');
  checkGrad('rope', [r(2, 3, 2, 4)], (x) => T.rope(x, tables, T.positionIds(2, 3, [5, 9])));
  checkGrad('siluMul', [r(3, 7), r(3, 7)], T.siluMul);
  checkGrad('attention GQA', [r(2, 4, 5, 3), r(2, 2, 5, 3), r(2, 2, 5, 3)], (q, k, v) => T.attention(q, k, v, { causal: true }));
  checkGrad('attention MQA Tq<Tk', [r(1, 3, 2, 4), r(1, 1, 6, 4), r(1, 1, 6, 4)], (q, k, v) => T.attention(q, k, v, { causal: true }));
  setDefaultDtype('float32');
});

// ---- the compositions llama.ts used before these ops ---------------------------------------------

function rmsNormByLayerNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const c = w.size, last = x.ndim - 1;
  const normed = T.layerNorm(T.concat([x, T.scale(x, -1)], last), Tensor.full([2 * c], 1, x.dtype), Tensor.zeros([2 * c], x.dtype), eps);
  return T.mul(T.slice(normed, last, 0, c), w);
}
/** x [B, H, T, D] at positions 0…T−1: x·cos + rotate_half(x)·sin with cat(freqs, freqs) tables. */
function ropeByComposition(x: Tensor, inv: number[]): Tensor {
  const [, , t, d] = x.shape as [number, number, number, number];
  const cos = new Float64Array(t * d), sin = new Float64Array(t * d);
  for (let p = 0; p < t; p++) for (let i = 0; i < d; i++) {
    const angle = Math.fround(Math.fround(inv[i % (d / 2)]!) * p);
    cos[p * d + i] = Math.cos(angle);
    sin[p * d + i] = Math.sin(angle);
  }
  const rotated = T.concat([T.scale(T.slice(x, 3, d / 2, d), -1), T.slice(x, 3, 0, d / 2)], 3);
  return T.add(T.mul(x, Tensor.from(cos, [t, d], x.dtype)), T.mul(rotated, Tensor.from(sin, [t, d], x.dtype)));
}
const siluByTanh = (g: Tensor, u: Tensor) => T.mul(T.mul(g, T.scale(T.addScalar(T.tanh(T.scale(g, 0.5)), 1), 0.5)), u);
function repeatKV(x: Tensor, n: number): Tensor {
  const [b, kv, t, d] = x.shape as [number, number, number, number];
  const x5 = T.reshape(x, [b, kv, 1, t, d]);
  return T.reshape(T.concat(Array.from({ length: n }, () => x5), 2), [b, kv * n, t, d]);
}

/** Output and input gradients of Σ w ⊙ f(inputs) for fresh copies of the inputs. */
function evaluate(f: (...xs: Tensor[]) => Tensor, values: Tensor[], dtype: DType) {
  const inputs = values.map((v) => { const t = Tensor.from(v.data, v.shape, dtype); t.requiresGrad = true; return t; });
  const y = f(...inputs);
  const w = randomTensor(y.shape, new Rng(5), dtype);
  T.sum(T.mul(y, w)).backward();
  return { y: Float64Array.from(y.data), grads: inputs.map((t) => Float64Array.from(t.grad!.data)) };
}
function assertSame(a: ReturnType<typeof evaluate>, b: ReturnType<typeof evaluate>, tol: number, what: string): void {
  assert.ok(relError(a.y, b.y) <= tol, `${what}: output relative error ${relError(a.y, b.y).toExponential(2)}`);
  a.grads.forEach((g, i) => assert.ok(relError(g, b.grads[i]!) <= tol, `${what}: input ${i} gradient relative error ${relError(g, b.grads[i]!).toExponential(2)}`));
}

for (const backend of ['native', 'reference'] as BackendName[]) {
  test(`llama ops equal the older compositions and agree across backends (${backend}, fp32)`, () => {
    setBackend(backend);
    const rng = new Rng(2);
    const [b, t, h, kv, d] = [2, 9, 4, 2, 8];
    const x = randomTensor([b, t, 24], rng, 'float32'), w = randomTensor([24], rng, 'float32');
    assertSame(evaluate((x, w) => T.rmsNorm(x, w, 1e-6), [x, w], 'float32'), evaluate((x, w) => rmsNormByLayerNorm(x, w, 1e-6), [x, w], 'float32'), 1e-5, 'rmsNorm');

    const heads = randomTensor([b, t, h, d], rng, 'float32');
    const tables = T.rotaryTables(invFreq(d), 32, 'float32');
    const viaOp = (x: Tensor) => T.permute(T.rope(x, tables, T.positionIds(b, t)), [0, 2, 1, 3]);
    const viaComposition = (x: Tensor) => ropeByComposition(T.permute(x, [0, 2, 1, 3]), invFreq(d));
    assertSame(evaluate(viaOp, [heads], 'float32'), evaluate(viaComposition, [heads], 'float32'), 1e-6, 'rope');

    const g = randomTensor([b, t, 20], rng, 'float32', 3), u = randomTensor([b, t, 20], rng, 'float32');
    assertSame(evaluate(T.siluMul, [g, u], 'float32'), evaluate(siluByTanh, [g, u], 'float32'), 1e-5, 'siluMul');

    const q = randomTensor([b, h, t, d], rng, 'float32'), k = randomTensor([b, kv, t, d], rng, 'float32'), v = randomTensor([b, kv, t, d], rng, 'float32');
    const gqa = (q: Tensor, k: Tensor, v: Tensor) => T.attention(q, k, v, { causal: true });
    const repeated = (q: Tensor, k: Tensor, v: Tensor) => T.attention(q, repeatKV(k, h / kv), repeatKV(v, h / kv), { causal: true });
    assertSame(evaluate(gqa, [q, k, v], 'float32'), evaluate(repeated, [q, k, v], 'float32'), 1e-5, 'GQA attention');
  });
}

test('rope at a KV-cache offset equals the same rows of the full sequence', () => {
  setBackend('native');
  const [b, t, h, d, past] = [2, 10, 3, 16, 6];
  const x = randomTensor([b, t, h, d], new Rng(3), 'float32');
  const tables = T.rotaryTables(invFreq(d), 64, 'float32');
  const full = noGrad(() => T.rope(x, tables, T.positionIds(b, t)));
  const tail = noGrad(() => T.rope(T.slice(x, 1, past, t), tables, T.positionIds(b, t - past, past)));
  assert.deepEqual(Array.from(tail.data), Array.from(noGrad(() => T.slice(full, 1, past, t)).data));
  // HF's fp32 angles: position 3, frequency 1 → cos(3), sin(3) to fp32
  assert.equal(tables.cos[3 * (d / 2)], Math.fround(Math.cos(3)));
  assert.equal(tables.sin[3 * (d / 2)], Math.fround(Math.sin(3)));
  assert.throws(() => T.rope(x, tables, T.positionIds(b, t, 60)), /rope: positions\[4\] = 64 is out of range \[0, 64\)/);
  assert.throws(() => T.rope(x, T.rotaryTables(invFreq(8), 4, 'float32'), T.positionIds(b, t)), /rope: x has head dimension 16 but the tables were built for 8/);
  assert.throws(() => T.attention(randomTensor([1, 4, 2, 2], new Rng(1), 'float32'), randomTensor([1, 3, 2, 2], new Rng(1), 'float32'), randomTensor([1, 3, 2, 2], new Rng(1), 'float32')),
    /attention: k has shape \[1, 3, 2, 2\], expected \[1, 4, \*, 2\]/);
});
