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
import { Rng } from '../../src/util/random.ts';

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
  // Generous: V8 may resize its young generation (tens of MiB) under load; a leaked activation per
  // step would add hundreds of MiB over 1800 steps. The exact figure is in `npm run bench:memory`.
  const growth = (rss1 - rss0) / rss0;
  assert.ok(rss1 - rss0 < 48 * 2 ** 20, `RSS grew ${(growth * 100).toFixed(1)}% (${(rss0 / 2 ** 20).toFixed(1)} → ${(rss1 / 2 ** 20).toFixed(1)} MiB)`);
  assert.ok(last < first * 0.7, `the model did not learn: loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
});

test('variable shapes cannot grow the pool without bound: least-recently-used sizes are evicted', async () => {
  const { allocBuffer, releaseBuffer, setPoolCap, clearPool } = await import('../../src/tensor/pool.ts');
  clearPool();
  setPoolCap(1 << 20); // 1 MiB of parked buffers
  try {
    for (let n = 1000; n < 60000; n += 997) releaseBuffer(allocBuffer(n, 'float32')); // ~60 distinct sizes, 7 MB in all
    assert.ok(poolStats().freeBytes <= 1 << 20, `parked ${poolStats().freeBytes} bytes over the 1 MiB cap`);
    // The most recent size is still parked and is reused (no new buffer created).
    const last = 1000 + 997 * Math.floor((60000 - 1000 - 1) / 997);
    const created = poolStats().created;
    releaseBuffer(allocBuffer(last, 'float32'));
    assert.equal(poolStats().created, created);
  } finally {
    setPoolCap(null);
    clearPool();
  }
});
