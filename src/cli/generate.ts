/** `primer generate`: sample a continuation from a model directory (HF layout + tokenizer.json). */
import type { Command } from 'commander';
import { loadAnyModelDir } from '../models/load.ts';
import { readConfigJson, refuseArchitecture } from '../models/model-files.ts';
import { loadTokenizerJson } from '../data/tokenizer.ts';
import { generateText, maxTokensWarning, promptCropNotice } from '../infer/generate.ts';
import { encodePrompt } from '../infer/decode.ts';
import { decoderContext } from '../infer/kv-cache.ts';
import { action, floatArg, intArg, probabilityArg } from './options.ts';
import { readChatTemplate, renderChatText } from '../adapt/chat-template.ts';

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('continue a prompt with a causal LM (GPT-2, Llama, Qwen2)')
    .requiredOption('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json), e.g. a run directory')
    .option('--prompt <text>', 'text to continue (one longer than the model\'s context keeps its last tokens, with a notice on stderr)', '')
    .option('--max-tokens <n>', 'tokens to generate', intArg(0), 64)
    .option('--temperature <t>', 'sampling temperature, 0 = greedy', floatArg(0), 0.8)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', intArg(0), 40)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (1 = off)', probabilityArg, 1)
    .option('--repetition-penalty <r>', 'above 1 discourages tokens already in the text (1 = off)', floatArg(Number.MIN_VALUE), 1)
    .option('--stop <text...>', 'end the text before the first of these strings')
    .option('--seed <n>', 'random seed', intArg(0), 0)
    .option('--chat', 'treat --prompt as one user turn of the model\'s chat template and print only the reply')
    .action(action((o: {
      model: string; prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; repetitionPenalty: number;
      stop?: string[]; seed: number; chat?: boolean;
    }) => {
      // Before the weights: a classifier's head would otherwise surface as "unexpected tensors: …score.weight".
      refuseArchitecture(o.model, readConfigJson(o.model), ['causal LM'], 'generate needs a causal LM (…ForCausalLM / …LMHeadModel)');
      const loaded = loadAnyModelDir(o.model);
      if (loaded.kind === 'bert') throw new RangeError(`generate: ${o.model} is a bert model; generation needs a causal LM (GPT-2, Llama, Qwen2)`);
      const context = decoderContext(loaded.model);
      const warning = maxTokensWarning(o.maxTokens, context);
      if (warning) console.error(`warning: ${warning}`);
      const tokenizer = loadTokenizerJson(o.model);
      const eos = tokenizer.specialTokens.eos ?? '<|endoftext|>';
      const prompt = o.chat
        ? renderChatText(readChatTemplate(o.model), { messages: [{ role: 'user', content: o.prompt }], addGenerationPrompt: true, eosToken: eos })
        : o.prompt;
      // Unlike the server (400), the CLI crops an over-long prompt as nanoGPT does (a GPT-2's absolute
      // positions end at the context), but says so: the model never reads the start of it.
      const notice = promptCropNotice(encodePrompt(tokenizer, prompt).length, context);
      if (notice) console.error(`notice: ${notice}`);
      const text = generateText(loaded.model, tokenizer, prompt, {
        maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, repetitionPenalty: o.repetitionPenalty, seed: o.seed, stop: o.stop,
      });
      console.log(o.chat ? text.split('\nUser:')[0]!.trim() : o.prompt + text);
    }));
}
