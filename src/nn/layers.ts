/** The standard layers, with Hugging Face parameter names and initialisation. */
import type { Tensor } from '../tensor/tensor.ts';
import { linear, layerNorm, embedding } from '../tensor/nn-ops.ts';
import type { Rng } from '../util/random.ts';
import { Module, normalInit, constantInit } from './module.ts';

/**
 * Affine layer. 'out_in' stores the weight [out, in] like torch.nn.Linear (BERT); 'in_out' stores
 * [in, out] like GPT-2's Conv1D.
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly layout: 'in_out' | 'out_in', rng: Rng, opts: { bias?: boolean; std?: number } = {}) {
    super();
    const shape = layout === 'in_out' ? [inFeatures, outFeatures] : [outFeatures, inFeatures];
    this.weight = this.param('weight', normalInit(shape, opts.std ?? 0.02, rng));
    this.bias = opts.bias === false ? null : this.param('bias', constantInit([outFeatures], 0));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias, this.layout);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', constantInit([dim], 1));
    this.bias = this.param('bias', constantInit([dim], 0));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.param('weight', normalInit([num, dim], std, rng));
  }
  forward(ids: Int32Array, shape: readonly number[]): Tensor {
    return embedding(this.weight, ids, shape);
  }
}
