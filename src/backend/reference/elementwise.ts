/** Reference elementwise kernels: sums, arithmetic, activations, permutation. */
import { Unary, type FloatArray } from '../types.ts';
import { checkLength, checkSize } from './check.ts';
import { geluErf, geluErfGrad, geluTanh, geluTanhGrad } from './special.ts';

function checkFlat(kernel: string, n: number, arrays: Record<string, FloatArray>): void {
  checkSize(kernel, 'n', n);
  for (const [name, a] of Object.entries(arrays)) checkLength(kernel, name, a, n, 'n');
}

/** out[j] += Σ_r x[r, j] */
export function sumRows(x: FloatArray, out: FloatArray, rows: number, cols: number): void {
  checkSize('sumRows', 'rows', rows);
  checkSize('sumRows', 'cols', cols);
  checkLength('sumRows', 'x', x, rows * cols, 'rows*cols');
  checkLength('sumRows', 'out', out, cols, 'cols');
  for (let j = 0; j < cols; j++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += x[r * cols + j];
    out[j] += sum;
  }
}

export function add(a: FloatArray, b: FloatArray, out: FloatArray, n: number): void {
  checkFlat('add', n, { a, b, out });
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

export function mul(a: FloatArray, b: FloatArray, out: FloatArray, n: number): void {
  checkFlat('mul', n, { a, b, out });
  for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
}

export function axpy(alpha: number, x: FloatArray, y: FloatArray, n: number): void {
  checkFlat('axpy', n, { x, y });
  for (let i = 0; i < n; i++) y[i] += alpha * x[i];
}

export function scale(x: FloatArray, alpha: number, out: FloatArray, n: number): void {
  checkFlat('scale', n, { x, out });
  for (let i = 0; i < n; i++) out[i] = alpha * x[i];
}

export function sumSquares(x: FloatArray, n: number): number {
  checkFlat('sumSquares', n, { x });
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i] * x[i];
  return sum;
}

/** Σ over the tensors of sumSquares(x), added in order (the squared global norm for gradient clipping). */
export function sumSquaresGroup(xs: readonly FloatArray[]): number {
  let sum = 0;
  for (const x of xs) sum += sumSquares(x, x.length);
  return sum;
}

function unaryFunction(kernel: string, op: Unary): [(x: number) => number, (x: number) => number] {
  switch (op) {
    case Unary.GeluTanh: return [geluTanh, geluTanhGrad];
    case Unary.GeluErf: return [geluErf, geluErfGrad];
    case Unary.Tanh: return [Math.tanh, (x) => 1 - Math.tanh(x) ** 2];
    case Unary.Relu: return [(x) => (x > 0 ? x : 0), (x) => (x > 0 ? 1 : 0)];
    default: throw new RangeError(`reference ${kernel}: unknown Unary op ${op as number}`);
  }
}

export function unary(op: Unary, x: FloatArray, out: FloatArray, n: number): void {
  const [f] = unaryFunction('unary', op);
  checkFlat('unary', n, { x, out });
  for (let i = 0; i < n; i++) out[i] = f(x[i]);
}

/** dx += f'(x)·dout (dx = f'(x)·dout when accumulate is false) */
export function unaryBackward(op: Unary, x: FloatArray, dout: FloatArray, dx: FloatArray, n: number, accumulate = true): void {
  const [, df] = unaryFunction('unaryBackward', op);
  checkFlat('unaryBackward', n, { x, dout, dx });
  for (let i = 0; i < n; i++) dx[i] = (accumulate ? dx[i] : 0) + df(x[i]) * dout[i];
}

/**
 * numpy.transpose: out has shape shape[perm[k]]; the element at out index (i₀…i_{r−1}) comes from
 * the x index whose axis perm[k] equals i_k. Walks out in order with an odometer over its index.
 */
export function permute(x: FloatArray, out: FloatArray, shape: readonly number[], perm: readonly number[], accumulate: boolean): void {
  const rank = shape.length;
  if (rank > 6 || perm.length !== rank) {
    throw new RangeError(`reference permute: shape and perm must have the same length ≤ 6, got ${rank} and ${perm.length}`);
  }
  const seen = new Array<boolean>(rank).fill(false);
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= rank || seen[p]) {
      throw new RangeError(`reference permute: perm [${perm.join(', ')}] is not a permutation of 0..${rank - 1}`);
    }
    seen[p] = true;
  }
  shape.forEach((d, i) => checkSize('permute', `shape[${i}]`, d));
  const total = shape.reduce((a, d) => a * d, 1);
  checkLength('permute', 'x', x, total, 'product of shape');
  checkLength('permute', 'out', out, total, 'product of shape');
  if (total === 0) return;

  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) { inStrides[i] = s; s *= shape[i]; }
  const outShape = perm.map((p) => shape[p]);
  const strideOfOutAxis = perm.map((p) => inStrides[p]);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < total; o++) {
    out[o] = accumulate ? out[o] + x[src] : x[src];
    for (let k = rank - 1; k >= 0; k--) {
      index[k]++;
      src += strideOfOutAxis[k];
      if (index[k] < outShape[k]) break;
      src -= strideOfOutAxis[k] * outShape[k];
      index[k] = 0;
    }
  }
}
