/**
 * The basic op set: elementwise arithmetic with broadcasting, reductions, and shape ops.
 * Each op computes its forward with backend kernels and records one closure for its backward.
 * Neural-network ops (matmul, attention, losses, …) live in nn-ops.ts.
 */
import { backend } from '../backend/index.ts';
import type { FloatArray } from '../backend/types.ts';
import { Tensor, record, scratch, formatShape, shapeSize } from './tensor.ts';

export class ShapeError extends RangeError {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'ShapeError';
  }
}

export function assertShape(op: string, t: Tensor, shape: readonly (number | null)[], what = 'input'): void {
  const ok = t.shape.length === shape.length && shape.every((d, i) => d === null || d === t.shape[i]);
  if (!ok) {
    const want = `[${shape.map((d) => (d === null ? '*' : d)).join(', ')}]`;
    throw new ShapeError(op, `${what} has shape ${formatShape(t.shape)}, expected ${want}`);
  }
}

function sameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new TypeError(`${op}: dtype mismatch (${a.dtype} vs ${b.dtype})`);
}

// ---- broadcasting -----------------------------------------------------------------------------

/** numpy broadcasting of two shapes; throws a ShapeError naming the op when incompatible. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of `shape` seen inside `outShape` (0 along broadcast dims). */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = outShape.length - shape.length + i;
    strides[o] = shape[i] === 1 ? 0 : s;
    s *= shape[i]!;
  }
  return strides;
}

/** Calls fn(outIndex, aIndex, bIndex) for every element of the broadcast output. */
function forEachBroadcast(outShape: readonly number[], sa: number[], sb: number[], fn: (o: number, ia: number, ib: number) => void): void {
  const n = shapeSize(outShape);
  const rank = outShape.length;
  const idx = new Array<number>(rank).fill(0);
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < n; o++) {
    fn(o, ia, ib);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      ia += sa[d]!;
      ib += sb[d]!;
      if (idx[d]! < outShape[d]!) break;
      ia -= sa[d]! * outShape[d]!;
      ib -= sb[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

/** Sums `grad` (of shape outShape) down to `shape` and accumulates into target. */
function reduceInto(grad: FloatArray, outShape: readonly number[], shape: readonly number[], target: FloatArray): void {
  if (shapeSize(shape) === grad.length) {
    backend().axpy(1, grad, target, grad.length);
    return;
  }
  // Fast path: shape is a suffix of outShape (bias-like broadcast) → column sums.
  const suffix = shape.length <= outShape.length && shape.every((d, i) => d === outShape[outShape.length - shape.length + i]);
  if (suffix) {
    const cols = shapeSize(shape);
    backend().sumRows(grad, target, grad.length / cols, cols);
    return;
  }
  const s = broadcastStrides(shape, outShape);
  const zero = new Array<number>(outShape.length).fill(0);
  forEachBroadcast(outShape, s, zero, (o, i) => {
    target[i]! += grad[o]!;
  });
}

type BinaryKind = 'add' | 'sub' | 'mul' | 'div';

/**
 * Elements of `shape` when it repeats as the trailing block of outShape (a bias [C] or positions
 * [T, C] over [B, T, C]; leading 1s ignored), else 0.
 */
function trailingBlock(shape: readonly number[], outShape: readonly number[]): number {
  let r = 0;
  while (r < shape.length && shape[r] === 1) r++;
  const core = shape.slice(r);
  if (core.length > outShape.length) return 0;
  const off = outShape.length - core.length;
  return core.every((d, i) => d === outShape[off + i]) ? shapeSize(core) : 0;
}

/**
 * out = full ∘ block with `block` repeated over consecutive runs of full (a plain loop: the generic
 * broadcast walk costs a closure call per element). blockFirst: the block is the left operand.
 */
function blockwise(kind: BinaryKind, full: FloatArray, block: FloatArray, out: FloatArray, w: number, blockFirst: boolean): void {
  const n = out.length;
  if (kind === 'add' && w >= 1024) {
    // long blocks (positions [T, C] over [B, T, C]): the native add per block
    const be = backend();
    for (let o = 0; o < n; o += w) be.add(full.subarray(o, o + w), block, out.subarray(o, o + w), w);
    return;
  }
  for (let o = 0; o < n; o += w) {
    if (kind === 'add') for (let j = 0; j < w; j++) out[o + j] = full[o + j]! + block[j]!;
    else if (kind === 'mul') for (let j = 0; j < w; j++) out[o + j] = full[o + j]! * block[j]!;
    else if (kind === 'sub') {
      if (blockFirst) for (let j = 0; j < w; j++) out[o + j] = block[j]! - full[o + j]!;
      else for (let j = 0; j < w; j++) out[o + j] = full[o + j]! - block[j]!;
    } else if (blockFirst) for (let j = 0; j < w; j++) out[o + j] = block[j]! / full[o + j]!;
    else for (let j = 0; j < w; j++) out[o + j] = full[o + j]! / block[j]!;
  }
}

function binary(kind: BinaryKind, a: Tensor, b: Tensor): Tensor {
  sameDtype(kind, a, b);
  const outShape = broadcastShapes(kind, a.shape, b.shape);
  const out = Tensor.empty(outShape, a.dtype);
  const n = out.size;
  const be = backend();
  const same = a.size === n && b.size === n;
  const bBlock = a.size === n ? trailingBlock(b.shape, outShape) : 0;
  const aBlock = b.size === n ? trailingBlock(a.shape, outShape) : 0;
  if (same && kind === 'add') be.add(a.data, b.data, out.data, n);
  else if (same && kind === 'mul') be.mul(a.data, b.data, out.data, n);
  else if (bBlock) blockwise(kind, a.data, b.data, out.data, bBlock, false);
  else if (aBlock) blockwise(kind, b.data, a.data, out.data, aBlock, true);
  else {
    const A = a.data, B = b.data, O = out.data;
    const f = kind === 'add' ? (x: number, y: number) => x + y
      : kind === 'sub' ? (x: number, y: number) => x - y
      : kind === 'mul' ? (x: number, y: number) => x * y
      : (x: number, y: number) => x / y;
    forEachBroadcast(outShape, broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape), (o, ia, ib) => {
      O[o] = f(A[ia]!, B[ib]!);
    });
  }
  return record(out, [a, b], () => {
    const g = out.grad!.data;
    const sa = broadcastStrides(a.shape, outShape);
    const sb = broadcastStrides(b.shape, outShape);
    // Temporaries come from the step's pool (scratch), so a training step creates no garbage buffers.
    // Same shape: accumulateGrad may hand out's gradient buffer on instead of copying it.
    const passOn = (t: Tensor) => (t.size === n ? t.accumulateGrad(out.grad!) : reduceInto(g, outShape, t.shape, t.ensureGrad().data));
    if (a.requiresGrad) {
      if (kind === 'add' || kind === 'sub') passOn(a);
      else {
        // d(a·b)/da = b, d(a/b)/da = 1/b — materialise g·(∂out/∂a) then reduce.
        const tmp = scratch(n, out.dtype);
        const B = b.data;
        forEachBroadcast(outShape, sa, sb, (o, _ia, ib) => {
          tmp[o] = kind === 'mul' ? g[o]! * B[ib]! : g[o]! / B[ib]!;
        });
        reduceInto(tmp, outShape, a.shape, a.ensureGrad().data);
      }
    }
    if (b.requiresGrad) {
      if (kind === 'add') passOn(b);
      else {
        const tmp = scratch(n, out.dtype);
        const A = a.data, B = b.data;
        forEachBroadcast(outShape, sa, sb, (o, ia, ib) => {
          tmp[o] = kind === 'sub' ? -g[o]! : kind === 'mul' ? g[o]! * A[ia]! : (-g[o]! * A[ia]!) / (B[ib]! * B[ib]!);
        });
        reduceInto(tmp, outShape, b.shape, b.ensureGrad().data);
      }
    }
  });
}

export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);

