/**
 * Steady-state training allocates nothing new: 2000 forward/backward/AdamW steps of a small causal
 * transformer reuse pooled buffers (the pool creates no new buffers after warm-up) and RSS stays flat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setBackend } from '../../src/backend/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { AdamW, clipGradNorm } from '../../src/tensor/optim.ts';
import { withScope } from '../../src/tensor/tensor.ts';
import { poolStats } from '../../src/tensor/pool.ts';
import { Rng } from '../../src/tensor/random.ts';

test('2000 training steps: no new pooled buffers after warm-up, RSS flat', () => {
  setBackend('native');
  const model = new GPT({ model_type: 'gpt2', vocab_size: 64, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 2, resid_pdrop: 0.1, embd_pdrop: 0.1 }, 1);
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const rng = new Rng(5);
  const b = 4, t = 16;
  const ids = new Int32Array(b * t);
  const step = () => {
    for (let i = 0; i < ids.length; i++) ids[i] = (i * 7 + rng.int(3)) % 64; // learnable pattern
    const loss = withScope(() => {
      const { loss } = model.forward(ids, b, t, ids);
      loss!.backward();
      return loss!.item();
    });
    clipGradNorm(model.parameters(), 1.0);
    opt.update();
    opt.zeroGrad();
    return loss;
  };
  let first = 0;
  for (let i = 0; i < 200; i++) {
    const l = step();
    if (i === 0) first = l;
  }
  global.gc?.();
  const created = poolStats().created;
  const rss0 = process.memoryUsage.rss();
  let last = 0;
  for (let i = 0; i < 1800; i++) last = step();
  global.gc?.();
  const rss1 = process.memoryUsage.rss();
  assert.equal(poolStats().created, created, 'the pool allocated new buffers in steady state');
  assert.equal(poolStats().liveBytes, 0, 'buffers leaked out of the step scope');
  const growth = (rss1 - rss0) / rss0;
  assert.ok(growth < 0.2, `RSS grew ${(growth * 100).toFixed(1)}% (${(rss0 / 2 ** 20).toFixed(1)} → ${(rss1 / 2 ** 20).toFixed(1)} MiB)`);
  assert.ok(last < first * 0.7, `the model did not learn: loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
});
