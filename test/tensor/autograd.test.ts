/**
 * Every op's backward against central finite differences, in float64 on the reference backend.
 * Objective: L = Σ w ⊙ op(inputs) with fixed random w, so every output element matters.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setBackend } from '../../src/backend/index.ts';
import { Tensor, setDefaultDtype, noGrad, withScope } from '../../src/tensor/tensor.ts';
import * as T from '../../src/tensor/index.ts';
import { Rng } from '../../src/util/random.ts';
import { randomTensor, relError, numericGrads } from '../helpers/numeric.ts';

before(() => {
  setBackend('reference');
  setDefaultDtype('float64');
});
after(() => {
  setDefaultDtype('float32');
});

/** Checks analytic vs numeric gradients of Σ w ⊙ op(inputs) for every input. */
function check(name: string, inputs: Tensor[], op: (...xs: Tensor[]) => Tensor, tol = 1e-6): void {
  const rng = new Rng(1234);
  for (const t of inputs) t.requiresGrad = true;
  const probe = noGrad(() => op(...inputs));
  const w = randomTensor(probe.shape, rng);
  const objective = () => noGrad(() => {
    const y = op(...inputs);
    let s = 0;
    for (let i = 0; i < y.size; i++) s += y.data[i]! * w.data[i]!;
    return s;
  });
  for (const t of inputs) t.grad = null;
  T.sum(T.mul(op(...inputs), w)).backward();
  const numeric = numericGrads(inputs, objective);
  inputs.forEach((t, i) => {
    assert.ok(t.grad, `${name}: input ${i} got no gradient`);
    const err = relError(t.grad!.data, numeric[i]!);
    assert.ok(err < tol, `${name}: input ${i} gradient relative error ${err.toExponential(2)} ≥ ${tol}`);
  });
}

const rng = new Rng(7);
const r = (...shape: number[]) => randomTensor(shape, rng);

test('elementwise ops with broadcasting', () => {
  check('add', [r(3, 4), r(4)], T.add);
  check('add same shape', [r(2, 5), r(2, 5)], T.add);
  check('sub', [r(2, 3, 4), r(3, 1)], T.sub);
  check('mul', [r(3, 4), r(3, 4)], T.mul);
  check('mul broadcast', [r(2, 1, 4), r(3, 1)], T.mul);
  check('div', [r(3, 4), T.addScalar(T.mul(r(3, 4), r(3, 4)), 1.5)], T.div);
  // a repeated trailing block on either side (the blockwise forward path), leading 1s included
  check('sub, block first', [r(4), r(3, 4)], T.sub);
  check('div, block first', [r(1, 4), T.addScalar(T.mul(r(2, 3, 4), r(2, 3, 4)), 1.5)], T.div);
  check('div by a block', [r(2, 3, 4), T.addScalar(T.mul(r(3, 4), r(3, 4)), 1.5)], T.div);
  check('mul by a block', [r(2, 3, 4), r(1, 3, 4)], T.mul);
  check('scale', [r(7)], (x) => T.scale(x, -2.5));
  check('addScalar', [r(7)], (x) => T.addScalar(x, 3));
});

test('reductions', () => {
  check('sum', [r(3, 5)], T.sum);
  check('mean', [r(3, 5)], T.mean);
  check('sumAxis 0', [r(3, 4, 2)], (x) => T.sumAxis(x, 0));
  check('sumAxis 1', [r(3, 4, 2)], (x) => T.sumAxis(x, 1));
  check('sumAxis -1', [r(3, 4, 2)], (x) => T.sumAxis(x, -1));
});

test('shape ops', () => {
  check('reshape', [r(2, 6)], (x) => T.reshape(x, [3, -1]));
  check('permute', [r(2, 3, 4, 5)], (x) => T.permute(x, [2, 0, 3, 1]));
  check('transpose', [r(3, 7)], (x) => T.transpose(x));
  check('slice', [r(4, 6)], (x) => T.slice(x, 1, 1, 5));
  check('slice axis 0', [r(4, 3)], (x) => T.slice(x, 0, 2, 4));
  check('concat', [r(2, 3), r(2, 1), r(2, 4)], (...xs) => T.concat(xs, 1));
  check('select0', [r(3, 2, 2)], (x) => T.mul(T.select0(x, 1), T.select0(x, 2)));
});

