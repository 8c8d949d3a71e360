/**
 * Optimisation: fused AdamW over parameter groups, global gradient-norm clipping, and the
 * learning-rate schedule shared by every trainer.
 */
import { backend } from '../backend/index.ts';
import type { FloatArray } from '../backend/types.ts';
import type { Tensor } from './tensor.ts';

export interface ParamGroup {
  params: Tensor[];
  /** Decoupled weight decay for this group (0 for biases and LayerNorm weights, as HF/nanoGPT do). */
  weightDecay: number;
}

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface AdamWState {
  step: number;
  m: FloatArray[];
  v: FloatArray[];
}

export class AdamW {
  readonly groups: ParamGroup[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Number of completed steps (bias correction uses step + 1 for the next one). */
  step = 0;
  private readonly m: FloatArray[];
  private readonly v: FloatArray[];

  constructor(params: Tensor[] | ParamGroup[], opts: AdamWOptions) {
    const groups: ParamGroup[] = params.length > 0 && 'params' in (params[0] as object)
      ? (params as ParamGroup[])
      : [{ params: params as Tensor[], weightDecay: opts.weightDecay ?? 0.01 }];
    this.groups = groups;
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    const all = this.parameters();
    const alloc = (p: Tensor): FloatArray => (p.dtype === 'float32' ? new Float32Array(p.size) : new Float64Array(p.size));
    this.m = all.map(alloc);
    this.v = all.map(alloc);
  }

  parameters(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /**
   * One AdamW update of every parameter that has a gradient, reading each gradient as gradScale·grad:
   * the trainer passes its clipping factor here (clipFactor) instead of scaling the gradients first,
   * with the same bits as clipGradNorm + update(). One backend call for all parameters.
   */
  update(gradScale = 1): void {
    this.step++;
    const be = backend();
    const params: FloatArray[] = [], grads: FloatArray[] = [], m: FloatArray[] = [], v: FloatArray[] = [], decay: number[] = [];
    let i = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        if (p.grad) {
          params.push(p.data);
          grads.push(p.grad.data);
          m.push(this.m[i]!);
          v.push(this.v[i]!);
          decay.push(g.weightDecay);
        }
        i++;
      }
    }
    be.adamwGroup(params, grads, m, v, decay, this.lr, this.beta1, this.beta2, this.eps, this.step, gradScale);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  state(): AdamWState {
    return { step: this.step, m: this.m, v: this.v };
  }

  loadState(s: AdamWState): void {
    if (s.m.length !== this.m.length) throw new RangeError(`AdamW.loadState: ${s.m.length} moment buffers for ${this.m.length} parameters`);
    s.m.forEach((buf, i) => {
      if (buf.length !== this.m[i]!.length) throw new RangeError(`AdamW.loadState: moment ${i} has ${buf.length} values, parameter has ${this.m[i]!.length}`);
      this.m[i]!.set(buf);
      this.v[i]!.set(s.v[i]!);
    });
    this.step = s.step;
  }
}

/** The global L2 norm of the gradients of params (parameters without a gradient count as zero). */
export function gradientNorm(params: Tensor[]): number {
  const be = backend();
  const grads: FloatArray[] = [];
  for (const p of params) if (p.grad) grads.push(p.grad.data);
  return Math.sqrt(be.sumSquaresGroup(grads));
}

/** The factor gradients of global norm `norm` are clipped by: maxNorm / (norm + 1e-6) when norm > maxNorm, else 1. */
export function clipFactor(norm: number, maxNorm: number): number {
  return Number.isFinite(maxNorm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}

/**
 * Scales all gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_:
 * factor maxNorm / (norm + 1e-6)). Returns the norm before clipping. The trainer instead passes
 * clipFactor(gradientNorm(params), maxNorm) to AdamW.update, which saves the pass over the gradients.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const norm = gradientNorm(params);
  const f = clipFactor(norm, maxNorm);
  if (f !== 1) {
    const be = backend();
    for (const p of params) if (p.grad) be.scale(p.grad.data, f, p.grad.data, p.size);
  }
  return norm;
}

export interface ScheduleOptions {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
  decay: 'cosine' | 'linear' | 'constant';
}

/** Linear warmup to maxLr, then cosine or linear decay to minLr at totalSteps (nanoGPT's get_lr). */
export function learningRate(step: number, s: ScheduleOptions): number {
  if (step < s.warmupSteps) return (s.maxLr * (step + 1)) / s.warmupSteps;
  if (s.decay === 'constant' || step >= s.totalSteps) return s.decay === 'constant' ? s.maxLr : s.minLr;
  const ratio = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  const coeff = s.decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * ratio)) : 1 - ratio;
  return s.minLr + coeff * (s.maxLr - s.minLr);
}
