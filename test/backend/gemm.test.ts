/**
 * Native GEMM (native/gemm.c) against the reference spec (src/backend/reference/gemm.ts): odd shapes
 * around the micro-tile and block sizes, all transpose combinations, bias/accumulate epilogues,
 * batches with shared and strided B, subarray views, the bf16 autocast path and argument errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeAddon, type NativeAddon } from '../../src/backend/native.ts';
import { gemm as referenceGemm } from '../../src/backend/reference/gemm.ts';
import { roundBf16 } from '../../src/backend/reference/bf16.ts';
import { Rng } from '../../src/util/random.ts';

function addon(): NativeAddon {
  const a = loadNativeAddon();
  assert.ok(a, 'native addon not built (run npm run build:native)');
  assert.equal(typeof a.gemm, 'function', 'native addon does not export gemm');
  return a;
}

const rng = new Rng(1234);
function randomArray(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal();
  return x;
}

/** max |actual − expected| / max |expected|: error relative to the scale of the result. */
function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

interface Case {
  m: number; n: number; k: number; transA: boolean; transB: boolean; accumulate: boolean; bias: boolean;
  batch?: number; strideA?: number; strideB?: number; strideC?: number; bf16?: boolean;
}

/** Runs one case through both backends on identical inputs; returns [native C, reference C, reference fp32 C]. */
function runBoth(cs: Case): { native: Float32Array; reference: Float32Array; exact: Float32Array } {
  const { m, n, k, transA, transB, accumulate } = cs;
  const batch = cs.batch ?? 1;
  const strideA = cs.strideA ?? m * k, strideB = cs.strideB ?? k * n, strideC = cs.strideC ?? m * n;
  const span = (stride: number, size: number) => (batch === 0 || size === 0 ? 0 : (batch - 1) * stride + size);
  const a = randomArray(span(strideA, m * k));
  const b = randomArray(span(strideB, k * n));
  const c0 = randomArray(span(strideC, m * n));
  const bias = cs.bias ? randomArray(n) : null;
  const native = c0.slice(), reference = c0.slice(), exact = c0.slice();
  const args = [m, n, k, transA, transB, accumulate, batch, strideA, strideB, strideC] as const;
  addon().gemm(a, b, native, bias, ...args, cs.bf16 ?? false);
  referenceGemm(a, b, reference, bias, ...args, cs.bf16 ?? false);
  referenceGemm(a, b, exact, bias, ...args, false);
  return { native, reference, exact };
}

const describe = (cs: Case) => JSON.stringify(cs);

// Shapes around the tile (AVX-512: 14×32, AVX2: 6×16, SSE: 6×8), depth chunk (8), depth block
// (512) and column block (1024) sizes, the unpacked few-rows path (m ≤ 8), and the degenerate 1s.
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [1, 7, 33], [7, 1, 129], [33, 129, 7], [129, 33, 1], [14, 32, 8], [15, 33, 17],
  [13, 31, 9], [6, 16, 5], [29, 65, 513], [130, 47, 40], [3, 1100, 5], [64, 64, 64], [4, 100, 40], [2, 80, 17],
];

test('gemm fp32 matches the reference for odd shapes and every transpose combination', () => {
  for (const [m, n, k] of SHAPES) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [accumulate, bias] of [[false, false], [true, true], [false, true], [true, false]] as const) {
          const cs = { m, n, k, transA, transB, accumulate, bias };
          const { native, reference } = runBoth(cs);
          const err = relError(native, reference);
          assert.ok(err < 1e-5, `${describe(cs)}: relative error ${err}`);
        }
      }
    }
  }
});

test('gemm fp32: a known product, bias and accumulate epilogues exactly', () => {
  // A (2×3) = [[1,2,3],[4,5,6]], B (3×2) = [[1,0],[0,1],[1,1]] → AB = [[4,5],[10,11]]
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = new Float32Array([1, 0, 0, 1, 1, 1]);
  const c = new Float32Array([100, 200, 300, 400]);
  addon().gemm(a, b, c, null, 2, 2, 3, false, false, false, 1, 0, 0, 0, false);
  assert.deepEqual([...c], [4, 5, 10, 11]);
  addon().gemm(a, b, c, new Float32Array([0.5, -1]), 2, 2, 3, false, false, true, 1, 0, 0, 0, false);
  assert.deepEqual([...c], [8.5, 9, 20.5, 21]);
  // Aᵀ stored 3×2 and Bᵀ stored 2×3 give the same product.
  const at = new Float32Array([1, 4, 2, 5, 3, 6]);
  const bt = new Float32Array([1, 0, 1, 0, 1, 1]);
  addon().gemm(at, bt, c, null, 2, 2, 3, true, true, false, 1, 0, 0, 0, false);
  assert.deepEqual([...c], [4, 5, 10, 11]);
});