test('matmul: transposes, batching, shared weights, bias', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = transA ? r(4, 3) : r(3, 4);
      const b = transB ? r(5, 4) : r(4, 5);
      check(`matmul 2-D tA=${transA} tB=${transB}`, [a, b, r(5)], (x, y, z) => T.matmul(x, y, { transA, transB }, z));
      const ab = transA ? r(2, 4, 3) : r(2, 3, 4);
      check(`matmul shared B tA=${transA} tB=${transB}`, [ab, b], (x, y) => T.matmul(x, y, { transA, transB }));
      const bb = transB ? r(2, 5, 4) : r(2, 4, 5);
      check(`matmul batched tA=${transA} tB=${transB}`, [ab, bb], (x, y) => T.matmul(x, y, { transA, transB }));
    }
  }
  check('linear in_out', [r(2, 3, 4), r(4, 6), r(6)], (x, w, b) => T.linear(x, w, b, 'in_out'));
  check('linear out_in', [r(5, 4), r(6, 4), r(6)], (x, w, b) => T.linear(x, w, b, 'out_in'));
});

test('embedding, layerNorm, activations, softmax, dropout', () => {
  const ids = new Int32Array([3, 0, 3, 1, 4]);
  check('embedding (repeated ids)', [r(5, 3)], (t) => T.embedding(t, ids, [5]));
  check('layerNorm', [r(4, 6), r(6), r(6)], (x, w, b) => T.layerNorm(x, w, b, 1e-5));
  check('layerNorm eps 1e-12', [r(3, 5), r(5), r(5)], (x, w, b) => T.layerNorm(x, w, b, 1e-12));
  check('gelu tanh', [r(3, 7)], (x) => T.gelu(x, 'tanh'));
  check('gelu erf', [r(3, 7)], (x) => T.gelu(x, 'erf'));
  check('tanh', [r(9)], T.tanh);
  // Keep relu inputs away from the kink at 0, where finite differences are meaningless.
  const x = r(9);
  for (let i = 0; i < x.size; i++) x.data[i] = x.data[i]! + Math.sign(x.data[i]!) * 0.1;
  check('relu', [x], T.relu);
  check('softmax', [r(3, 6)], T.softmax);
  const seedRng = () => new Rng(99);
  check('dropout', [r(4, 8)], (y) => T.dropout(y, 0.3, true, seedRng()));
});

test('fused attention: causal, padding mask, Tq ≠ Tk', () => {
  check('attention causal', [r(1, 2, 5, 3), r(1, 2, 5, 3), r(1, 2, 5, 3)], (q, k, v) => T.attention(q, k, v, { causal: true }));
  const mask = new Uint8Array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  check('attention key mask', [r(2, 1, 5, 4), r(2, 1, 5, 4), r(2, 1, 5, 4)], (q, k, v) => T.attention(q, k, v, { keyMask: mask }));
  check('attention Tq<Tk causal', [r(1, 1, 3, 2), r(1, 1, 7, 2), r(1, 1, 7, 2)], (q, k, v) => T.attention(q, k, v, { causal: true, scale: 0.7 }));
});

