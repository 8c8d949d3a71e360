/**
 * Tensor and the autograd tape.
 *
 * A Tensor is a dense row-major float buffer plus a shape. Ops (src/tensor/ops*.ts) create result
 * tensors that remember their parents and a `backwardFn` closure which accumulates the result's
 * gradient into the parents' gradients; `backward()` walks that graph in reverse topological order.
 *
 * Memory: tensors created inside `withScope(fn)` take their buffers from the pool and give them
 * back when the scope ends (except the tensors fn returns), so a training step written as
 * `withScope(() => { loss = model(...); loss.backward(); return loss.item(); })` reuses the same
 * buffers every step. Parameters are never pooled.
 */
import type { FloatArray } from '../backend/types.ts';
import { allocBuffer, allocZeroed, releaseBuffer, type DType } from './pool.ts';
import { backend } from '../backend/index.ts';

export type { DType, FloatArray };

let defaultDtype: DType = 'float32';
/** float64 tensors are only supported by the reference backend (used for finite-difference checks). */
export function setDefaultDtype(dtype: DType): void {
  defaultDtype = dtype;
}
export function getDefaultDtype(): DType {
  return defaultDtype;
}

// ---- grad mode, autocast and scopes ---------------------------------------------------------

let gradEnabled = true;
let bf16Autocast = false;

/** Runs fn without recording the autograd graph (inference, evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * bf16 autocast, like torch.autocast('cpu', dtype=torch.bfloat16): GEMMs and attention round their
 * inputs to bfloat16 and accumulate in fp32; everything else (and the master weights) stays fp32.
 */
export function autocast<T>(enabled: boolean, fn: () => T): T {
  const prev = bf16Autocast;
  bf16Autocast = enabled;
  try {
    return fn();
  } finally {
    bf16Autocast = prev;
  }
}
export function isAutocastBf16(): boolean {
  return bf16Autocast;
}

interface Scope {
  tensors: Tensor[];
  buffers: FloatArray[];
}
const scopes: Scope[] = [];

/**
 * Runs fn; every tensor created inside (and every scratch buffer) is returned to the pool when fn
 * finishes, except the tensors in its result (a Tensor, or an array/object of Tensors), which move
 * to the enclosing scope. Do not keep references to other tensors created inside.
 */
export function withScope<T>(fn: () => T): T {
  const scope: Scope = { tensors: [], buffers: [] };
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  const parent = scopes[scopes.length - 1];
  for (const t of scope.tensors) {
    if (keep.has(t)) {
      parent?.tensors.push(t);
      t.detachGraph();
    } else {
      t.dispose();
    }
  }
  for (const b of scope.buffers) releaseBuffer(b);
  return result;
}

function collectTensors(x: unknown, out: Set<Tensor>): void {
  if (x instanceof Tensor) out.add(x);
  else if (Array.isArray(x)) for (const y of x) collectTensors(y, out);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    for (const y of Object.values(x)) collectTensors(y, out);
  }
}

/** Scratch buffer for an op's saved state (e.g. layernorm statistics); pooled inside a scope. */
export function scratch(n: number, dtype: DType): FloatArray {
  const scope = scopes[scopes.length - 1];
  if (!scope) return dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  const b = allocBuffer(n, dtype);
  scope.buffers.push(b);
  return b;
}

