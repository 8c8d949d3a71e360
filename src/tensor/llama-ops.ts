/**
 * Autograd ops of the Llama-family block, each one fused kernel forward and one backward (contract:
 * src/backend/types.ts): RMSNorm, rotary position embeddings (HF's rotate_half convention) and the
 * SwiGLU gate silu(g)·u. Grouped-query attention is nn-ops' `attention` with k, v of fewer heads.
 */
import { backend } from '../backend/index.ts';
import type { FloatArray } from '../backend/types.ts';
import { Tensor, record, scratch, formatShape, getDefaultDtype, type DType } from './tensor.ts';
import { ShapeError, assertShape } from './ops.ts';

/**
 * Where a fused backward kernel writes t's gradient: its grad buffer, or a throwaway step buffer when
 * t does not require grad (a frozen norm weight under LoRA), as nn-ops' layerNorm does.
 */
function gradOrScratch(t: Tensor): FloatArray {
  return t.requiresGrad ? t.ensureGrad().data : scratch(t.size, t.dtype);
}

/** RMSNorm over the last axis: x·rsqrt(mean(x²) + eps)·weight (HF LlamaRMSNorm / Qwen2RMSNorm). */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const cols = x.shape[x.ndim - 1]!;
  assertShape('rmsNorm', weight, [cols], 'weight');
  if (x.dtype !== weight.dtype) throw new TypeError(`rmsNorm: dtype mismatch (${x.dtype} vs ${weight.dtype})`);
  const rows = x.size / cols;
  const out = Tensor.empty(x.shape, x.dtype);
  const rstd = scratch(rows, x.dtype);
  backend().rmsNorm(x.data, weight.data, out.data, rstd, rows, cols, eps);
  return record(out, [x, weight], () => {
    backend().rmsNormBackward(out.grad!.data, x.data, weight.data, rstd, gradOrScratch(x), gradOrScratch(weight), rows, cols);
  });
}

/** cos and sin of position·inv_freq for positions 0 … positions−1 (tables positions × d/2), see rotaryTables. */
export interface RotaryTables {
  readonly cos: FloatArray;
  readonly sin: FloatArray;
  /** Number of positions (table rows). */
  readonly positions: number;
  /** Head dimension d (the tables have d/2 columns). */
  readonly headDim: number;
  readonly dtype: DType;
}

/**
 * Rotary tables as HF computes them: angle = fp32(inv_freq)·position rounded to fp32 (HF's float32
 * matmul of inv_freq and position_ids), then cos and sin of that angle. Build them once per model
 * (maxPositions = the longest context) and share them across layers, q and k.
 */
export function rotaryTables(invFreq: ArrayLike<number>, maxPositions: number, dtype: DType = getDefaultDtype()): RotaryTables {
  if (!Number.isInteger(maxPositions) || maxPositions < 0) throw new RangeError(`rotaryTables: maxPositions must be a non-negative integer, got ${maxPositions}`);
  const half = invFreq.length;
  const make = (n: number) => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
  const cos = make(maxPositions * half), sin = make(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(invFreq[i]!) * p);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin, positions: maxPositions, headDim: 2 * half, dtype };
}

/**
 * Positions of a (b × t) batch, row-major: offset + 0 … offset + t − 1 for every sequence, or
 * offsets[i] + 0 … for sequence i (a KV cache whose sequences hold different lengths).
 */
export function positionIds(b: number, t: number, offset: number | ArrayLike<number> = 0): Int32Array {
  const ids = new Int32Array(b * t);
  for (let i = 0; i < b; i++) {
    const o = typeof offset === 'number' ? offset : offset[i]!;
    for (let j = 0; j < t; j++) ids[i * t + j] = o + j;
  }
  return ids;
}

/**
 * Rotary position embedding on x [..., H, D] (e.g. [B, T, H, D], before the heads are moved forward):
 * every (…) row at position positions[row] gets x·cos + rotate_half(x)·sin, HF's convention.
 * positions has one entry per row (size / (H·D)); each must be below tables.positions.
 */
export function rope(x: Tensor, tables: RotaryTables, positions: Int32Array): Tensor {
  if (x.ndim < 2) throw new ShapeError('rope', `x must be [..., H, D], got ${formatShape(x.shape)}`);
  const [heads, d] = x.shape.slice(-2) as [number, number];
  if (d !== tables.headDim) throw new ShapeError('rope', `x has head dimension ${d} but the tables were built for ${tables.headDim}`);
  if (x.dtype !== tables.dtype) throw new TypeError(`rope: dtype mismatch (x ${x.dtype}, tables ${tables.dtype})`);
  const rows = x.size / (heads * d);
  if (positions.length !== rows) throw new ShapeError('rope', `${positions.length} positions for x ${formatShape(x.shape)} (${rows} rows of ${heads} heads)`);
  const out = Tensor.empty(x.shape, x.dtype);
  backend().rope(x.data, tables.cos, tables.sin, positions, out.data, rows, heads, d, tables.positions);
  return record(out, [x], () => {
    backend().ropeBackward(out.grad!.data, tables.cos, tables.sin, positions, x.ensureGrad().data, rows, heads, d, tables.positions);
  });
}

/** SwiGLU's gate: silu(gate)·up elementwise, silu(g) = g·σ(g). gate and up have the same shape. */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  assertShape('siluMul', up, gate.shape, 'up');
  if (gate.dtype !== up.dtype) throw new TypeError(`siluMul: dtype mismatch (${gate.dtype} vs ${up.dtype})`);
  const out = Tensor.empty(gate.shape, gate.dtype);
  backend().siluMul(gate.data, up.data, out.data, gate.size);
  return record(out, [gate, up], () => {
    backend().siluMulBackward(gate.data, up.data, out.grad!.data, gradOrScratch(gate), gradOrScratch(up), gate.size);
  });
}
