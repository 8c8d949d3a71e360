/**
 * Distributional initialisation of token embeddings (`pretrain --embedding-init ppmi`): before the
 * transformer sees a batch, each token's embedding row is set from how the token co-occurs with its
 * neighbours in the training stream — the count-based word vectors of Levy, Goldberg & Dagan 2015:
 *
 *   M[t, c]  = #(c within ±window of t)                      (c over the `contexts` most frequent tokens)
 *   PPMI     = max(0, log M[t,c] − log Σ_c M[t,c] − log P_α(c)),   P_α(c) = n_c^α / Σ n^α, α = 0.75
 *   E        = U_k · √S_k   of the rank-k truncated SVD of PPMI (randomized, Halko et al. 2011)
 *
 * Why: a small model trained for minutes learns next-token statistics but not which words share
 * contexts across a sentence window, and that is what lets a few labels generalise to words they
 * never contained ("excellent" near "great", "awful" near "terrible"). The counts over the whole
 * corpus take seconds. Rows are rescaled to the norm of the usual N(0, σ²) init, so the
 * optimiser sees the scale it expects; tokens never counted keep their random rows.
 */
import { backend } from '../backend/index.ts';
import { Rng } from '../util/random.ts';

export interface DistributionalOptions {
  /** Embedding width k. */
  dims: number;
  /** Neighbours counted on each side. */
  window?: number;
  /** Context vocabulary: the most frequent tokens (bounds memory to vocab × contexts floats). */
  contexts?: number;
  /** Tokens never counted as targets or contexts (separators, padding). */
  skip?: readonly number[];
  /** Power iterations of the randomized SVD. */
  powerIterations?: number;
  /** E = U·S^p: p = 0.5 is the symmetric split; p = 0 weighs every direction alike (Levy et al. 2015). */
  eigenPower?: number;
  seed?: number;
}

export interface DistributionalEmbeddings {
  /** vocab × dims, row-major; rows of uncounted tokens are zero. */
  vectors: Float32Array;
  /** 1 where a token occurred (its row is meaningful). */
  counted: Uint8Array;
  singularValues: Float64Array;
}

/** PPMI-SVD token vectors from a token stream (see the file comment). */
export function distributionalEmbeddings(stream: Int32Array, vocab: number, o: DistributionalOptions): DistributionalEmbeddings {
  const window = o.window ?? 5;
  const freq = new Float64Array(vocab);
  for (let i = 0; i < stream.length; i++) freq[stream[i]!]!++;
  for (const s of o.skip ?? []) if (s >= 0 && s < vocab) freq[s] = 0;
  const byFreq = [...freq.keys()].filter((t) => freq[t]! > 0).sort((a, b) => freq[b]! - freq[a]!);
  const nCtx = Math.min(o.contexts ?? 4096, byFreq.length);
  const ctxOf = new Int32Array(vocab).fill(-1);
  byFreq.slice(0, nCtx).forEach((t, c) => { ctxOf[t] = c; });

  // Co-occurrence counts, symmetric window; a skipped token (separator) ends the window.
  const m = new Float32Array(vocab * nCtx);
  const skip = new Uint8Array(vocab);
  for (const s of o.skip ?? []) if (s >= 0 && s < vocab) skip[s] = 1;
  for (let i = 0; i < stream.length; i++) {
    const t = stream[i]!;
    if (skip[t]) continue;
    for (let j = i + 1; j <= i + window && j < stream.length; j++) {
      const u = stream[j]!;
      if (skip[u]) break;
      const cu = ctxOf[u]!, ct = ctxOf[t]!;
      if (cu >= 0) m[t * nCtx + cu]!++;
      if (ct >= 0) m[u * nCtx + ct]!++;
    }
  }
  // PPMI with context-distribution smoothing, in place.
  const rowSum = new Float64Array(vocab), colSum = new Float64Array(nCtx);
  for (let t = 0; t < vocab; t++) for (let c = 0; c < nCtx; c++) { const v = m[t * nCtx + c]!; rowSum[t] += v; colSum[c] += v; }
  let alphaTotal = 0;
  for (let c = 0; c < nCtx; c++) alphaTotal += colSum[c]! ** 0.75;
  const logPc = Float64Array.from(colSum, (n) => Math.log(Math.max(n, 1e-30) ** 0.75 / alphaTotal));
  const counted = new Uint8Array(vocab);
  for (let t = 0; t < vocab; t++) {
    if (rowSum[t]! <= 0) continue;
    counted[t] = 1;
    const logRow = Math.log(rowSum[t]!);
    for (let c = 0; c < nCtx; c++) {
      const v = m[t * nCtx + c]!;
      m[t * nCtx + c] = v > 0 ? Math.max(0, Math.log(v) - logRow - logPc[c]!) : 0;
    }
  }
  const { u, s } = truncatedSvd(m, vocab, nCtx, Math.min(o.dims, nCtx), o.powerIterations ?? 3, o.seed ?? 0);
  const k = s.length;
  const vectors = new Float32Array(vocab * o.dims);
  for (let t = 0; t < vocab; t++) for (let j = 0; j < k; j++) vectors[t * o.dims + j] = u[t * k + j]! * s[j]! ** (o.eigenPower ?? 0.5);
  return { vectors, counted, singularValues: s };
}