test('attention on token-major projections (attentionHeads) equals attention on head-split copies, gradients included', () => {
  const cols = (tensor: Tensor, offset: number) => ({ tensor, offset });
  const headSplit = (y: Tensor, offset: number, n: number, d: number) => {
    const [b, t] = y.shape as [number, number];
    return T.permute(T.reshape(T.slice(y, 2, offset, offset + n * d), [b, t, n, d]), [0, 2, 1, 3]);
  };
  const merge = (y: Tensor) => T.reshape(T.permute(y, [0, 2, 1, 3]), [y.shape[0]!, y.shape[2]!, y.shape[1]! * y.shape[3]!]);
  // GPT-2's fused [q | k | v] rows, causal
  const fused = (x: Tensor) => T.attentionHeads(cols(x, 0), cols(x, 8), cols(x, 16), { heads: 2, headDim: 4, causal: true });
  check('attentionHeads fused', [r(2, 5, 24)], fused);
  const x = r(2, 5, 24);
  const want = merge(T.attention(headSplit(x, 0, 2, 4), headSplit(x, 8, 2, 4), headSplit(x, 16, 2, 4), { causal: true }));
  assert.ok(relError(fused(x).data, want.data) < 1e-12);
  // separate tensors with spare columns (the kernel adds into zeroed gradients), GQA, a key mask, Tq ≠ Tk
  const mask = new Uint8Array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0]);
  const gqa = (q: Tensor, k: Tensor, v: Tensor) => T.attentionHeads(cols(q, 1), cols(k, 0), cols(v, 2), { heads: 2, kvHeads: 1, headDim: 4, keyMask: mask, scale: 0.6 });
  check('attentionHeads GQA, spare columns', [r(2, 4, 10), r(2, 6, 6), r(2, 6, 6)], gqa);
  // inside a step scope (fresh gradients overwritten, pool holding NaN) = outside it
  const y = r(2, 5, 24);
  y.requiresGrad = true;
  const loss = () => T.sum(T.mul(fused(T.scale(y, 1.5)), fused(y)));
  loss().backward();
  const expected = y.grad!.toArray();
  y.grad = null;
  withScope(() => { for (const n of [240, 80, 40]) for (let c = 0; c < 4; c++) T.scratch(n, 'float64').fill(NaN); });
  withScope(() => loss().backward());
  assert.ok(relError(y.grad!.data, expected) < 1e-12, `scoped ${y.grad!.toArray()} vs ${expected}`);
});

test('attentionHeads with relative logits: gradients of q, k, v and relative; the scores of HF relative_key', () => {
  const cols = (tensor: Tensor, offset: number) => ({ tensor, offset });
  const [b, t, h, d] = [2, 4, 2, 3];
  const mask = new Uint8Array([1, 1, 1, 0, 1, 1, 1, 1]);
  // q its own tensor, k and v the halves of one projection (BERT's layout)
  const rel = (q: Tensor, kv: Tensor, r: Tensor) => T.attentionHeads(cols(q, 0), cols(kv, 0), cols(kv, h * d), { heads: h, headDim: d, keyMask: mask, relative: r });
  check('attentionHeads relative', [r(b, t, h * d), r(b, t, 2 * h * d), r(b, t, h, 2 * t - 1)], rel);
  check('attentionHeads relative [B·T·H, 2T−1]', [r(b, t, h * d), r(b, t, 2 * h * d), r(b * t * h, 2 * t - 1)], rel);
  // against softmax(scale·(q_i·k_j + r[b, i, h, i − j + T − 1]) + mask)·v composed from plain ops
  const [q, kv, R] = [r(b, t, h * d), r(b, t, 2 * h * d), r(b, t, h, 2 * t - 1)];
  const split = (y: Tensor, offset: number) => T.permute(T.reshape(T.slice(y, 2, offset, offset + h * d), [b, t, h, d]), [0, 2, 1, 3]);
  const extra = Tensor.zeros([b, h, t, t]); // gathered relative logits, and −∞ (as −1e30) on masked keys
  for (let bi = 0; bi < b; bi++) for (let hh = 0; hh < h; hh++) for (let i = 0; i < t; i++) for (let j = 0; j < t; j++)
    extra.data[((bi * h + hh) * t + i) * t + j] = mask[bi * t + j] ? R.data[((bi * t + i) * h + hh) * (2 * t - 1) + i - j + t - 1]! : -1e30;
  const scores = T.scale(T.add(T.matmul(split(q, 0), split(kv, 0), { transB: true }), extra), 1 / Math.sqrt(d));
  const want = T.reshape(T.permute(T.matmul(T.softmax(scores), split(kv, h * d)), [0, 2, 1, 3]), [b, t, h * d]);
  assert.ok(relError(rel(q, kv, R).data, want.data) < 1e-12);
  assert.throws(() => rel(q, kv, r(b, t, h, 2 * t)), /relative must be/);
  // inside a step scope, where intermediates' fresh gradients (relative's included) are overwritten = outside it
  const leaves = [q, kv, R];
  for (const x of leaves) x.requiresGrad = true;
  const loss = () => T.sum(T.mul(rel(T.scale(q, 1.5), T.scale(kv, 0.5), T.scale(R, 2)), rel(q, kv, R)));
  loss().backward();
  const expected = leaves.map((x) => x.grad!.toArray());
  for (const x of leaves) x.grad = null;
  withScope(() => { for (const n of [96, 48, 112, 24]) for (let c = 0; c < 4; c++) T.scratch(n, 'float64').fill(NaN); });
  withScope(() => loss().backward());
  leaves.forEach((x, i) => assert.ok(relError(x.grad!.data, expected[i]!) < 1e-12, `scoped gradient of input ${i}`));
});

