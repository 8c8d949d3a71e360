/**
 * Interleaved A/B of two builds of the native addon in ONE process (`npm run bench:ab -- A.node B.node …`).
 * On a shared machine the same kernel runs 10–30 % faster or slower from one minute to the next, so
 * runs of one build after the other compare the host's phases, not the builds; here the two addons
 * are loaded side by side and every repetition calls A then B (or B then A), and the medians are
 * compared. Outputs are compared bit for bit.
 *
 *   gemm  '[[m, n, k, transA, transB], …]' [--reps N] [--cold]   (--cold: a 64 MB sweep before each call)
 *   attention B,H,T,D [--causal] [--reps N] [--cold]             (token-major q, k, v as in training)
 *
 * Build the variants first, e.g. `CFLAGS=-DKC_MAX=256 npm run build:native && cp build/Release/primer_native.node /tmp/b.node`.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import type { NativeAddon } from '../src/backend/native.ts';

process.env.GOMP_SPINCOUNT ??= '10000'; // Primer's default wait policy (src/backend/native.ts), before libgomp loads
const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { reps: { type: 'string' }, cold: { type: 'boolean' }, causal: { type: 'boolean' } },
});
const [pathA, pathB, mode, spec] = positionals;
if (!pathA || !pathB || (mode !== 'gemm' && mode !== 'attention') || !spec) {
  throw new Error("usage: bench:ab -- A.node B.node gemm '[[m,n,k,transA,transB],…]' | attention B,H,T,D [--causal] [--reps N] [--cold]");
}
const require = createRequire(import.meta.url);
const libs = [require(pathA), require(pathB)] as NativeAddon[];
const reps = Number(o.reps ?? 40);
const junk = new Float32Array(o.cold ? 16 << 20 : 0), junk2 = new Float32Array(junk.length);
const evict = () => { if (junk.length) libs[0]!.add(junk, junk, junk2, junk.length); };
const median = (t: number[]) => [...t].sort((x, y) => x - y)[t.length >> 1]!;
const same = (x: Float32Array[]) => x[0]!.every((v, i) => Object.is(v, x[1]![i]));
const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);

/** Runs each side `reps` times, alternating which goes first; returns [A, B] medians in ms. */
function timed(calls: Array<() => void>, warm = 3): [number, number] {
  const t: number[][] = [[], []];
  for (let i = 0; i < reps + warm; i++) {
    for (const w of [i & 1, 1 - (i & 1)]) {
      evict();
      const t0 = performance.now();
      calls[w]!();
      if (i >= warm) t[w]!.push(performance.now() - t0);
    }
  }
  return [median(t[0]!), median(t[1]!)];
}

console.log(`A = ${pathA}, B = ${pathB}; ${reps} alternating repetitions${o.cold ? ', caches swept before each call' : ''}; B/A = speed of B over A`);
if (mode === 'gemm') {
  for (const [m, n, k, ta, tb] of JSON.parse(spec) as Array<[number, number, number, boolean, boolean]>) {
    const a = random(m * k), b = random(k * n), c = [new Float32Array(m * n), new Float32Array(m * n)];
    const [ta_, tb_] = timed([0, 1].map((w) => () => libs[w]!.gemm(a, b, c[w]!, null, m, n, k, ta, tb, false, 1, 0, 0, 0, false)));
    const g = (ms: number) => ((2 * m * n * k) / ms / 1e6).toFixed(1);
    console.log(`${m}x${k}·${k}x${n} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}: A ${g(ta_)} B ${g(tb_)} GFLOP/s, B/A ${(ta_ / tb_).toFixed(3)}, ${same(c) ? 'same bits' : 'BITS DIFFER'}`);
  }
} else {
  const [B, H, T, D] = spec.split(',').map(Number) as [number, number, number, number];
  const C = H * D, causal = o.causal ?? false;
  const qkv = random(B * T * 3 * C), dout = random(B * T * C);
  const out = [0, 1].map(() => new Float32Array(B * T * C)), lse = [0, 1].map(() => new Float32Array(B * H * T));
  const dqkv = [0, 1].map(() => new Float32Array(B * T * 3 * C));
  const strides = [3 * C, 3 * C, C] as const;
  const q = qkv, k = qkv.subarray(C), v = qkv.subarray(2 * C);
  const forward = (w: number) => () => libs[w]!.attention(q, k, v, out[w]!, lse[w]!, B, H, T, T, D, 1 / Math.sqrt(D), causal, null, false, H, strides);
  const backward = (w: number) => () => libs[w]!.attentionBackward(q, k, v, out[w]!, lse[w]!, dout, dqkv[w]!, dqkv[w]!.subarray(C), dqkv[w]!.subarray(2 * C),
    B, H, T, T, D, 1 / Math.sqrt(D), causal, null, false, H, strides, false);
  const [fa, fb] = timed([forward(0), forward(1)]);
  const [ba, bb] = timed([backward(0), backward(1)]);
  console.log(`B=${B} H=${H} T=${T} D=${D}${causal ? ' causal' : ''}: forward A ${fa.toFixed(3)} B ${fb.toFixed(3)} ms (B/A ${(fa / fb).toFixed(3)}), ` +
    `backward A ${ba.toFixed(3)} B ${bb.toFixed(3)} ms (B/A ${(ba / bb).toFixed(3)}); out ${same(out) ? 'same' : 'DIFFER'}, dqkv ${same(dqkv) ? 'same' : 'DIFFER'}`);
}
