/**
 * RSS over 2000 forward/backward/AdamW steps of a small causal transformer: after a 200-step
 * warm-up, RSS must stay within 5% and the buffer pool must create no new buffers.
 * `npm run bench:memory` → bench/results/memory.json and the "Memory" section of BENCHMARKS.md.
 */
import { GPT } from '../src/models/gpt.ts';
import { AdamW, clipGradNorm } from '../src/tensor/optim.ts';
import { withScope } from '../src/tensor/tensor.ts';
import { poolStats } from '../src/tensor/pool.ts';
import { Rng } from '../src/util/random.ts';
import { writeResults, writeBenchmarkSection } from './report.ts';

const steps = Number(process.argv[2] ?? 2000);
const warmup = 200;
const cfg = { model_type: 'gpt2' as const, vocab_size: 256, n_positions: 64, n_embd: 128, n_layer: 2, n_head: 4, resid_pdrop: 0.1, embd_pdrop: 0.1 };
const model = new GPT(cfg, 1);
const opt = new AdamW(model.parameters(), { lr: 1e-3 });
const rng = new Rng(3);
const b = 8, t = 64;
const ids = new Int32Array(b * t);
const mib = (x: number) => x / 2 ** 20;
const samples: Array<{ step: number; rssMiB: number; heapMiB: number; poolCreated: number; loss: number }> = [];
const start = performance.now();
for (let step = 1; step <= steps; step++) {
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(256);
  const loss = withScope(() => {
    const { loss } = model.forward(ids, b, t, ids);
    loss!.backward();
    return loss!.item();
  });
  clipGradNorm(model.parameters(), 1);
  opt.update();
  opt.zeroGrad();
  if (step % 100 === 0) {
    // Sample after a full GC: without it RSS swings ±15% with V8's lazy heap sizing, which says
    // nothing about what a step retains (run with --expose-gc, as `npm run bench:memory` does).
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    samples.push({ step, rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed), poolCreated: poolStats().created, loss });
  }
}
const seconds = (performance.now() - start) / 1000;
const after = samples.filter((s) => s.step >= warmup);
const base = after[0]!;
const maxDev = Math.max(...after.map((s) => Math.abs(s.rssMiB - base.rssMiB) / base.rssMiB));
const maxGrowth = Math.max(0, ...after.map((s) => (s.rssMiB - base.rssMiB) / base.rssMiB));
const newBuffers = after[after.length - 1]!.poolCreated - base.poolCreated;
const result = { steps, warmup, model: cfg, batch: [b, t], seconds, rssAtWarmupMiB: base.rssMiB, rssFinalMiB: after[after.length - 1]!.rssMiB, maxDeviation: maxDev, maxGrowth, newPoolBuffersAfterWarmup: newBuffers, peakPoolMiB: mib(poolStats().peakBytes), samples };
writeResults('memory', result);
const row = (s: (typeof samples)[number]) => `| ${s.step} | ${s.rssMiB.toFixed(1)} | ${s.heapMiB.toFixed(1)} | ${s.poolCreated} |`;
writeBenchmarkSection('Memory', 'npm run bench:memory', `
${steps} forward/backward/AdamW steps of a ${cfg.n_layer}-layer, ${cfg.n_embd}-dim GPT (batch ${b}×${t}, dropout 0.1) in ${seconds.toFixed(1)} s.
RSS sampled after a full GC every 100 steps. After the ${warmup}-step warm-up RSS grew at most **${(maxGrowth * 100).toFixed(2)}%** above its warm-up value and moved at most ${(maxDev * 100).toFixed(2)}% either way (${base.rssMiB.toFixed(1)} → ${result.rssFinalMiB.toFixed(1)} MiB at the end; target ≤ 5%),
and the buffer pool created **${newBuffers}** new buffers (peak pooled activations ${result.peakPoolMiB.toFixed(1)} MiB).

| step | RSS MiB | JS heap MiB | pool buffers created |
|---:|---:|---:|---:|
${samples.filter((s) => s.step % 400 === 0 || s.step === warmup).map(row).join('\n')}
`);
console.log(JSON.stringify({ seconds, maxGrowth, maxDeviation: maxDev, newPoolBuffersAfterWarmup: newBuffers, rss: [base.rssMiB, result.rssFinalMiB] }));
