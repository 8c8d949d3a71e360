/**
 * `npm run bench:llama [-- --preset mini --minutes 5]`: a Llama-style decoder (RMSNorm, RoPE, SwiGLU)
 * against a GPT-2-style one of the same preset size, each pre-trained for the same wall time on the
 * built-in corpus with the same BPE tokenizer, data, batch, learning rate and seed. Each run's step count
 * is planned from its own measured speed so that its cosine schedule ends at the time limit. Reports
 * parameters, tokens/s and held-out loss; writes bench/results/llama.json and the BENCHMARKS.md section.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { GPT } from '../src/models/gpt.ts';
import { Llama } from '../src/models/llama.ts';
import { gptPreset, llamaPreset, type PresetName } from '../src/models/presets.ts';
import { withScope } from '../src/tensor/tensor.ts';
import { crossEntropy } from '../src/tensor/nn-ops.ts';
import { pretrain } from '../src/train/pretrain.ts';
import { mix32 } from '../src/util/random.ts';
import { repoRoot, writeBenchmarkSection, writeResults } from './report.ts';

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'mini' }, minutes: { type: 'string', default: '5' },
    out: { type: 'string', default: join(repoRoot, 'tmp', 'llama-bench') }, 'no-report': { type: 'boolean', default: false },
  },
});
const preset = args.preset as PresetName;
const minutes = Number(args.minutes);
const [batchSize, blockSize, vocabSize, lr] = [16, 128, 8192, 1e-3];

/** Tokens/s of full training steps of one architecture, after one warm-up step. */
function measure(arch: 'gpt' | 'llama'): number {
  const model = arch === 'gpt'
    ? new GPT(gptPreset(preset, { vocabSize, context: blockSize }), 0)
    : new Llama({ ...llamaPreset(preset, { vocabSize, context: blockSize }), max_position_embeddings: blockSize }, 0);
  const n = batchSize * blockSize;
  const ids = new Int32Array(n).map((_, i) => mix32(i) % vocabSize);
  const step = () => withScope(() => {
    const logits = model instanceof GPT ? model.forward(ids, batchSize, blockSize).logits : model.forward(ids, batchSize, blockSize).logits;
    crossEntropy(logits, ids).backward();
    for (const p of model.parameters()) p.grad?.data.fill(0);
  });
  step();
  const t0 = performance.now();
  let steps = 0;
  do { step(); steps++; } while (performance.now() - t0 < 4000 && steps < 30);
  return (steps * n) / ((performance.now() - t0) / 1000);
}

// The bench's own scratch runs: a rerun starts them afresh.
rmSync(args.out!, { recursive: true, force: true });
const rows: Array<{ arch: string; parameters: number; steps: number; tokensPerSecond: number; valLoss: number | null; seconds: number }> = [];
const load0 = loadavg()[0]!;
for (const arch of ['gpt', 'llama'] as const) {
  const tps = measure(arch);
  const steps = Math.max(20, Math.floor((tps * 60 * minutes * 0.9) / (batchSize * blockSize)));
  const tokenizer = join(args.out!, 'gpt');
  const r = await pretrain({
    arch, preset, steps, batchSize, blockSize, lr, minLr: lr / 10, warmupSteps: Math.min(100, Math.round(steps / 20)), vocabSize,
    maxMinutes: minutes, evalEvery: Math.max(50, Math.round(steps / 10)), evalBatches: 16, checkpointEvery: 0, keepCheckpoints: 1,
    samplePrompts: [], progress: false, out: join(args.out!, arch), seed: 1337,
    // The same tokenizer for both: the GPT run trains it, the Llama run reads it.
    ...(arch === 'llama' && existsSync(join(tokenizer, 'tokenizer.json')) ? { tokenizer } : {}),
    log: (m) => console.log(`[${arch}] ${m}`),
  });
  rows.push({ arch, parameters: r.parameters, steps: r.training.step, tokensPerSecond: r.training.tokensPerSecond, valLoss: r.training.valLoss, seconds: r.seconds.training });
}
const load1 = loadavg()[0]!;
console.table(rows);
writeResults('llama', { preset, minutes, batchSize, blockSize, lr, rows, loadAverage: [load0, load1] });
if (!args['no-report']) {
  const [g, l] = rows as [typeof rows[0], typeof rows[0]];
  const body = [
    `${preset} preset, ${minutes} min of pre-training each on the built-in corpus, one after the other, same BPE tokenizer (vocab ${vocabSize}), data, seed, batch ${batchSize}×${blockSize}, lr ${lr} cosine to ${lr / 10}; steps planned from each model's measured speed. 1-minute load average ${load0.toFixed(1)} before, ${load1.toFixed(1)} after.`,
    '',
    '| model | parameters | steps | tokens/s | held-out loss |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.arch === 'gpt' ? 'GPT-2 style (LayerNorm, learned positions, GELU MLP)' : 'Llama style (RMSNorm, RoPE, SwiGLU)'} | ${(r.parameters / 1e6).toFixed(2)}M | ${r.steps} | ${Math.round(r.tokensPerSecond).toLocaleString('en-US')} | ${r.valLoss?.toFixed(4) ?? '—'} |`),
    '',
    `Llama/GPT: ${(l.tokensPerSecond / g.tokensPerSecond).toFixed(2)}× tokens/s; held-out loss ${l.valLoss !== null && g.valLoss !== null ? `${(l.valLoss - g.valLoss >= 0 ? '+' : '')}${(l.valLoss - g.valLoss).toFixed(4)}` : '—'} at equal wall time.`,
  ].join('\n');
  writeBenchmarkSection('Llama vs GPT-2 blocks', `npm run bench:llama -- --preset ${preset} --minutes ${minutes}`, body);
}
