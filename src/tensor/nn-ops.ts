/**
 * Neural-network ops: matmul/linear, embedding, layer norm, activations, softmax, dropout, fused
 * attention and fused cross-entropy. Forward and backward of each op sit together; the math is in
 * the kernel contract (src/backend/types.ts).
 */
import { backend } from '../backend/index.ts';
import { Unary, type FloatArray } from '../backend/types.ts';
import { Tensor, record, scratch, formatShape, shapeSize, isAutocastBf16 } from './tensor.ts';
import { ShapeError, assertShape } from './ops.ts';
import type { Rng } from '../util/random.ts';

export { Unary };

// ---- matmul / linear ---------------------------------------------------------------------------

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * Batched matrix product op(a) · op(b). a is [...batch, m, k] ([..., k, m] with transA); b is
 * [k, n] ([n, k] with transB), shared across the batch, or [...batch, k, n] with the same batch dims.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}, bias: Tensor | null = null): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError('matmul', `needs ≥2-D inputs, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) {
    throw new ShapeError('matmul', `inner dimensions differ: a ${formatShape(a.shape)}${transA ? 'ᵀ' : ''} · b ${formatShape(b.shape)}${transB ? 'ᵀ' : ''} (${k} vs ${kb})`);
  }
  const batchShape = a.shape.slice(0, -2);
  const batch = shapeSize(batchShape);
  const shared = b.ndim === 2;
  if (!shared && (b.ndim !== a.ndim || b.shape.slice(0, -2).some((d, i) => d !== batchShape[i]))) {
    throw new ShapeError('matmul', `batch dimensions differ: a ${formatShape(a.shape)} vs b ${formatShape(b.shape)}`);
  }
  if (bias) assertShape('matmul', bias, [n], 'bias');
  if (a.dtype !== b.dtype) throw new TypeError(`matmul: dtype mismatch (${a.dtype} vs ${b.dtype})`);
  const bf16 = isAutocastBf16();
  const out = Tensor.empty([...batchShape, m, n], a.dtype);
  const be = backend();
  // A shared B with untransposed A folds the batch into M: one large GEMM instead of many small ones.
  const fold = shared && !transA;
  if (fold) be.gemm(a.data, b.data, out.data, bias?.data ?? null, batch * m, n, k, false, transB, false, 1, 0, 0, 0, bf16);
  else be.gemm(a.data, b.data, out.data, bias?.data ?? null, m, n, k, transA, transB, false, batch, m * k, shared ? 0 : k * n, m * n, bf16);

  const inputs = bias ? [a, b, bias] : [a, b];
  return record(out, inputs, () => {
    const dC = out.grad!.data;
    if (a.requiresGrad) {
      const { data: dA, accumulate } = a.gradForWrite();
      // dA = dC · op(B)ᵀ   (stored transposed when transA: dAᵀ = op(B) · dCᵀ)
      if (fold) be.gemm(dC, b.data, dA, null, batch * m, k, n, false, !transB, accumulate, 1, 0, 0, 0, bf16);
      else if (!transA) be.gemm(dC, b.data, dA, null, m, k, n, false, !transB, accumulate, batch, m * n, shared ? 0 : k * n, m * k, bf16);
      else be.gemm(b.data, dC, dA, null, k, m, n, transB, true, accumulate, batch, shared ? 0 : k * n, m * n, m * k, bf16);
    }
    if (b.requiresGrad) {
      const { data: dB, accumulate } = b.gradForWrite();
      if (fold) {
        // dB = Aᵀ·dC over all batch rows at once (dBᵀ = dCᵀ·A when B is stored transposed).
        if (!transB) be.gemm(a.data, dC, dB, null, k, n, batch * m, true, false, accumulate, 1, 0, 0, 0, bf16);
        else be.gemm(dC, a.data, dB, null, n, k, batch * m, true, false, accumulate, 1, 0, 0, 0, bf16);
      } else {
        // Per batch item; a shared B accumulates every item into the same buffer (strideC = 0 is not
        // allowed to race, so loop): only the first item may overwrite a fresh buffer.
        const items = shared ? batch : 1;
        const bb = shared ? 1 : batch;
        for (let i = 0; i < items; i++) {
          const aOff = i * m * k, cOff = i * m * n;
          const A = a.data.subarray(aOff), C = dC.subarray(cOff);
          const acc = accumulate || i > 0;
          if (!transB) be.gemm(A, C, dB, null, k, n, m, !transA, false, acc, bb, m * k, m * n, k * n, bf16);
          else be.gemm(C, A, dB, null, n, k, m, true, transA, acc, bb, m * n, m * k, k * n, bf16);
        }
      }
    }
    if (bias?.requiresGrad) be.sumRows(dC, bias.ensureGrad().data, batch * m, n);
  });
}

/**
 * y = x·W + b. `layout` says how W is stored: 'in_out' ([in, out], GPT-2's Conv1D) or 'out_in'
 * ([out, in], torch.nn.Linear / BERT).
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null, layout: 'in_out' | 'out_in'): Tensor {
  return matmul(x, weight, { transB: layout === 'out_in' }, bias);
}

/**
 * Where a fused backward kernel (one call computes every input's gradient) writes t's gradient: its
 * grad buffer, or a throwaway step buffer when t does not require grad (a frozen LayerNorm under
 * LoRA), so frozen tensors never get a grad buffer that would sit in memory and accumulate forever.
 */
function gradOrScratch(t: Tensor): FloatArray {
  return t.requiresGrad ? t.ensureGrad().data : scratch(t.size, t.dtype);
}

// ---- embedding ---------------------------------------------------------------------------------

/** table[ids] → [...ids.shape, dim]. ids are integer token ids. */
export function embedding(table: Tensor, ids: Int32Array, idsShape: readonly number[] = [ids.length]): Tensor {
  if (table.ndim !== 2) throw new ShapeError('embedding', `table must be 2-D, got ${formatShape(table.shape)}`);
  if (shapeSize(idsShape) !== ids.length) throw new ShapeError('embedding', `ids shape ${formatShape(idsShape)} does not match ${ids.length} ids`);
  const dim = table.shape[1]!;
  const out = Tensor.empty([...idsShape, dim], table.dtype);
  backend().embedding(table.data, ids, out.data, ids.length, dim);
  return record(out, [table], () => backend().embeddingBackward(out.grad!.data, ids, table.ensureGrad().data, ids.length, dim));
}

// ---- normalisation and activations -------------------------------------------------------------

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const cols = x.shape[x.ndim - 1]!;
  assertShape('layerNorm', weight, [cols], 'weight');
  assertShape('layerNorm', bias, [cols], 'bias');
  const rows = x.size / cols;
  const out = Tensor.empty(x.shape, x.dtype);
  const mean = scratch(rows, x.dtype);
  const rstd = scratch(rows, x.dtype);
  backend().layerNorm(x.data, weight.data, bias.data, out.data, mean, rstd, rows, cols, eps);
  return record(out, [x, weight, bias], () => {
    // x's first gradient writer overwrites (Tensor.gradForWrite): post-LN blocks (BERT) normalise a sum
    // that nothing else reads, whose gradient would otherwise be a zero-filled buffer added into.
    const dx = x.requiresGrad ? x.gradForWrite() : { data: scratch(x.size, x.dtype), accumulate: false };
    backend().layerNormBackward(out.grad!.data, x.data, weight.data, mean, rstd,
      dx.data, gradOrScratch(weight), gradOrScratch(bias), rows, cols, dx.accumulate);
  });
}

function unary(op: Unary, x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  backend().unary(op, x.data, out.data, x.size);
  return record(out, [x], () => {
    const { data, accumulate } = x.gradForWrite();
    backend().unaryBackward(op, x.data, out.grad!.data, data, x.size, accumulate);
  });
}

/** GELU; 'tanh' is GPT-2's gelu_new, 'erf' is BERT's exact gelu. */
export const gelu = (x: Tensor, form: 'tanh' | 'erf' = 'erf'): Tensor => unary(form === 'tanh' ? Unary.GeluTanh : Unary.GeluErf, x);
export const tanh = (x: Tensor): Tensor => unary(Unary.Tanh, x);
export const relu = (x: Tensor): Tensor => unary(Unary.Relu, x);

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  const cols = x.shape[x.ndim - 1]!;
  const rows = x.size / cols;
  const out = Tensor.empty(x.shape, x.dtype);
  backend().softmax(x.data, out.data, rows, cols);
  return record(out, [x], () => backend().softmaxBackward(out.data, out.grad!.data, x.ensureGrad().data, rows, cols));
}

/**
 * Inverted dropout. The mask is a pure function of (seed, index) — recomputed in backward, never
 * stored — and the seed comes from the caller's Rng, so a run is reproducible and resumable.
 */
export function dropout(x: Tensor, p: number, training: boolean, rng: Rng): Tensor {
  if (!training || p === 0) return x;
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  const seed = rng.nextSeed();
  const out = Tensor.empty(x.shape, x.dtype);
  backend().dropout(x.data, out.data, x.size, p, seed, 0);
  return record(out, [x], () => backend().dropoutBackward(out.grad!.data, x.ensureGrad().data, x.size, p, seed, 0));
}

// ---- attention ---------------------------------------------------------------------------------

export interface AttentionOptions {
  causal?: boolean;
  /** (B, Tk) bytes, 1 = attend, 0 = padding. */
  keyMask?: Uint8Array | null;
  /** Defaults to 1/√d. */
  scale?: number;
}

/**
 * Fused scaled-dot-product attention on q (B,H,Tq,D), k and v (B,Hkv,Tk,D). Hkv = H is multi-head
 * attention; Hkv dividing H is grouped-query (1: multi-query) attention, query head h reading
 * key/value head ⌊h/(H/Hkv)⌋ as HF's repeat_kv orders them, without materialising the repeats.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim !== 4) throw new ShapeError('attention', `q must be (B,H,T,D), got ${formatShape(q.shape)}`);
  const [b, h, tq, d] = q.shape as [number, number, number, number];
  const tk = k.shape[2]!;
  const kvGroups = k.ndim === 4 && k.shape[1]! > 0 && k.shape[1]! < h && h % k.shape[1]! === 0;
  const hkv = kvGroups ? k.shape[1]! : h;
  assertShape('attention', k, [b, hkv, null, d], 'k');
  assertShape('attention', v, [b, hkv, tk, d], 'v');
  const mask = opts.keyMask ?? null;
  if (mask && mask.length !== b * tk) throw new ShapeError('attention', `keyMask has ${mask.length} entries, expected B·Tk = ${b * tk}`);
  const causal = opts.causal ?? false;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const bf16 = isAutocastBf16();
  const out = Tensor.empty(q.shape, q.dtype);
  const lse = scratch(b * h * tq, q.dtype);
  backend().attention(q.data, k.data, v.data, out.data, lse, b, h, tq, tk, d, scale, causal, mask, bf16, hkv);
  return record(out, [q, k, v], () => {
    backend().attentionBackward(q.data, k.data, v.data, out.data, lse, out.grad!.data,
      gradOrScratch(q), gradOrScratch(k), gradOrScratch(v), b, h, tq, tk, d, scale, causal, mask, bf16, hkv);
  });
}

/** The heads of q, k or v: `heads`·D columns from `offset` in the last dim of a [B, T, width] tensor. */
export interface HeadColumns { tensor: Tensor; offset: number }

export interface HeadsAttentionOptions extends AttentionOptions {
  heads: number;
  /** Key/value heads (grouped-query attention); default heads. */
  kvHeads?: number;
  headDim: number;
  /**
   * Relative-position logits (HF relative_key), [B, Tq, H, 2Tk−1] or [B·Tq·H, 2Tk−1] (Tq = Tk):
   * s_ij = scale·(q_i·k_j + relative[b, i, h, i − j + Tk − 1]). Gets a gradient when it requires one.
   */
  relative?: Tensor | null;
}

/**
 * Fused attention straight on the token-major projections, without head-split copies: q's heads sit
 * side by side in its rows, as do k's and v's (GPT-2's c_attn output [B, T, 3C] gives q, k, v at
 * offsets 0, C, 2C of one tensor; separate projections give offset 0 of each). Returns [B, Tq, H·D]
 * with the heads side by side, ready for the output projection. Same math as `attention`, plus the
 * optional relative-position logits (kernel contract: Backend.attention).
 */
export function attentionHeads(q: HeadColumns, k: HeadColumns, v: HeadColumns, opts: HeadsAttentionOptions): Tensor {
  const { heads: h, headDim: d } = opts;
  const hkv = opts.kvHeads ?? h;
  if (!(Number.isInteger(h) && h > 0 && Number.isInteger(hkv) && hkv > 0 && h % hkv === 0 && Number.isInteger(d) && d > 0)) {
    throw new ShapeError('attentionHeads', `heads = ${h} must be a positive multiple of kvHeads = ${hkv}, headDim = ${d} positive`);
  }
  const [b, tq] = q.tensor.shape as [number, number];
  const tk = k.tensor.shape[1]!;
  const part = (x: HeadColumns, t: number, n: number, what: string) => {
    assertShape('attentionHeads', x.tensor, [b, t, null], what);
    const w = x.tensor.shape[2]!;
    if (!(Number.isInteger(x.offset) && x.offset >= 0 && x.offset + n * d <= w)) {
      throw new ShapeError('attentionHeads', `${what}: ${n} heads of ${d} from column ${x.offset} do not fit rows of ${w}`);
    }
    return w;
  };
  const [wq, wk, wv] = [part(q, tq, h, 'q'), part(k, tk, hkv, 'k'), part(v, tk, hkv, 'v')];
  if (wk !== wv) throw new ShapeError('attentionHeads', `k and v rows must have the same width, got ${wk} and ${wv}`);
  if (q.tensor.dtype !== k.tensor.dtype || k.tensor.dtype !== v.tensor.dtype) throw new TypeError('attentionHeads: q, k, v dtypes differ');
  const mask = opts.keyMask ?? null;
  if (mask && mask.length !== b * tk) throw new ShapeError('attentionHeads', `keyMask has ${mask.length} entries, expected B·Tk = ${b * tk}`);
  const rel = opts.relative ?? null;
  if (rel) {
    const w = 2 * tk - 1;
    const shapeOk = rel.ndim === 4 ? [b, tq, h, w].every((n, i) => rel.shape[i] === n) : rel.ndim === 2 && rel.shape[0] === b * tq * h && rel.shape[1] === w;
    if (tq !== tk || !shapeOk) {
      throw new ShapeError('attentionHeads', `relative must be [B, Tq, H, 2Tk−1] = [${b}, ${tq}, ${h}, ${w}] or [B·Tq·H, 2Tk−1] with Tq = Tk, got ${formatShape(rel.shape)} (Tk = ${tk})`);
    }
    if (rel.dtype !== q.tensor.dtype) throw new TypeError('attentionHeads: relative and q dtypes differ');
  }
  const causal = opts.causal ?? false;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const bf16 = isAutocastBf16();
  const strides = [wq, wk, h * d] as const;
  const at = (x: HeadColumns) => x.tensor.data.subarray(x.offset);
  const out = Tensor.empty([b, tq, h * d], q.tensor.dtype);
  const lse = scratch(b * h * tq, q.tensor.dtype);
  backend().attention(at(q), at(k), at(v), out.data, lse, b, h, tq, tk, d, scale, causal, mask, bf16, hkv, strides, rel?.data ?? null);
  const parts = [{ x: q, heads: h }, { x: k, heads: hkv }, { x: v, heads: hkv }];
  const sources = [...new Set(parts.map((p) => p.x.tensor))];
  return record(out, rel ? [...sources, rel] : sources, () => {
    // The kernel overwrites (no zero fill) when every source's rows are exactly tiled by its q/k/v
    // columns and none has a gradient yet; otherwise it adds into the (zeroed or existing) gradients.
    const tiled = (t: Tensor) => {
      const spans = parts.filter((p) => p.x.tensor === t).map((p) => [p.x.offset, p.x.offset + p.heads * d] as const).sort((a, z) => a[0] - z[0]);
      return spans.every(([start], i) => start === (i === 0 ? 0 : spans[i - 1]![1])) && spans.at(-1)![1] === t.shape[2];
    };
    const fresh = (t: Tensor) => !t.requiresGrad || t.canOverwriteGrad();
    const overwrite = sources.every((t) => tiled(t) && fresh(t)) && (!rel || fresh(rel));
    const grads = new Map(sources.map((t) => [t, overwrite && t.requiresGrad ? t.gradForWrite().data : gradOrScratch(t)]));
    const gradAt = (x: HeadColumns) => grads.get(x.tensor)!.subarray(x.offset);
    // relative's gradient only when wanted: without it the kernel skips the dRel writes
    const dRel = rel?.requiresGrad ? (overwrite ? rel.gradForWrite().data : rel.ensureGrad().data) : null;
    backend().attentionBackward(at(q), at(k), at(v), out.data, lse, out.grad!.data, gradAt(q), gradAt(k), gradAt(v),
      b, h, tq, tk, d, scale, causal, mask, bf16, hkv, strides, !overwrite, rel?.data ?? null, dRel);
  });
}

// ---- losses ------------------------------------------------------------------------------------

/** The label of a row the loss skips (padding, unmasked MLM positions, later subwords): PyTorch's and HF's -100. */
export const IGNORE_INDEX = -100;

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: 'mean' | 'sum';
}

/**
 * Fused softmax cross-entropy of logits [..., V] against integer labels (one per row). Rows labelled
 * ignoreIndex (default IGNORE_INDEX, -100) are skipped; 'mean' divides by the number of non-ignored rows (as
 * torch.nn.functional.cross_entropy does). With no counted row the mean is 0.
 */
export function crossEntropy(logits: Tensor, labels: Int32Array, opts: CrossEntropyOptions = {}): Tensor {
  const v = logits.shape[logits.ndim - 1]!;
  const rows = logits.size / v;
  if (labels.length !== rows) {
    throw new ShapeError('crossEntropy', `${labels.length} labels for logits ${formatShape(logits.shape)} (${rows} rows)`);
  }
  const ignoreIndex = opts.ignoreIndex ?? IGNORE_INDEX;
  const smoothing = opts.labelSmoothing ?? 0;
  const perRow = scratch(rows, logits.dtype);
  const lse = scratch(rows, logits.dtype);
  const count = backend().crossEntropy(logits.data, labels, perRow, lse, rows, v, ignoreIndex, smoothing);
  let total = 0;
  for (let r = 0; r < rows; r++) total += perRow[r]!;
  const divisor = opts.reduction === 'sum' ? 1 : Math.max(count, 1);
  const out = Tensor.empty([], logits.dtype);
  out.data[0] = total / divisor;
  return record(out, [logits], () => {
    const g = out.grad!.data[0]! / divisor;
    backend().crossEntropyBackward(logits.data, labels, lse, logits.ensureGrad().data, rows, v, ignoreIndex, smoothing, g);
  });
}
