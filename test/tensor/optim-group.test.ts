/**
 * The optimizer step as the trainer now runs it — gradientNorm (one sumSquaresGroup) and
 * AdamW.update(clipFactor) (one adamwGroup) — trains to the same bits as the per-tensor path it
 * replaced (sumSquares per tensor, scale per tensor when clipping, adamw per tensor), and as
 * clipGradNorm + update(), which other callers still use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backend, setBackend } from '../../src/backend/index.ts';
import type { FloatArray } from '../../src/backend/types.ts';
import { GPT } from '../../src/models/gpt.ts';
import { AdamW, clipFactor, clipGradNorm, gradientNorm } from '../../src/tensor/optim.ts';
import { Tensor, withScope } from '../../src/tensor/tensor.ts';
import { decayGroups } from '../../src/train/trainer.ts';
import { Rng } from '../../src/util/random.ts';

const bits = (a: FloatArray) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const MAX_NORM = 0.5; // small, so most steps clip

/** The optimizer step before the group kernels: one native call per tensor for each of norm, clip and update. */
function perTensorStep(opt: AdamW, decay: Map<Tensor, number>): number {
  const be = backend();
  const params = opt.parameters();
  let sq = 0;
  for (const p of params) if (p.grad) sq += be.sumSquares(p.grad.data, p.size);
  const norm = Math.sqrt(sq);
  if (norm > MAX_NORM) for (const p of params) if (p.grad) be.scale(p.grad.data, MAX_NORM / (norm + 1e-6), p.grad.data, p.size);
  opt.step++;
  const { m, v } = opt.state();
  params.forEach((p, i) => {
    if (p.grad) be.adamw(p.data, p.grad.data, m[i]!, v[i]!, p.size, opt.lr, opt.beta1, opt.beta2, opt.eps, decay.get(p)!, opt.step);
  });
  return norm;
}

test('a short GPT training run: group optimizer path gives bit-identical weights and norms to the per-tensor path', () => {
  setBackend('native');
  // vocab 1100 × 48 dims: the embedding (52,800 values) is above the kernels' parallel threshold
  const config = { model_type: 'gpt2', vocab_size: 1100, n_positions: 16, n_embd: 48, n_layer: 2, n_head: 2 } as const;
  const runs = ['group', 'per-tensor'].map((path) => {
    const model = new GPT({ ...config }, 3);
    const { groups } = decayGroups(model, 0.1);
    const decay = new Map(groups.flatMap((g) => g.params.map((p) => [p, g.weightDecay] as const)));
    const opt = new AdamW(groups, { lr: 3e-3, betas: [0.9, 0.95] });
    const rng = new Rng(8);
    const b = 4, t = 16, ids = new Int32Array(b * t), norms: number[] = [];
    let clipped = 0;
    for (let step = 0; step < 6; step++) {
      for (let i = 0; i < ids.length; i++) ids[i] = (i * 37 + rng.int(5)) % config.vocab_size;
      withScope(() => model.forward(ids, b, t, ids).loss!.backward());
      if (path === 'group') {
        const norm = gradientNorm(opt.parameters());
        const f = clipFactor(norm, MAX_NORM);
        if (f < 1) clipped++;
        opt.update(f);
        norms.push(norm);
      } else {
        norms.push(perTensorStep(opt, decay));
      }
      opt.zeroGrad();
    }
    return { params: opt.parameters(), state: opt.state(), norms, clipped };
  });
  const [group, old] = runs as [typeof runs[0], typeof runs[0]];
  assert.ok(group.clipped >= 3, `only ${group.clipped} of 6 steps clipped`);
  assert.deepEqual(group.norms, old.norms);
  assert.equal(group.state.step, 6);
  group.params.forEach((p, i) => {
    assert.ok(bits(p.data).equals(bits(old.params[i]!.data)), `parameter ${i} (${p.shape.join('x')}) differs`);
    assert.ok(bits(group.state.m[i]!).equals(bits(old.state.m[i]!)), `m ${i} differs`);
    assert.ok(bits(group.state.v[i]!).equals(bits(old.state.v[i]!)), `v ${i} differs`);
  });
  assert.ok(group.params[0]!.data.some((x, i) => x !== new GPT({ ...config }, 3).parameters()[0]!.data[i]), 'weights were updated');
});

for (const [backendName, dtype] of [['native', 'float32'], ['reference', 'float64'], ['reference', 'float32']] as const) {
  test(`${backendName} ${dtype}: clipGradNorm + update() equals gradientNorm + update(clipFactor), parameters without a gradient untouched`, () => {
    setBackend(backendName);
    try {
      const make = (): { opt: AdamW; params: Tensor[] } => {
        const rng = new Rng(9);
        const alloc = (n: number) => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
        const params = [[3, 5], [7], [1], [0], [2, 2]].map((shape) => {
          const p = new Tensor(alloc(shape.reduce((a, x) => a * x, 1)).map(() => rng.normal()), shape, true);
          p.grad = new Tensor(alloc(p.size).map(() => 4 * rng.normal()), shape);
          return p;
        });
        params[4]!.grad = null; // e.g. a frozen or unused parameter
        return { opt: new AdamW([{ params: params.slice(0, 2), weightDecay: 0.1 }, { params: params.slice(2), weightDecay: 0 }], { lr: 1e-2 }), params };
      };
      const a = make(), b = make();
      const before = a.params[4]!.data.slice();
      const norm = clipGradNorm(a.params, 1);
      a.opt.update();
      const normB = gradientNorm(b.params);
      b.opt.update(clipFactor(normB, 1));
      assert.equal(normB, norm);
      assert.ok(clipFactor(norm, 1) < 0.2, `norm ${norm} should clip`);
      assert.equal(clipFactor(norm, Infinity), 1);
      a.params.forEach((p, i) => assert.ok(bits(p.data).equals(bits(b.params[i]!.data)), `parameter ${i} differs`));
      assert.ok(bits(a.params[4]!.data).equals(bits(before)), 'a parameter without a gradient must not change');
      assert.ok(a.params[0]!.data.every((x, i) => x !== make().params[0]!.data[i]), 'every weight moved');
    } finally {
      setBackend('native');
    }
  });
}