test('cross-entropy: ignore index, label smoothing, sum reduction', () => {
  const labels = new Int32Array([2, -100, 0, 4]);
  check('crossEntropy', [r(4, 5)], (z) => T.crossEntropy(z, labels));
  check('crossEntropy smoothing', [r(4, 5)], (z) => T.crossEntropy(z, labels, { labelSmoothing: 0.1 }));
  check('crossEntropy sum', [r(2, 2, 5)], (z) => T.crossEntropy(z, labels, { reduction: 'sum' }));
});

test('gradients accumulate across backward calls and a graph can branch', () => {
  const x = r(3);
  x.requiresGrad = true;
  const y = T.add(T.mul(x, x), x); // x² + x, used twice below
  T.sum(T.add(y, y)).backward();
  const expected = x.toArray().map((v) => 2 * (2 * v + 1));
  assert.ok(relError(x.grad!.data, expected) < 1e-12);
  T.sum(T.mul(x, x)).backward();
  const expected2 = x.toArray().map((v, i) => expected[i]! + 2 * v);
  assert.ok(relError(x.grad!.data, expected2) < 1e-12);
});

test('inside a step scope, reshape/add gradients handed to intermediates (no copy) stay exact', () => {
  const x = r(2, 6);
  const w = r(2, 6);
  x.requiresGrad = true;
  // f = x² + 3x + (x²)² + x, with x² reached through two paths and x through a reshape and an add,
  // in both operand orders (which consumer's backward runs first decides which tensor adopts a buffer).
  const losses = [false, true].map((swap) => () => {
    const h1 = T.mul(x, x);
    const h2 = T.scale(x, 3);
    const s = T.add(h1, h2);
    const q = T.mul(h1, h1);
    const f = T.add(swap ? T.add(q, s) : T.add(s, q), T.reshape(T.reshape(x, [3, 4]), [2, 6]));
    return T.sum(T.mul(f, w));
  });
  const expected = x.toArray().map((v, i) => (2 * v + 3 + 4 * v ** 3 + 1) * w.data[i]!);
  for (const loss of losses) {
    for (const scoped of [false, true]) {
      x.grad = null;
      if (scoped) withScope(() => loss().backward());
      else loss().backward();
      // Reuse the released buffers: a parameter's gradient must not live in one of them.
      withScope(() => T.scale(T.mul(x, x), 3).data.fill(123));
      assert.ok(relError(x.grad!.data, expected) < 1e-12, `scoped=${scoped}: ${x.grad!.toArray()} vs ${expected}`);
    }
  }
});

