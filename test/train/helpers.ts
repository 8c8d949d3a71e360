/** Shared pieces for the trainer tests: a tiny GPT on a synthetic, learnable token stream. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';
import { RandomBlocks, evalBatches, type ClmBatch } from '../../src/data/clm.ts';
import { crossEntropy } from '../../src/tensor/nn-ops.ts';
import type { TrainerOptions } from '../../src/train/trainer.ts';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `primer-${prefix}-`));
}

/** A stream with structure (token i+1 mostly follows i), so the loss visibly drops. */
export function syntheticStream(n: number, vocab: number, seed = 1): Int32Array {
  const out = new Int32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) % 5 === 0 ? (x >>> 8) % vocab : ((out[i - 1] ?? 0) + 1) % vocab;
  }
  return out;
}

export function tinyGpt(seed = 3, dropout = 0.1): GPT {
  return new GPT(gptPreset('tiny', { vocabSize: 64, layers: 2, dims: 32, heads: 2, context: 16, dropout }), seed);
}

export function clmLoss(model: GPT) {
  return (b: ClmBatch) => crossEntropy(model.forward(b.input, b.batch, b.length).logits, b.target);
}

/** Trainer options for a tiny GPT run in runDir (the caller adds steps, resume, …). */
export function tinyRun(runDir: string, model: GPT, stream: Int32Array): TrainerOptions<ClmBatch> {
  return {
    model,
    lossFn: clmLoss(model),
    data: new RandomBlocks(stream.subarray(0, 3000), 4, 16, 7),
    evalData: evalBatches(stream.subarray(3000), 4, 16, 2),
    runDir,
    steps: 8,
    lr: 3e-3,
    warmupSteps: 2,
    rngs: { dropout: model.transformer.rng },
    progress: false,
    handleSignals: false,
  };
}