// ---- Tensor ---------------------------------------------------------------------------------

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  data: FloatArray;
  shape: number[];
  requiresGrad: boolean;
  private gradient: Tensor | null = null;
  /**
   * zeroGrad() was called and not yet acted on: the gradient buffer's contents are stale and read as
   * zeros. The next writer that overwrites every element (gradForWrite: a weight gradient's GEMM)
   * skips the fill; any other reader or accumulating writer fills it first (the `grad` getter).
   */
  private gradStale = false;
  /** Parents in the autograd graph and the closure that pushes this.grad into them. */
  parents: Tensor[] = [];
  backwardFn: (() => void) | null = null;
  /** Set for tensors whose buffer belongs to the pool (released by dispose). */
  private pooled = false;
  /** A view shares its base's buffer and never releases it. */
  private base: Tensor | null = null;
  /** This gradient's buffer was handed on by accumulateGrad (it must not be handed on twice). */
  private lent = false;
  /** For a slice of `parent` (select0): the gradient lives in that slice of the parent's gradient. */
  private gradSliceOf: { parent: Tensor; offset: number } | null = null;
  name?: string;

  constructor(data: FloatArray, shape: readonly number[], requiresGrad = false) {
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw new RangeError(`Tensor: data has ${data.length} elements but shape ${formatShape(shape)} needs ${n}`);
    }
    this.data = data;
    this.shape = [...shape];
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): DType {
    return this.data instanceof Float64Array ? 'float64' : 'float32';
  }
  get isLeaf(): boolean {
    return this.backwardFn === null;
  }

  /** A tensor with an uninitialised pooled buffer (pooled only inside a scope). */
  static empty(shape: readonly number[], dtype: DType = defaultDtype): Tensor {
    const n = shapeSize(shape);
    const scope = scopes[scopes.length - 1];
    if (!scope) return new Tensor(dtype === 'float32' ? new Float32Array(n) : new Float64Array(n), shape);
    const t = new Tensor(allocBuffer(n, dtype), shape);
    t.pooled = true;
    scope.tensors.push(t);
    return t;
  }
  static zeros(shape: readonly number[], dtype: DType = defaultDtype): Tensor {
    const t = Tensor.empty(shape, dtype);
    t.data.fill(0);
    return t;
  }
  static full(shape: readonly number[], value: number, dtype: DType = defaultDtype): Tensor {
    const t = Tensor.empty(shape, dtype);
    t.data.fill(value);
    return t;
  }
  /** Copies values (nested arrays or a flat array with an explicit shape). */
  static from(values: ArrayLike<number>, shape: readonly number[] = [values.length], dtype: DType = defaultDtype): Tensor {
    const data = dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
    return new Tensor(data, shape);
  }
  static scalar(x: number, dtype: DType = defaultDtype): Tensor {
    return Tensor.from([x], [], dtype);
  }

  /** A view with another shape over the same buffer (registered in the current scope). */
  view(shape: readonly number[]): Tensor {
    const t = new Tensor(this.data, shape);
    t.base = this.base ?? this;
    scopes[scopes.length - 1]?.tensors.push(t);
    return t;
  }

  item(): number {
    if (this.size !== 1) throw new RangeError(`item(): tensor has shape ${formatShape(this.shape)}, not one element`);
    return this.data[0]!;
  }
  toArray(): number[] {
    return Array.from(this.data);
  }

  get grad(): Tensor | null {
    if (this.gradStale) {
      this.gradStale = false;
      this.gradient!.data.fill(0);
    }
    return this.gradient;
  }
  set grad(g: Tensor | null) {
    this.gradient = g;
    this.gradStale = false;
  }

  /** The gradient buffer, allocated zeroed on first use (pooled for non-leaf tensors inside a scope). */
  ensureGrad(): Tensor {
    if (!this.grad) {
      if (this.gradSliceOf) {
        const { parent, offset } = this.gradSliceOf;
        this.grad = new Tensor(parent.ensureGrad().data.subarray(offset, offset + this.size), this.shape);
      } else if (this.isLeaf || !scopes.length) {
        const n = this.size;
        this.grad = new Tensor(this.dtype === 'float32' ? new Float32Array(n) : new Float64Array(n), this.shape);
      } else {
        const g = new Tensor(allocZeroed(this.size, this.dtype), this.shape);
        g.pooled = true;
        scopes[scopes.length - 1]!.tensors.push(g);
        this.grad = g;
      }
    }
    return this.grad;
  }

  /** Whether gradForWrite() would hand out a fresh buffer to overwrite (no gradient yet, an intermediate in a scope). */
  canOverwriteGrad(): boolean {
    return !this.grad && !this.gradSliceOf && !this.isLeaf && scopes.length > 0;
  }

  /**
   * Where an op's backward writes this tensor's gradient. The first writer of an intermediate
   * tensor's gradient gets a pooled buffer with unspecified contents and accumulate = false, and
   * must overwrite every element (GEMM with accumulate off, permute, a copy): zero-filling it and
   * adding into it would move the same bytes twice. So does the first writer after zeroGrad() (a
   * parameter's gradient, stale until then). Otherwise: the (zeroed) gradient, accumulate.
   */
  gradForWrite(): { data: FloatArray; accumulate: boolean } {
    if (this.gradStale) {
      this.gradStale = false;
      return { data: this.gradient!.data, accumulate: false };
    }
    if (!this.canOverwriteGrad()) return { data: this.ensureGrad().data, accumulate: true };
    const g = new Tensor(allocBuffer(this.size, this.dtype), this.shape);
    g.pooled = true;
    scopes[scopes.length - 1]!.tensors.push(g);
    this.grad = g;
    return { data: g.data, accumulate: false };
  }

  /**
   * this.grad += from, where `from` is the gradient of an op output with as many elements (reshape,
   * add). An intermediate tensor with no gradient yet adopts from's buffer instead of zero-filling
   * one and adding into it, so those backwards copy nothing. Safe because backward() runs each node
   * once, after all its consumers: the lender never reads its gradient again. A buffer is lent at
   * most once, so two tensors never accumulate into the same memory. Leaves (parameters) always
   * get their own buffer: their gradients outlive the step's scope.
   */
  accumulateGrad(from: Tensor): void {
    if (from.size !== this.size) throw new RangeError(`accumulateGrad: ${from.size} gradient values for a tensor of ${this.size}`);
    if (!this.grad && !this.gradSliceOf && !this.isLeaf && scopes.length > 0 && (from.pooled || from.base) && !from.lent) {
      from.lent = true;
      this.grad = from.view(this.shape);
      return;
    }
    const target = this.gradForWrite();
    if (target.accumulate) backend().axpy(1, from.data, target.data, this.size);
    else backend().scale(from.data, 1, target.data, this.size); // a copy (x·1 = x exactly), on all threads
  }

  /**
   * Makes this tensor (elements offset … offset + size of parent's buffer, created by an op that
   * has not run backward yet) accumulate its gradient straight into that slice of parent's gradient.
   */
  shareGradWith(parent: Tensor, offset: number): void {
    if (this.grad) throw new Error('shareGradWith: the tensor already has a gradient');
    this.gradSliceOf = { parent, offset };
  }

  /** Zeroes the gradient (lazily: see gradStale). */
  zeroGrad(): void {
    if (this.gradient) this.gradStale = true;
  }

  /** Forgets the graph behind this tensor (keeps data and grad). */
  detachGraph(): void {
    this.parents = [];
    this.backwardFn = null;
  }

  /** A new leaf sharing this tensor's data, outside the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** Returns the buffer to the pool (if pooled); the tensor must not be used afterwards. */
  dispose(): void {
    if (this.pooled && !this.base) releaseBuffer(this.data);
    this.pooled = false;
    this.data = EMPTY;
    this.shape = [0];
    this.grad = null;
    this.parents = [];
    this.backwardFn = null;
  }

  /**
   * Back-propagates from this scalar (or from `gradient` for a non-scalar): accumulates d(this)/d(p)
   * into p.grad for every tensor p with requiresGrad that this depends on.
   */
  backward(gradient?: Tensor): void {
    if (!gradient && this.size !== 1) {
      throw new RangeError(`backward(): called on a tensor of shape ${formatShape(this.shape)}; pass a gradient or reduce to a scalar first`);
    }
    if (!this.requiresGrad) throw new Error('backward(): this tensor does not require grad (no parameter in its graph?)');
    const order = topoOrder(this);
    const g = this.ensureGrad();
    if (gradient) {
      if (gradient.size !== this.size) throw new RangeError(`backward(): gradient shape ${formatShape(gradient.shape)} does not match ${formatShape(this.shape)}`);
      for (let i = 0; i < g.size; i++) g.data[i]! += gradient.data[i]!;
    } else {
      g.data[0]! += 1;
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      if (t.backwardFn && t.grad) t.backwardFn();
    }
  }
}

const EMPTY = new Float32Array(0);

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep models would overflow the JS stack with recursion.
  const stack: Array<[Tensor, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    if (i < t.parents.length) {
      top[1]++;
      const p = t.parents[i]!;
      if (!seen.has(p) && p.requiresGrad) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/**
 * Records an op result in the graph when grad mode is on and any input requires grad.
 * `backward` reads out.grad and accumulates into the inputs' grads (use ensureGrad()).
 */
export function record(out: Tensor, inputs: readonly Tensor[], backward: () => void): Tensor {
  if (!gradEnabled) return out;
  const parents = inputs.filter((t) => t.requiresGrad);
  if (parents.length === 0) return out;
  out.requiresGrad = true;
  out.parents = parents;
  out.backwardFn = backward;
  return out;
}

/** A trainable tensor (never pooled). */
export function parameter(data: FloatArray, shape: readonly number[], name?: string): Tensor {
  const t = new Tensor(data, shape, true);
  if (name) t.name = name;
  return t;
}