test('inside a step scope, gradients first written by GEMM, permute, GELU and copies overwrite recycled buffers', () => {
  const x = r(2, 3, 4);
  const w1 = r(4, 5);
  const w2 = r(5, 3);
  const bias = r(5);
  for (const t of [x, w1, w2, bias]) t.requiresGrad = true;
  // Intermediate gradients first written by ops that overwrite (no zero fill): matmul's dA and
  // batched dB, permute, GELU, and a copy where add's gradient was already handed on; h and g are
  // then accumulated into by their second consumer.
  const loss = () => {
    const h = T.matmul(x, w1, {}, bias); // [2, 3, 5]
    const g = T.gelu(T.permute(h, [0, 2, 1]), 'tanh'); // [2, 5, 3]
    const k = T.matmul(h, w2); // [2, 3, 3]
    const s = T.add(T.matmul(g, k), g); // batched, both operands intermediates
    return T.sum(T.mul(s, s));
  };
  const grads = () => [x, w1, w2, bias].map((t) => t.grad!.toArray());
  for (const t of [x, w1, w2, bias]) t.grad = null;
  loss().backward(); // outside a scope: every gradient starts as a zero-filled new array
  const expected = grads();
  for (let round = 0; round < 3; round++) {
    for (const t of [x, w1, w2, bias]) t.grad = null;
    // Park garbage (NaN) in the pool for every size up to 60 elements, so fresh gradients come from it.
    withScope(() => { for (let n = 1; n <= 60; n++) for (let c = 0; c < 4; c++) T.scratch(n, 'float64').fill(NaN); });
    withScope(() => loss().backward());
    grads().forEach((g, i) => assert.ok(relError(g, expected[i]!) < 1e-12, `round ${round}, input ${i}: ${g} vs ${expected[i]}`));
  }
});

test('select0 slices accumulate straight into the parent gradient, next to reshape and add', () => {
  const x = r(2, 6);
  const w = r(2, 3);
  x.requiresGrad = true;
  // h = x², f = h₀ + h₁ + h₀² (rows of h, each reshaped to [2, 3])
  const loss = () => {
    const h = T.mul(x, x);
    const [h0, h1] = [T.select0(h, 0), T.select0(h, 1)];
    const f = T.add(T.add(T.reshape(h0, [2, 3]), T.reshape(h1, [2, 3])), T.reshape(T.mul(h0, h0), [2, 3]));
    return T.sum(T.mul(f, w));
  };
  const expected = x.toArray().map((v, i) => (i < 6 ? 1 + 2 * v * v : 1) * w.data[i % 6]! * 2 * v);
  for (const scoped of [false, true]) {
    x.grad = null;
    if (scoped) withScope(() => loss().backward());
    else loss().backward();
    assert.ok(relError(x.grad!.data, expected) < 1e-12, `scoped=${scoped}: ${x.grad!.toArray()} vs ${expected}`);
  }
});

test('noGrad records nothing', () => {
  const x = r(3);
  x.requiresGrad = true;
  const y = noGrad(() => T.mul(x, x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.parents.length, 0);
});

test('bad input: errors name the op and the shapes', () => {
  assert.throws(() => T.matmul(r(2, 3), r(4, 5)), /matmul: inner dimensions differ: a \[2, 3\] · b \[4, 5\]/);
  assert.throws(() => T.add(r(2, 3), r(4)), /add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
  assert.throws(() => T.layerNorm(r(2, 3), r(4), r(3), 1e-5), /layerNorm: weight has shape \[4\], expected \[3\]/);
  assert.throws(() => T.reshape(r(2, 3), [4, 2]), /reshape: cannot reshape \[2, 3\]/);
  assert.throws(() => T.crossEntropy(r(2, 3), new Int32Array(3)), /crossEntropy: 3 labels for logits \[2, 3\]/);
  assert.throws(() => T.attention(r(1, 2, 3, 4), r(1, 2, 3, 5), r(1, 2, 3, 4)), /attention: k has shape \[1, 2, 3, 5\], expected \[1, 2, \*, 4\]/);
  assert.throws(() => T.embedding(r(3), new Int32Array([0])), /embedding: table must be 2-D/);
  assert.throws(() => T.permute(r(2, 3), [0, 0]), /permute: perm \[0, 0\] is not a permutation/);
  assert.throws(() => T.concat([r(2, 3), r(3, 3)], 1), /concat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/);
});
