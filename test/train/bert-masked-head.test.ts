import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bert } from '../../src/models/bert.ts';
import { bertPreset } from '../../src/models/presets.ts';
import { maskTokens } from '../../src/data/mlm.ts';
import { Rng } from '../../src/util/random.ts';
import { withScope } from '../../src/tensor/tensor.ts';

test('BERT maskedOnly: the MLM head on the masked rows gives the same loss and gradients as on every row', () => {
  const vocab = 40;
  const model = new Bert({ ...bertPreset('tiny', { vocabSize: vocab, layers: 2, dims: 32, heads: 2, dropout: 0 }), intermediate_size: 64 }, 7);
  const [b, t] = [3, 12];
  const rng = new Rng(5);
  const ids = Int32Array.from({ length: b * t }, () => 4 + rng.int(vocab - 4));
  const special = new Uint8Array(vocab).fill(1, 0, 4);
  const m = maskTokens(ids, b, t, rng, { maskId: 3, vocabSize: vocab, special, probability: 0.3 });
  const nsp = Int32Array.from([0, 1, 0]);
  const run = (maskedOnly: boolean) => withScope(() => {
    for (const p of model.parameters()) p.grad = null;
    const out = model.forward({ inputIds: m.inputIds, batch: b, length: t }, m.labels, nsp, { maskedOnly });
    out.loss!.backward();
    return {
      loss: out.loss!.item(), rows: out.predictionLogits.shape[0], positions: out.maskedPositions,
      grads: model.namedParameters().map(([n, p]) => [n, Float64Array.from(p.grad?.data ?? [])] as const),
    };
  });
  const full = run(false);
  const masked = run(true);
  assert.equal(full.rows, b);
  assert.equal(masked.rows, m.predictions);
  assert.deepEqual([...masked.positions!], [...m.labels.keys()].filter((i) => m.labels[i] !== -100));
  assert.ok(Math.abs(full.loss - masked.loss) < 1e-5, `loss ${full.loss} vs ${masked.loss}`);
  for (let i = 0; i < full.grads.length; i++) {
    const [name, g] = full.grads[i]!;
    const h = masked.grads[i]![1];
    assert.equal(h.length, g.length, name);
    let maxDiff = 0;
    let maxAbs = 0;
    for (let j = 0; j < g.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(g[j]! - h[j]!));
      maxAbs = Math.max(maxAbs, Math.abs(g[j]!));
    }
    assert.ok(maxDiff <= 1e-5 * Math.max(1, maxAbs), `${name}: max gradient difference ${maxDiff} (max |g| ${maxAbs})`);
  }
  assert.ok(full.grads.some(([n, g]) => n.includes('transform.dense.weight') && g.some((x) => x !== 0)), 'the head received gradients');
});