/** alpha · x */
export function scale(x: Tensor, alpha: number): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  backend().scale(x.data, alpha, out.data, x.size);
  return record(out, [x], () => backend().axpy(alpha, out.grad!.data, x.ensureGrad().data, x.size));
}

/** x + c for a scalar c. */
export function addScalar(x: Tensor, c: number): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  for (let i = 0; i < x.size; i++) out.data[i] = x.data[i]! + c;
  return record(out, [x], () => backend().axpy(1, out.grad!.data, x.ensureGrad().data, x.size));
}

// ---- reductions --------------------------------------------------------------------------------

/** Sum of all elements → scalar tensor. */
export function sum(x: Tensor): Tensor {
  let s = 0;
  for (let i = 0; i < x.size; i++) s += x.data[i]!;
  const out = Tensor.empty([], x.dtype);
  out.data[0] = s;
  return record(out, [x], () => {
    const g = out.grad!.data[0]!;
    const gx = x.ensureGrad().data;
    for (let i = 0; i < x.size; i++) gx[i]! += g;
  });
}

/** Mean of all elements → scalar tensor. */
export function mean(x: Tensor): Tensor {
  return scale(sum(x), 1 / x.size);
}

/** Sum over one axis (keepdim=false). */
export function sumAxis(x: Tensor, axis: number): Tensor {
  const ax = normAxis('sumAxis', axis, x.ndim);
  const outer = shapeSize(x.shape.slice(0, ax));
  const len = x.shape[ax]!;
  const inner = shapeSize(x.shape.slice(ax + 1));
  const out = Tensor.zeros([...x.shape.slice(0, ax), ...x.shape.slice(ax + 1)], x.dtype);
  for (let o = 0; o < outer; o++)
    for (let l = 0; l < len; l++)
      for (let i = 0; i < inner; i++) out.data[o * inner + i]! += x.data[(o * len + l) * inner + i]!;
  return record(out, [x], () => {
    const g = out.grad!.data;
    const gx = x.ensureGrad().data;
    for (let o = 0; o < outer; o++)
      for (let l = 0; l < len; l++)
        for (let i = 0; i < inner; i++) gx[(o * len + l) * inner + i]! += g[o * inner + i]!;
  });
}