test('gemm k = 0 writes bias (or adds it) and m = 0, n = 0, batch = 0 are no-ops', () => {
  const c = new Float32Array([1, 2, 3, 4]);
  addon().gemm(new Float32Array(0), new Float32Array(0), c, new Float32Array([10, 20]), 2, 2, 0, false, false, true, 1, 0, 0, 0, false);
  assert.deepEqual([...c], [11, 22, 13, 24]);
  addon().gemm(new Float32Array(0), new Float32Array(0), c, null, 2, 2, 0, false, false, false, 1, 0, 0, 0, false);
  assert.deepEqual([...c], [0, 0, 0, 0]);
  const untouched = new Float32Array([5]);
  // Operands are still checked against the shape (m = 0 needs no A, but B is still k×n).
  addon().gemm(new Float32Array(0), new Float32Array(3), untouched, null, 0, 1, 3, false, false, false, 1, 0, 0, 0, false);
  addon().gemm(new Float32Array(3), new Float32Array(0), untouched, null, 1, 0, 3, false, false, false, 1, 0, 0, 0, false);
  addon().gemm(new Float32Array(0), new Float32Array(0), untouched, null, 1, 1, 3, false, false, false, 0, 3, 3, 1, false);
  assert.deepEqual([...untouched], [5]);
});

test('gemm batches: shared B (strideB = 0), strided B, padded strides, accumulate into one C', () => {
  const cases: Case[] = [
    { m: 17, n: 40, k: 23, transA: false, transB: false, accumulate: false, bias: true, batch: 5, strideB: 0 },
    { m: 17, n: 40, k: 23, transA: true, transB: true, accumulate: true, bias: false, batch: 4 },
    { m: 9, n: 33, k: 70, transA: false, transB: true, accumulate: false, bias: true, batch: 3, strideA: 9 * 70 + 5, strideB: 33 * 70 + 3, strideC: 9 * 33 + 7 },
    { m: 64, n: 64, k: 32, transA: false, transB: true, accumulate: false, bias: false, batch: 12 },
    { m: 64, n: 32, k: 64, transA: false, transB: false, accumulate: true, bias: false, batch: 8, strideB: 0 },
    { m: 2, n: 50, k: 20, transA: true, transB: false, accumulate: false, bias: true, batch: 6, strideB: 0 },
    // strideC = 0 with accumulate sums the batch into one C (e.g. a weight gradient).
    { m: 20, n: 36, k: 15, transA: true, transB: false, accumulate: true, bias: false, batch: 6, strideC: 0 },
  ];
  for (const cs of cases) {
    const { native, reference } = runBoth(cs);
    const err = relError(native, reference);
    assert.ok(err < 1e-5, `${describe(cs)}: relative error ${err}`);
  }
});

test('gemm reads and writes subarray views (non-zero byteOffset) only inside them', () => {
  const [m, n, k] = [19, 45, 27];
  const pad = 5;
  const view = (x: Float32Array) => { const buf = new Float32Array(x.length + 2 * pad).fill(7); buf.set(x, pad); return buf.subarray(pad, pad + x.length); };
  for (const [transA, transB] of [[false, false], [true, true], [false, true], [true, false]] as const) {
    const a = randomArray(m * k), b = randomArray(k * n), bias = randomArray(n), c = randomArray(m * n);
    const expected = c.slice();
    referenceGemm(a, b, expected, bias, m, n, k, transA, transB, true, 1, 0, 0, 0, false);
    const av = view(a), bv = view(b), biasv = view(bias), cv = view(c);
    addon().gemm(av, bv, cv, biasv, m, n, k, transA, transB, true, 1, 0, 0, 0, false);
    assert.ok(relError(cv, expected) < 1e-5);
    const whole = new Float32Array(cv.buffer);
    for (let i = 0; i < pad; i++) {
      assert.equal(whole[i], 7, 'wrote before the view');
      assert.equal(whole[pad + m * n + i], 7, 'wrote after the view');
    }
  }
});

