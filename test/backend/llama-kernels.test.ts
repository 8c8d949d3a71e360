/**
 * Llama-block kernels (rmsNorm, rope, siluMul and their backwards): the reference backward against
 * central finite differences (float64), the native kernels against the reference (fp32, sizes that
 * hit every vector tail and the OpenMP paths, misaligned outputs with guards, accumulation), and
 * the argument errors of both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ref from '../../src/backend/reference/kernels.ts';
import { Rng, accumulated, assertClose, dot, f32, f64, guarded, numericGradient, randn, requireNative } from './kernels-helpers.ts';

const ROW_SHAPES: Array<[number, number]> = [[1, 1], [1, 7], [7, 33], [33, 129], [3, 1031], [129, 17], [64, 768], [300, 256]];
const FLAT_SIZES = [1, 7, 15, 16, 17, 33, 129, 1031, 70_001];

/** Position tables as the ops build them: cos/sin(p·θ_i), tableRows × d/2. */
function tables(tableRows: number, d: number): { cos: Float64Array; sin: Float64Array } {
  const half = d / 2;
  const cos = new Float64Array(tableRows * half), sin = new Float64Array(tableRows * half);
  for (let p = 0; p < tableRows; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p / 10000 ** ((2 * i) / d);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

test('reference rmsNormBackward, ropeBackward, siluMulBackward match finite differences (float64)', () => {
  const rng = new Rng(1);
  // objective L = Σ out·w_out (w_out fixed random), so dL/dout = w_out
  {
    const [rows, cols, eps] = [3, 5, 1e-5];
    const x = randn(rng, rows * cols), weight = randn(rng, cols), wOut = randn(rng, rows * cols);
    const out = new Float64Array(rows * cols), rstd = new Float64Array(rows);
    const objective = () => { ref.rmsNorm(x, weight, out, rstd, rows, cols, eps); return dot(out, wOut); };
    objective();
    const dx = new Float64Array(rows * cols), dw = new Float64Array(cols);
    ref.rmsNormBackward(wOut, x, weight, rstd, dx, dw, rows, cols);
    assertClose(dx, numericGradient(x, objective), 1e-7, 'rmsNorm dx');
    assertClose(dw, numericGradient(weight, objective), 1e-7, 'rmsNorm dweight');
  }
  {
    const [rows, heads, d, tableRows] = [4, 2, 6, 9];
    const { cos, sin } = tables(tableRows, d);
    const positions = Int32Array.of(0, 3, 8, 5);
    const x = randn(rng, rows * heads * d), wOut = randn(rng, rows * heads * d), out = new Float64Array(rows * heads * d);
    const objective = () => { ref.rope(x, cos, sin, positions, out, rows, heads, d, tableRows); return dot(out, wOut); };
    const dx = new Float64Array(rows * heads * d);
    ref.ropeBackward(wOut, cos, sin, positions, dx, rows, heads, d, tableRows);
    assertClose(dx, numericGradient(x, objective), 1e-7, 'rope dx');
  }
  {
    const n = 11;
    const gate = randn(rng, n, 3), up = randn(rng, n), wOut = randn(rng, n), out = new Float64Array(n);
    gate[0] = -30; gate[1] = 25; // saturated tails
    const objective = () => { ref.siluMul(gate, up, out, n); return dot(out, wOut); };
    const dg = new Float64Array(n), du = new Float64Array(n);
    ref.siluMulBackward(gate, up, wOut, dg, du, n);
    assertClose(dg, numericGradient(gate, objective), 1e-7, 'siluMul dgate');
    assertClose(du, numericGradient(up, objective), 1e-7, 'siluMul dup');
  }
});

test('reference rope is HF\'s x·cos + rotate_half(x)·sin, the identity at position 0 and a rotation (norm kept)', () => {
  const [heads, d, tableRows] = [3, 8, 20];
  const { cos, sin } = tables(tableRows, d);
  const x = randn(new Rng(2), 2 * heads * d);
  const out = new Float64Array(x.length);
  ref.rope(x, cos, sin, Int32Array.of(0, 13), out, 2, heads, d, tableRows);
  assert.deepEqual(out.subarray(0, heads * d), x.subarray(0, heads * d), 'position 0 leaves x unchanged');
  const half = d / 2;
  for (let hd = 0; hd < heads; hd++) {
    const o = (heads + hd) * d;
    let n0 = 0, n1 = 0;
    for (let i = 0; i < d; i++) {
      const c = cos[13 * half + (i % half)]!, s = sin[13 * half + (i % half)]!;
      const rotated = i < half ? -x[o + i + half]! : x[o + i - half]!; // rotate_half(x) = cat(−x₂, x₁)
      assert.ok(Math.abs(out[o + i]! - (x[o + i]! * c + rotated * s)) < 1e-12, `head ${hd} element ${i}`);
      n0 += x[o + i]! ** 2;
      n1 += out[o + i]! ** 2;
    }
    assert.ok(Math.abs(n0 - n1) < 1e-9 * n0, 'rotation keeps the norm');
  }
  // in place (out aliases x) gives the same result
  const inPlace = x.slice();
  ref.rope(inPlace, cos, sin, Int32Array.of(0, 13), inPlace, 2, heads, d, tableRows);
  assert.deepEqual(inPlace, out);
});

test('native rmsNorm and rmsNormBackward match the reference', () => {
  const native = requireNative();
  const rng = new Rng(3);
  for (const [rows, cols] of ROW_SHAPES) {
    const x = f32(randn(rng, rows * cols, 2)), weight = f32(randn(rng, cols)), dout = f32(randn(rng, rows * cols));
    const out = guarded(new Float32Array(rows * cols)), rstd = guarded(new Float32Array(rows));
    const wantOut = new Float32Array(rows * cols), wantRstd = new Float32Array(rows);
    native.rmsNorm(x, weight, out.a, rstd.a, rows, cols, 1e-6);
    ref.rmsNorm(x, weight, wantOut, wantRstd, rows, cols, 1e-6);
    assertClose(out.a, wantOut, 1e-5, `rmsNorm out ${rows}x${cols}`);
    assertClose(rstd.a, wantRstd, 1e-6, `rmsNorm rstd ${rows}x${cols}`);
    assert.ok(out.intact() && rstd.intact(), `rmsNorm ${rows}x${cols} wrote out of bounds`);
    const dxInit = f32(randn(rng, rows * cols)), dwInit = f32(randn(rng, cols));
    const dx = guarded(dxInit), dw = guarded(dwInit), wantDx = f32(dxInit), wantDw = f32(dwInit);
    native.rmsNormBackward(dout, x, weight, wantRstd, dx.a, dw.a, rows, cols);
    ref.rmsNormBackward(dout, x, weight, wantRstd, wantDx, wantDw, rows, cols);
    // floor 1: with one column dx = g·rstd·(1 − x̂²) vanishes by cancellation (x̂² = x²/(x²+eps))
    assertClose(accumulated(dx.a, dxInit), accumulated(wantDx, dxInit), 1e-4, `rmsNormBackward dx ${rows}x${cols}`, 1);
    assertClose(accumulated(dw.a, dwInit), accumulated(wantDw, dwInit), 1e-4, `rmsNormBackward dweight ${rows}x${cols}`);
    assert.ok(dx.intact() && dw.intact(), `rmsNormBackward ${rows}x${cols} wrote out of bounds`);
  }
});

test('native rope and ropeBackward match the reference (positions with a KV-cache offset, in place)', () => {
  const native = requireNative();
  const rng = new Rng(4);
  for (const [rows, heads, d] of [[1, 1, 2], [5, 3, 6], [17, 4, 32], [64, 4, 64], [513, 8, 64], [7, 2, 130]] as const) {
    const tableRows = rows + 40;
    const t = tables(tableRows, d), cos = f32(t.cos), sin = f32(t.sin);
    const positions = Int32Array.from({ length: rows }, (_, r) => 40 + ((r * 7) % rows)); // offset 40, any order
    const n = rows * heads * d;
    const x = f32(randn(rng, n)), dout = f32(randn(rng, n));
    const out = guarded(new Float32Array(n)), want = new Float32Array(n);
    native.rope(x, cos, sin, positions, out.a, rows, heads, d, tableRows);
    ref.rope(x, cos, sin, positions, want, rows, heads, d, tableRows);
    assertClose(out.a, want, 1e-6, `rope ${rows}x${heads}x${d}`);
    assert.ok(out.intact(), `rope ${rows}x${heads}x${d} wrote out of bounds`);
    const inPlace = guarded(x);
    native.rope(inPlace.a, cos, sin, positions, inPlace.a, rows, heads, d, tableRows);
    assert.deepEqual(inPlace.a, out.a, 'in place gives the same bits');
    const init = f32(randn(rng, n)), dx = guarded(init), wantDx = f32(init);
    native.ropeBackward(dout, cos, sin, positions, dx.a, rows, heads, d, tableRows);
    ref.ropeBackward(dout, cos, sin, positions, wantDx, rows, heads, d, tableRows);
    assertClose(accumulated(dx.a, init), accumulated(wantDx, init), 1e-6, `ropeBackward ${rows}x${heads}x${d}`);
    assert.ok(dx.intact());
    // backward is the transpose: ⟨rope(x), dout⟩ = ⟨x, ropeᵀ(dout)⟩
    const lhs = dot(f64(out.a), f64(dout)), rhs = dot(f64(x), accumulated(dx.a, init));
    assert.ok(Math.abs(lhs - rhs) <= 1e-4 * Math.sqrt(n), `adjoint: ${lhs} vs ${rhs}`);
  }
});

test('native siluMul and siluMulBackward match the reference (incl. saturated and aliased)', () => {
  const native = requireNative();
  const rng = new Rng(5);
  for (const n of FLAT_SIZES) {
    const gate = f32(randn(rng, n, 4)), up = f32(randn(rng, n)), dout = f32(randn(rng, n));
    if (n > 3) { gate[0] = -100; gate[1] = 100; gate[2] = -88; }
    const out = guarded(new Float32Array(n)), want = new Float32Array(n);
    native.siluMul(gate, up, out.a, n);
    ref.siluMul(gate, up, want, n);
    assertClose(out.a, want, 1e-5, `siluMul n=${n}`);
    assert.ok(out.intact() && out.a.every(Number.isFinite), `siluMul n=${n}`);
    const alias = guarded(gate);
    native.siluMul(alias.a, up, alias.a, n);
    assert.deepEqual(alias.a, out.a, `siluMul aliased n=${n}`);
    const gInit = f32(randn(rng, n)), uInit = f32(randn(rng, n));
    const dg = guarded(gInit), du = guarded(uInit), wantDg = f32(gInit), wantDu = f32(uInit);
    native.siluMulBackward(gate, up, dout, dg.a, du.a, n);
    ref.siluMulBackward(gate, up, dout, wantDg, wantDu, n);
    assertClose(accumulated(dg.a, gInit), accumulated(wantDg, gInit), 1e-5, `siluMulBackward dgate n=${n}`);
    assertClose(accumulated(du.a, uInit), accumulated(wantDu, uInit), 1e-5, `siluMulBackward dup n=${n}`);
    assert.ok(dg.intact() && du.intact() && dg.a.every(Number.isFinite), `siluMulBackward n=${n}`);
  }
});

test('native llama kernels do not depend on the thread count', () => {
  const native = requireNative();
  const saved = native.getThreads();
  const rng = new Rng(6);
  const [rows, cols] = [1000, 96];
  const x = f32(randn(rng, rows * cols)), w = f32(randn(rng, cols)), dout = f32(randn(rng, rows * cols));
  try {
    const runs = [1, 2, 3].map((threads) => {
      native.setThreads(threads);
      const out = new Float32Array(rows * cols), rstd = new Float32Array(rows), dx = new Float32Array(rows * cols), dw = new Float32Array(cols);
      native.rmsNorm(x, w, out, rstd, rows, cols, 1e-5);
      native.rmsNormBackward(dout, x, w, rstd, dx, dw, rows, cols);
      return { out, dx, dw };
    });
    for (const r of runs.slice(1)) for (const k of ['out', 'dx', 'dw'] as const) assert.deepEqual(r[k], runs[0]![k], k);
  } finally {
    native.setThreads(saved);
  }
});

test('llama kernels reject bad arguments naming the kernel (native and reference)', () => {
  const native = requireNative();
  const f = (n: number) => new Float32Array(n);
  for (const [impl, prefix] of [[native, 'primer native: '], [ref, 'reference ']] as const) {
    assert.throws(() => impl.rmsNorm(f(6), f(3), f(6), f(1), 2, 3, 1e-5), { name: 'RangeError', message: new RegExp(`${prefix}rmsNorm: 'rstd' has 1 elements, needs 2`) });
    assert.throws(() => impl.rmsNormBackward(f(6), f(6), f(3), f(2), f(6), f(2), 2, 3), { name: 'RangeError', message: /rmsNormBackward: 'dweight'/ });
    assert.throws(() => impl.rope(f(8), f(4), f(4), Int32Array.of(0, 2), f(8), 2, 1, 4, 2), { name: 'RangeError', message: /rope: positions\[1\] = 2 is out of range \[0, 2\)/ });
    assert.throws(() => impl.rope(f(6), f(6), f(6), Int32Array.of(0, 1), f(6), 2, 1, 3, 2), { name: 'RangeError', message: /rope: 'd' must be even/ });
    assert.throws(() => impl.ropeBackward(f(8), f(3), f(4), Int32Array.of(0, 1), f(8), 2, 1, 4, 2), { name: 'RangeError', message: /ropeBackward: 'cos' has 3 elements, needs 4/ });
    assert.throws(() => impl.siluMulBackward(f(4), f(4), f(4), f(4), f(3), 4), { name: 'RangeError', message: /siluMulBackward: 'dup' has 3 elements, needs 4/ });
  }
  assert.throws(() => native.rope(f(8), f(4), f(4), new Float32Array(2) as unknown as Int32Array, f(8), 2, 1, 4, 2), { name: 'TypeError', message: /rope: 'positions' must be an Int32Array/ });
  assert.throws(() => native.siluMul(new Float64Array(2) as unknown as Float32Array, f(2), f(2), 2), { name: 'TypeError', message: /siluMul: 'gate' must be a Float32Array/ });
});
