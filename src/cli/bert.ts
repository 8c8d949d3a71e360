/**
 * BERT commands: `primer fill-mask`, `primer nsp`, and `runBertPretrain` — the BERT side of
 * `primer pretrain --objective mlm|mlm+nsp` (src/cli/pretrain.ts parses the shared flags and hands
 * BERT objectives over to it).
 */
import type { Command } from 'commander';
import { fillMask, loadBert } from '../infer/fill-mask.ts';
import { isNextProbability } from '../infer/nsp.ts';
import { pretrainBert } from '../train/bert-pretrain.ts';
import { TrainingDivergedError } from '../train/trainer.ts';
import { recordedObjective } from '../train/checkpoint.ts';
import { action, commonPretrainOptions, intArg, type CommonPretrainFlags } from './options.ts';
import { padEndColumns } from '../util/text-width.ts';

/** Flags of `primer pretrain` that apply to BERT, plus the BERT-only ones. */
export interface BertPretrainFlags extends CommonPretrainFlags {
  objective: 'mlm' | 'mlm+nsp';
  data?: string;
  documents?: 'file' | 'blank-line';
  maxSeqLength?: number;
  maskProb?: number;
  wholeWordMask?: boolean;
  workers?: number;
  embeddingInit?: 'random' | 'ppmi';
  positionEmbedding?: 'absolute' | 'relative_key';
  attentionInit?: 'local' | 'random';
  maxDocumentChars?: number;
}

/** Runs BERT pre-training from CLI flags and prints the outcome; exit code 1 on divergence, 130/143 on a signal. */
export async function runBertPretrain(f: BertPretrainFlags): Promise<void> {
  const result = await pretrainBert({
    ...commonPretrainOptions(f), objective: f.objective, data: f.data, documents: f.documents, maxSeqLength: f.maxSeqLength ?? f.blockSize,
    maskProbability: f.maskProb, wholeWordMask: f.wholeWordMask, workers: f.workers, embeddingInit: f.embeddingInit,
    positionEmbedding: f.positionEmbedding, attentionInit: f.attentionInit, maxDocumentChars: f.maxDocumentChars,
  }).catch((e: unknown) => {
    if (e instanceof TrainingDivergedError) {
      console.error(`primer: ${e.message}`);
      process.exit(1);
    }
    throw e;
  });
  const example = f.corpus?.includes('builtin:zh') ? '床前明月[MASK]' : 'The capital of France is [MASK].';
  console.log(`total time ${result.seconds.total.toFixed(0)}s. Try: primer fill-mask --model ${result.runDir} --text "${example}"`);
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
        for (const p of r.predictions) console.log(`  ${padEndColumns(p.token, 16)} ${(100 * p.probability).toFixed(2).padStart(6)}%`);
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
      if (recordedObjective(o.model) === 'mlm') {
        console.error(`warning: ${o.model} was pre-trained with --objective mlm, so its next-sentence head was never trained and this probability means nothing (pre-train with --objective mlm+nsp)`);
      }
      const p = isNextProbability(model, tokenizer, o.a, o.b);
      console.log(`is next: ${(100 * p).toFixed(2)}% (random: ${(100 * (1 - p)).toFixed(2)}%)`);
    }));
}