/**
 * Overwrites the rows of `table` (vocab × dims) of counted tokens with the distributional vectors,
 * each row rescaled to the mean row norm of the random init it replaces.
 */
export function applyDistributionalInit(table: Float32Array, dims: number, e: DistributionalEmbeddings): number {
  const vocab = e.counted.length;
  let initNorm = 0;
  for (let t = 0; t < vocab; t++) initNorm += Math.hypot(...table.subarray(t * dims, (t + 1) * dims));
  initNorm /= vocab;
  let rows = 0;
  for (let t = 0; t < vocab; t++) {
    if (!e.counted[t]) continue;
    const row = e.vectors.subarray(t * dims, (t + 1) * dims);
    const norm = Math.hypot(...row);
    if (!(norm > 0)) continue;
    for (let j = 0; j < dims; j++) table[t * dims + j] = (row[j]! / norm) * initNorm;
    rows++;
  }
  return rows;
}

/**
 * Sets a model's token-embedding table (vocab × dims, in place) from the co-occurrence counts of a
 * token stream (distributionalEmbeddings + applyDistributionalInit) and logs what it did.
 */
export function initEmbeddingsFromStream(table: { data: ArrayLike<number>; shape: readonly number[] }, stream: Int32Array, o: { skip: readonly number[]; seed: number; what: string; log: (m: string) => void }): void {
  const t = performance.now();
  const [vocab, dims] = [table.shape[0]!, table.shape[1]!];
  const e = distributionalEmbeddings(stream, vocab, { dims, skip: o.skip, seed: o.seed });
  const rows = applyDistributionalInit(table.data as Float32Array, dims, e);
  o.log(`init: ${o.what} from co-occurrence (PPMI-SVD, ${rows} of ${vocab} tokens), ${((performance.now() - t) / 1000).toFixed(1)}s`);
}

/** C (m×n) = op(A)·op(B) on the active backend, fp32. */
function matmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean): Float32Array {
  const c = new Float32Array(m * n);
  backend().gemm(a, b, c, null, m, n, k, transA, transB, false, 1, 0, 0, 0, false);
  return c;
}

/** Orthonormalises the k columns of y (rows×k, row-major) in place: modified Gram–Schmidt, twice. */
function orthonormalize(y: Float32Array, rows: number, k: number): void {
  const col = new Float64Array(rows);
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < k; j++) {
      for (let r = 0; r < rows; r++) col[r] = y[r * k + j]!;
      for (let i = 0; i < j; i++) {
        let dot = 0;
        for (let r = 0; r < rows; r++) dot += col[r]! * y[r * k + i]!;
        for (let r = 0; r < rows; r++) col[r] -= dot * y[r * k + i]!;
      }
      let norm = 0;
      for (let r = 0; r < rows; r++) norm += col[r]! * col[r]!;
      norm = Math.sqrt(norm) || 1;
      for (let r = 0; r < rows; r++) y[r * k + j] = col[r]! / norm;
    }
  }
}

/** Eigen-decomposition of a symmetric n×n matrix by cyclic Jacobi rotations: A = V·diag(w)·Vᵀ. */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let r = 0; r < n; r++) { // A ← A·J
          const arp = a[r * n + p]!, arq = a[r * n + q]!;
          a[r * n + p] = c * arp - s * arq; a[r * n + q] = s * arp + c * arq;
        }
        for (let r = 0; r < n; r++) { // A ← Jᵀ·A
          const apr = a[p * n + r]!, aqr = a[q * n + r]!;
          a[p * n + r] = c * apr - s * aqr; a[q * n + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < n; r++) { // V ← V·J
          const vrp = v[r * n + p]!, vrq = v[r * n + q]!;
          v[r * n + p] = c * vrp - s * vrq; v[r * n + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]!), vectors: v };
}

/** Rank-k SVD of a (rows×cols): left singular vectors u (rows×k) and values s, largest first. */
export function truncatedSvd(a: Float32Array, rows: number, cols: number, k: number, powerIterations: number, seed: number): { u: Float32Array; s: Float64Array } {
  const p = Math.min(cols, k + 10); // oversampling
  const rng = new Rng(seed);
  const omega = Float32Array.from({ length: cols * p }, () => rng.normal());
  let y = matmul(a, omega, rows, p, cols, false, false); // A·Ω
  orthonormalize(y, rows, p);
  for (let i = 0; i < powerIterations; i++) {
    const z = matmul(a, y, cols, p, rows, true, false); // Aᵀ·Q
    orthonormalize(z, cols, p);
    y = matmul(a, z, rows, p, cols, false, false); // A·Z
    orthonormalize(y, rows, p);
  }
  const b = matmul(y, a, p, cols, rows, true, false); // B = Qᵀ·A, p×cols
  const bbt = Float64Array.from(matmul(b, b, p, p, cols, false, true)); // B·Bᵀ = U_B·S²·U_Bᵀ
  const { values, vectors } = symmetricEigen(bbt, p);
  const order = [...values.keys()].sort((i, j) => values[j]! - values[i]!).slice(0, k);
  const ub = new Float32Array(p * k);
  order.forEach((e, j) => { for (let r = 0; r < p; r++) ub[r * k + j] = vectors[r * p + e]!; });
  return { u: matmul(y, ub, rows, k, p, false, false), s: Float64Array.from(order, (e) => Math.sqrt(Math.max(0, values[e]!))) };
}