test('gemm bf16 rounds inputs like the reference and stays within bf16 error of fp32', () => {
  for (const [m, n, k] of [[1, 1, 1], [7, 33, 129], [33, 7, 2], [15, 33, 17], [29, 65, 513], [130, 47, 1030], [64, 64, 64], [1, 100, 70], [4, 90, 33]] as const) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const cs = { m, n, k, transA, transB, accumulate: true, bias: true, bf16: true };
        const { native, reference, exact } = runBoth(cs);
        const tight = relError(native, reference);
        assert.ok(tight < 2e-5, `${describe(cs)}: vs reference bf16 ${tight}`);
        const loose = relError(native, exact);
        assert.ok(loose < 1e-2, `${describe(cs)}: vs fp32 ${loose}`);
      }
    }
  }
  // Inputs that are already bf16 values multiply exactly: bf16 and fp32 results agree bit for bit
  // when the products and sums are exact (small integers).
  const a = new Float32Array([1, 2, 3, 4, 5, 6]), b = new Float32Array([7, 8, 9, 10, 11, 12]);
  const c16 = new Float32Array(4), c32 = new Float32Array(4);
  addon().gemm(a, b, c16, null, 2, 2, 3, false, false, false, 1, 0, 0, 0, true);
  addon().gemm(a, b, c32, null, 2, 2, 3, false, false, false, 1, 0, 0, 0, false);
  assert.deepEqual([...c16], [58, 64, 139, 154]);
  assert.deepEqual([...c16], [...c32]);
  // 1 + 2⁻⁸ is a tie between bf16 neighbours 1 and 1 + 2⁻⁷ and rounds to even (1).
  const tie = new Float32Array([1 + 2 ** -8]);
  const out = new Float32Array(1);
  addon().gemm(tie, new Float32Array([1]), out, null, 1, 1, 1, false, false, false, 1, 0, 0, 0, true);
  assert.equal(out[0], 1);
  assert.equal(roundBf16(1 + 3 * 2 ** -8), 1 + 2 ** -6);
});

test('gemm results do not depend on the thread count', () => {
  const a = addon();
  const saved = a.getThreads();
  try {
    for (const bf16 of [false, true]) {
      const [m, n, k] = [257, 190, 300];
      const x = randomArray(m * k), w = randomArray(k * n), bias = randomArray(n);
      const outs = [1, 2, 3].map((threads) => {
        a.setThreads(threads);
        const c = new Float32Array(m * n);
        a.gemm(x, w, c, bias, m, n, k, false, true, false, 1, 0, 0, 0, bf16);
        return c;
      });
      assert.deepEqual(outs[1], outs[0]);
      assert.deepEqual(outs[2], outs[0]);
    }
  } finally {
    a.setThreads(saved);
  }
});

// Rows split over the team (B packed by the team together, or by each thread for few rows; row
// chunks handed out dynamically) with several depth blocks (k > 512; > 1024 for bf16 pairs), every
// transpose combination, accumulate and bias, and a column block edge (n > 1024).
test('gemm with several depth blocks: same bits for 1, 2 and 3 threads in every layout', () => {
  const a = addon();
  const saved = a.getThreads();
  try {
    const shapes: Array<[number, number, number]> = [[130, 72, 1100], [200, 40, 530], [40, 100, 1100], [20, 1050, 40]];
    for (const [m, n, k] of shapes) {
      const x = randomArray(m * k), w = randomArray(k * n), bias = randomArray(n), c0 = randomArray(m * n);
      for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        for (const bf16 of [false, true]) {
          const outs = [1, 2, 3].map((threads) => {
            a.setThreads(threads);
            const c = c0.slice();
            a.gemm(x, w, c, bias, m, n, k, transA, transB, true, 1, 0, 0, 0, bf16);
            return c;
          });
          const cs = describe({ m, n, k, transA, transB, accumulate: true, bias: true, bf16 });
          if (!bf16) {
            const expected = c0.slice();
            referenceGemm(x, w, expected, bias, m, n, k, transA, transB, true, 1, 0, 0, 0, false);
            assert.ok(relError(outs[0]!, expected) < 1e-5, `${cs}: vs reference`);
          }
          assert.deepEqual(outs[1], outs[0], `${cs}: 2 threads`);
          assert.deepEqual(outs[2], outs[0], `${cs}: 3 threads`);
        }
      }
    }
  } finally {
    a.setThreads(saved);
  }
});

