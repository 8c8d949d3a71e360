/** `primer generate`: sample a continuation from a model directory (HF layout + tokenizer.json). */
import type { Command } from 'commander';
import { loadModelDir } from '../models/load.ts';
import { loadTokenizerJson } from '../data/tokenizer.ts';
import { generateText } from '../infer/generate.ts';
import { action, floatArg, intArg } from './options.ts';

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('continue a prompt with a trained GPT')
    .requiredOption('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json), e.g. a run directory')
    .option('--prompt <text>', 'text to continue', '')
    .option('--max-tokens <n>', 'tokens to generate', intArg(0), 64)
    .option('--temperature <t>', 'sampling temperature, 0 = greedy', floatArg(0), 0.8)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', intArg(0), 40)
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', floatArg(0, 1), 1)
    .option('--seed <n>', 'random seed', intArg(0), 0)
    .action(action((o: { model: string; prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number }) => {
      const loaded = loadModelDir(o.model);
      if (loaded.kind !== 'gpt2') throw new RangeError(`generate: ${o.model} is a ${loaded.kind} model; generation needs a GPT`);
      const tokenizer = loadTokenizerJson(o.model);
      const text = generateText(loaded.model, tokenizer, o.prompt, {
        maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP > 0 ? o.topP : undefined, seed: o.seed,
      });
      console.log(o.prompt + text);
    }));
}
