/**
 * BERT commands: `primer fill-mask`, `primer nsp`, and `runBertPretrain` — the BERT side of
 * `primer pretrain --objective mlm|mlm+nsp` (src/cli/pretrain.ts parses the shared flags and hands
 * BERT objectives over to it).
 */
import type { Command } from 'commander';
import { fillMask, loadBert } from '../infer/fill-mask.ts';
import { isNextProbability } from '../infer/nsp.ts';
import { pretrainBert, type BertPretrainOptions } from '../train/bert-pretrain.ts';
import { TrainingDivergedError } from '../train/trainer.ts';
import { action, intArg } from './options.ts';

/** Flags of `primer pretrain` that apply to BERT, plus the BERT-only ones. */
export interface BertPretrainFlags {
  objective: 'mlm' | 'mlm+nsp';
  data?: string;
  corpus?: string[];
  jsonlField?: string;
  documents?: 'file' | 'blank-line';
  tokenizer?: string;
  vocabSize?: number;
  preset?: BertPretrainOptions['preset'];
  layers?: number;
  dims?: number;
  heads?: number;
  blockSize?: number;
  maxSeqLength?: number;
  batchSize?: number;
  gradAccum?: number;
  steps?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  decay?: BertPretrainOptions['decay'];
  weightDecay?: number;
  gradClip?: number;
  dropout?: number;
  bf16?: boolean;
  maskProb?: number;
  wholeWordMask?: boolean;
  evalEvery?: number;
  evalBatches?: number;
  checkpointEvery?: number;
  keep?: number;
  seed?: number;
  out?: string;
  resume?: string;
  maxMinutes?: number;
  workers?: number;
}

/** Runs BERT pre-training from CLI flags and prints the outcome; exit code 1 on divergence, 130/143 on a signal. */
export async function runBertPretrain(f: BertPretrainFlags): Promise<void> {
  const result = await pretrainBert({
    objective: f.objective, data: f.data, corpus: f.corpus, jsonlField: f.jsonlField, documents: f.documents, tokenizer: f.tokenizer,
    vocabSize: f.vocabSize, preset: f.preset, layers: f.layers, dims: f.dims, heads: f.heads, maxSeqLength: f.maxSeqLength ?? f.blockSize,
    batchSize: f.batchSize, gradAccum: f.gradAccum, steps: f.steps, lr: f.lr, minLr: f.minLr, warmupSteps: f.warmup, decay: f.decay,
    weightDecay: f.weightDecay, gradClip: f.gradClip === 0 ? Infinity : f.gradClip, dropout: f.dropout, bf16: f.bf16,
    maskProbability: f.maskProb, wholeWordMask: f.wholeWordMask, evalEvery: f.evalEvery, evalBatches: f.evalBatches,
    checkpointEvery: f.checkpointEvery, keepCheckpoints: f.keep, seed: f.seed, out: f.out, resume: f.resume, maxMinutes: f.maxMinutes, workers: f.workers,
  }).catch((e: unknown) => {
    if (e instanceof TrainingDivergedError) {
      console.error(`primer: ${e.message}`);
      process.exit(1);
    }
    throw e;
  });
  console.log(`total time ${result.seconds.total.toFixed(0)}s. Try: primer fill-mask --model ${result.runDir} --text "The capital of France is [MASK]."`);
  if (result.training.status === 'interrupted') {
    console.log(`interrupted: resume with primer pretrain --resume ${result.runDir} --objective ${f.objective}`);
    process.exitCode = result.training.signal === 'SIGTERM' ? 143 : 130;
  }
}

export function registerBertCommands(program: Command): void {
  program
    .command('fill-mask')
    .description('predict the [MASK] tokens of a text with a BERT model (top-k tokens with probabilities)')
    .requiredOption('--model <dir>', 'BERT model directory (config.json, model.safetensors, tokenizer.json)')
    .requiredOption('--text <text>', 'text with one or more [MASK] tokens')
    .option('--top-k <n>', 'predictions per mask (default 5)', intArg(1))
    .option('--json', 'print the predictions as JSON')
    .action(action(async (o: { model: string; text: string; topK?: number; json?: boolean }) => {
      const { model, tokenizer } = loadBert(o.model);
      const results = fillMask(model, tokenizer, o.text, { topK: o.topK ?? 5 });
      if (o.json) {
        console.log(JSON.stringify(results, null, 2));
        return;
      }
      results.forEach((r, i) => {
        if (results.length > 1) console.log(`[MASK] ${i + 1} (position ${r.position}):`);
        for (const p of r.predictions) console.log(`  ${p.token.padEnd(16)} ${(100 * p.probability).toFixed(2).padStart(6)}%`);
      });
    }));

  program
    .command('nsp')
    .description('next-sentence prediction: the probability that --b follows --a, with a BERT model')
    .requiredOption('--model <dir>', 'BERT model directory (config.json, model.safetensors, tokenizer.json)')
    .requiredOption('--a <text>', 'first sentence(s)')
    .requiredOption('--b <text>', 'candidate next sentence(s)')
    .action(action(async (o: { model: string; a: string; b: string }) => {
      const { model, tokenizer } = loadBert(o.model);
      const p = isNextProbability(model, tokenizer, o.a, o.b);
      console.log(`is next: ${(100 * p).toFixed(2)}% (random: ${(100 * (1 - p)).toFixed(2)}%)`);
    }));
}