test('few-rows gemm (m ≤ 8): each row gets the bits of that row alone, whatever the other rows', () => {
  // Batched decoding relies on it (fewRows in src/models/gpt.ts): a sequence decodes to the same
  // tokens alone or inside a batch. Widths cover whole column strips, single vectors, scalar tails and
  // several column tiles of row-major B (512 columns each); depths a multiple of 4 rows of B and not.
  const g = addon();
  for (const [k, n] of [[37, 45], [64, 100], [256, 70], [20, 7], [21, 1100], [6, 530]] as const) {
    for (const transB of [false, true]) {
      for (const bf16 of [false, true]) {
        for (const accumulate of [false, true]) {
          const b = randomArray(k * n), bias = randomArray(n), a = randomArray(8 * k), c0 = randomArray(8 * n);
          const alone = (i: number) => {
            const c = c0.slice(i * n, (i + 1) * n);
            g.gemm(a.subarray(i * k, (i + 1) * k), b, c, bias, 1, n, k, false, transB, accumulate, 1, k, k * n, n, bf16);
            return c;
          };
          const what = `k=${k} n=${n} transB=${transB} bf16=${bf16} accumulate=${accumulate}`;
          for (let m = 2; m <= 8; m++) {
            const c = c0.slice(0, m * n);
            g.gemm(a, b, c, bias, m, n, k, false, transB, accumulate, 1, m * k, k * n, m * n, bf16);
            for (let i = 0; i < m; i++) assert.deepEqual(c.subarray(i * n, (i + 1) * n), alone(i), `${what}: row ${i} of ${m}`);
            const want = c0.slice(0, m * n);
            referenceGemm(a, b, want, bias, m, n, k, false, transB, accumulate, 1, m * k, k * n, m * n, bf16);
            assert.ok(relError(c, want) < 1e-5, `${what}, m=${m}: vs the reference`);
          }
        }
      }
    }
  }
});

test('gemm rejects arrays too short for the shape with a RangeError naming gemm', () => {
  const a = addon();
  const [m, n, k] = [4, 5, 6];
  const ok = () => [new Float32Array(m * k), new Float32Array(k * n), new Float32Array(m * n)] as const;
  const call = (impl: 'native' | 'reference', A: Float32Array, B: Float32Array, C: Float32Array, bias: Float32Array | null,
    batch = 1, sa = m * k, sb = k * n, sc = m * n, mm = m) => {
    const f = impl === 'native' ? a.gemm : referenceGemm;
    f(A, B, C, bias, mm, n, k, false, false, false, batch, sa, sb, sc, false);
  };
  for (const impl of ['native', 'reference'] as const) {
    const [A, B, C] = ok();
    assert.throws(() => call(impl, A.subarray(1), B, C, null), (e: Error) => e instanceof RangeError && /gemm/.test(e.message) && /\ba\b/.test(e.message));
    assert.throws(() => call(impl, A, B.subarray(1), C, null), (e: Error) => e instanceof RangeError && /gemm/.test(e.message));
    assert.throws(() => call(impl, A, B, C.subarray(1), null), (e: Error) => e instanceof RangeError && /gemm/.test(e.message));
    assert.throws(() => call(impl, A, B, C, new Float32Array(n - 1)), (e: Error) => e instanceof RangeError && /gemm.*bias/.test(e.message));
    // Batch 2 needs (batch−1)·stride + size elements.
    assert.throws(() => call(impl, A, B, C, null, 2), (e: Error) => e instanceof RangeError && /gemm/.test(e.message) && /batch=2/.test(e.message));
    assert.throws(() => call(impl, A, B, C, null, 1, m * k, k * n, m * n, -1), (e: Error) => e instanceof RangeError && /gemm/.test(e.message));
    // Shared B (strideB = 0) only needs one B.
    const A2 = new Float32Array(2 * m * k), C2 = new Float32Array(2 * m * n);
    call(impl, A2, B, C2, null, 2, m * k, 0, m * n);
  }
  const [A, B, C] = ok();
  assert.throws(() => a.gemm(new Float64Array(m * k) as unknown as Float32Array, B, C, null, m, n, k, false, false, false, 1, 0, 0, 0, false),
    (e: Error) => e instanceof TypeError && /gemm: 'a' must be a Float32Array/.test(e.message));
  assert.throws(() => (a.gemm as unknown as (...x: unknown[]) => void)(A, B, C), TypeError);
  // Sizes whose element counts overflow are rejected, not wrapped around.
  assert.throws(() => a.gemm(A, B, C, null, 2 ** 39, 2 ** 39, 2 ** 39, false, false, false, 1, 0, 0, 0, false), RangeError);
});