// ---- shape ops ---------------------------------------------------------------------------------

function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) throw new ShapeError(op, `axis ${axis} out of range for ${ndim} dims`);
  return a;
}

/** Same data, new shape (one dim may be -1). Shares the buffer. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  if (inferred > 1) throw new ShapeError('reshape', `at most one -1 allowed in ${formatShape(shape)}`);
  const rest = shapeSize(known);
  const full = shape.map((d) => (d === -1 ? x.size / rest : d));
  if (shapeSize(full) !== x.size || full.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError('reshape', `cannot reshape ${formatShape(x.shape)} (${x.size} elements) to ${formatShape(shape)}`);
  }
  const out = x.view(full);
  return record(out, [x], () => x.accumulateGrad(out.grad!));
}

/** numpy.transpose(x, perm): copies into the permuted layout. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    throw new ShapeError('permute', `perm ${formatShape(perm)} is not a permutation of ${x.ndim} dims (input ${formatShape(x.shape)})`);
  }
  const outShape = perm.map((p) => x.shape[p]!);
  const out = Tensor.empty(outShape, x.dtype);
  backend().permute(x.data, out.data, x.shape, perm, false);
  return record(out, [x], () => {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    const { data, accumulate } = x.gradForWrite();
    backend().permute(out.grad!.data, data, outShape, inverse, accumulate);
  });
}

/** Swaps two axes (a copy). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normAxis('transpose', dim0, x.ndim);
  const b = normAxis('transpose', dim1, x.ndim);
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** x[..., start:end, ...] along one axis (a copy; a view when axis is 0). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis('slice', axis, x.ndim);
  const len = x.shape[ax]!;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= len)) {
    throw new ShapeError('slice', `range [${start}, ${end}) out of bounds for axis ${axis} of size ${len} (input ${formatShape(x.shape)})`);
  }
  const outer = shapeSize(x.shape.slice(0, ax));
  const inner = shapeSize(x.shape.slice(ax + 1));
  const outShape = [...x.shape];
  outShape[ax] = end - start;
  const out = Tensor.empty(outShape, x.dtype);
  const w = (end - start) * inner;
  for (let o = 0; o < outer; o++) out.data.set(x.data.subarray((o * len + start) * inner, (o * len + start) * inner + w), o * w);
  return record(out, [x], () => {
    const g = out.grad!.data;
    const gx = x.ensureGrad().data;
    for (let o = 0; o < outer; o++) backend().axpy(1, g.subarray(o * w, (o + 1) * w), gx.subarray((o * len + start) * inner), w);
  });
}

/** Concatenates along an axis. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('concat', 'needs at least one tensor');
  const first = xs[0]!;
  const ax = normAxis('concat', axis, first.ndim);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError('concat', `shapes ${xs.map((u) => formatShape(u.shape)).join(', ')} differ outside axis ${axis}`);
    }
    sameDtype('concat', first, t);
  }
  const outer = shapeSize(first.shape.slice(0, ax));
  const inner = shapeSize(first.shape.slice(ax + 1));
  const total = xs.reduce((s, t) => s + t.shape[ax]!, 0);
  const outShape = [...first.shape];
  outShape[ax] = total;
  const out = Tensor.empty(outShape, first.dtype);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    const w = t.shape[ax]! * inner;
    offsets.push(offset);
    for (let o = 0; o < outer; o++) out.data.set(t.data.subarray(o * w, (o + 1) * w), o * total * inner + offset);
    offset += w;
  }
  return record(out, xs, () => {
    const g = out.grad!.data;
    xs.forEach((t, k) => {
      if (!t.requiresGrad) return;
      const w = t.shape[ax]! * inner;
      const gt = t.ensureGrad().data;
      for (let o = 0; o < outer; o++) backend().axpy(1, g.subarray(o * total * inner + offsets[k]!, o * total * inner + offsets[k]! + w), gt.subarray(o * w), w);
    });
  });
}

/** x[i] along axis 0 as a view (no copy), e.g. q/k/v out of a stacked [3, …] tensor. */
export function select0(x: Tensor, i: number): Tensor {
  const n = x.shape[0]!;
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new ShapeError('select0', `index ${i} out of range for axis 0 of size ${n}`);
  const w = x.size / n;
  const out = new Tensor(x.data.subarray(i * w, (i + 1) * w), x.shape.slice(1));
  // out's consumers accumulate straight into x's gradient, so the backward has nothing to copy.
  if (record(out, [x], () => {}).requiresGrad) out.shareGradWith(x, i * w);
  return out;
}
