/**
 * Module: a named tree of parameters, like torch.nn.Module. Names follow the Hugging Face
 * checkpoints (`h.0.attn.c_attn.weight`), so state dicts load and save without renaming.
 */
import { Tensor, parameter, formatShape } from '../tensor/tensor.ts';
import type { Rng } from '../util/random.ts';

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  protected module<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Every parameter with its dotted name, depth first in registration order (HF order). */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Every sub-module with its dotted path, depth first (the root itself is not included). */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    for (const [n, c] of this.children) out.push([prefix + n, c], ...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Copies tensors into the parameters by name. Returns the names that were missing from `state`
   * and the names in `state` that match no parameter; shape mismatches throw, naming the tensor.
   */
  loadStateDict(state: Map<string, Float32Array | Float64Array>, shapes?: Map<string, number[]>): { missing: string[]; unexpected: string[] } {
    const own = new Map(this.namedParameters());
    const missing: string[] = [];
    for (const [name, p] of own) {
      const src = state.get(name);
      if (!src) {
        missing.push(name);
        continue;
      }
      const shape = shapes?.get(name);
      if (src.length !== p.size || (shape && shape.join() !== p.shape.join())) {
        throw new RangeError(`loadStateDict: ${name} has shape ${shape ? formatShape(shape) : `(${src.length} values)`} in the checkpoint but ${formatShape(p.shape)} in the model`);
      }
      p.data.set(src);
    }
    const unexpected = [...state.keys()].filter((n) => !own.has(n));
    return { missing, unexpected };
  }
}

export function normalInit(shape: number[], std: number, rng: Rng): Tensor {
  const t = parameter(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * std;
  return t;
}

export function constantInit(shape: number[], value: number): Tensor {
  const t = parameter(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  t.data.fill(value);
  return t;
}

/** A named group of sub-modules/parameters with no forward of its own (HF's nesting, e.g. `attention.self`). */
export class ModuleDict extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.module(name, m);
  }
  addParam(name: string, t: Tensor): Tensor {
    return this.param(name, t);
  }
}
