/**
 * Reference batched GEMM: the executable spec of Backend.gemm (see src/backend/types.ts).
 *
 *   C_i (m×n) = (accumulate ? C_i : 0) + op(A_i) · op(B_i) + bias,   i ∈ [0, batch)
 *   op(A)[r, p] = transA ? A[p·m + r] : A[r·k + p]     (A_i stored k×m or m×k)
 *   op(B)[p, j] = transB ? B[j·k + p] : B[p·n + j]     (B_i stored n×k or k×n)
 *
 * Each dot product is accumulated in float64 and rounded once when stored (into a Float32Array).
 * With bf16 autocast every A and B element is first rounded to bfloat16 (nearest even); bias and the
 * accumulated C are not rounded, matching the native kernel, which rounds only the multiplicands.
 */
import type { FloatArray } from '../types.ts';
import { roundBf16 } from './bf16.ts';

function need(name: string, arr: FloatArray, count: number, stride: number, size: number, shape: string): void {
  const required = count === 0 || size === 0 ? 0 : (count - 1) * stride + size;
  if (arr.length < required) {
    throw new RangeError(`gemm: ${name} has ${arr.length} elements but ${shape} needs ${required}`);
  }
}

export function gemm(
  a: FloatArray, b: FloatArray, c: FloatArray, bias: FloatArray | null,
  m: number, n: number, k: number, transA: boolean, transB: boolean, accumulate: boolean,
  batch: number, strideA: number, strideB: number, strideC: number, bf16: boolean,
): void {
  const dims = { m, n, k, batch, strideA, strideB, strideC };
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`gemm: ${name} must be a non-negative integer, got ${v}`);
  }
  const shape = `(batch=${batch}, m=${m}, n=${n}, k=${k}, strides ${strideA}/${strideB}/${strideC})`;
  need('a', a, batch, strideA, m * k, shape);
  need('b', b, batch, strideB, k * n, shape);
  need('c', c, batch, strideC, m * n, shape);
  if (bias !== null && bias.length < n) throw new RangeError(`gemm: bias has ${bias.length} elements, n=${n}`);

  const load = bf16 ? roundBf16 : (x: number) => x;
  // Row r of op(A) is A[r*rowStepA + p*colStepA], column j of op(B) is B[p*rowStepB + j*colStepB].
  const [rowStepA, colStepA] = transA ? [1, m] : [k, 1];
  const [rowStepB, colStepB] = transB ? [1, k] : [n, 1];
  for (let bi = 0; bi < batch; bi++) {
    const aBase = bi * strideA, bBase = bi * strideB, cBase = bi * strideC;
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let p = 0; p < k; p++) {
          dot += load(a[aBase + r * rowStepA + p * colStepA]!) * load(b[bBase + p * rowStepB + j * colStepB]!);
        }
        const ci = cBase + r * n + j;
        c[ci] = (accumulate ? c[ci]! : 0) + dot + (bias === null ? 0 : bias[j]!);
      }
    }
  }
}
