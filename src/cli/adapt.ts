/**
 * Generative adaptation commands: `primer chat`, `primer lora merge`, and `runSftCommand`, the action
 * behind `primer finetune --objective sft --data FILE` (wired by the finetune command).
 */
import { statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { GPT } from '../models/gpt.ts';
import { LORA_DEFAULTS, loraSettingsFromFlags, type LoraFlags } from '../adapt/lora.ts';
import { ChatSession, loadChatModel } from '../adapt/chat.ts';
import { decoderContext } from '../infer/kv-cache.ts';
import { mergeLoraDir } from '../adapt/lora-merge.ts';
import { runSft, SFT_DEFAULTS, type SftOptions, type SftResult } from '../adapt/sft-run.ts';
import { action, choiceArg, floatArg, intArg, probabilityArg } from './options.ts';
import { PrimerError } from '../io/errors.ts';

/** Options of `primer finetune --objective sft`: the library's SFT options with LoRA as flat flags. */
export type SftCommandOptions = Omit<SftOptions, 'lora' | 'log' | 'progress'> & LoraFlags;

/** The run's result; null when a resume found the run already at its target (nothing written). */
export async function runSftCommand(o: SftCommandOptions): Promise<SftResult | null> {
  // By flag name, before the model loads: the reader would only say EISDIR.
  for (const [flag, path] of [['--data', o.data], ['--val-data', o.valData]] as const) {
    if (path && !path.startsWith('builtin:') && statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      throw new RangeError(`${flag} ${path} is a directory; give a prompt/response .jsonl file`);
    }
  }
  const { loraR, loraAlpha, loraDropout, loraTargets, ...rest } = o;
  // On resume a LoRA flag is checked alone against the run: filling in the others' defaults would
  // report a conflict nobody typed (an alpha of 2·r against a run trained with another alpha).
  const typed = [loraR, loraAlpha, loraDropout, loraTargets].some((v) => v !== undefined);
  const lora = !o.resume ? loraSettingsFromFlags({ loraR, loraAlpha, loraDropout, loraTargets })
    : !typed ? undefined : loraR === 0 ? null : { r: loraR, alpha: loraAlpha, dropout: loraDropout, targets: loraTargets };
  let r: SftResult;
  try {
    r = await runSft({ ...rest, lora });
  } catch (e) {
    if (!(e instanceof PrimerError && e.code === 'NOTHING_TO_TRAIN')) throw e;
    console.log(e.message);
    return null;
  }
  if (r.after) {
    console.log(`held-out response perplexity: ${r.before.perplexity.toFixed(2)} → ${r.after.perplexity.toFixed(2)}`);
  } else {
    // Like `primer pretrain`: 130 for Ctrl-C, 143 for SIGTERM, after the weights are safely on disk.
    console.log(`interrupted: resume with primer finetune --objective sft --resume ${r.out}`);
    process.exitCode = r.training.signal === 'SIGTERM' ? 143 : 130;
  }
  return r;
}

/**
 * The options `primer finetune` needs on top of its own (--model, --data, --val-data, --out,
 * --batch-size, --lr, --max-length, --seed, --epochs) to route `--objective sft` (and --resume) here.
 */
export function addSftOptions(cmd: Command): Command {
  return cmd
    .option('--objective <kind>', 'task (classification/tagging/QA, default) or sft (prompt/response JSONL, or --data builtin:sentiment)', choiceArg(['task', 'sft'] as const))
    .option('--steps <n>', `SFT: optimizer steps (default: --epochs over the data, else ${SFT_DEFAULTS.steps})`, intArg(1))
    .option('--lora-r <n>', 'train LoRA adapters of this rank instead of all weights (SFT and task fine-tuning)', intArg(0))
    .option('--lora-alpha <a>', `LoRA alpha (default ${LORA_DEFAULTS.alphaPerRank}·r)`, floatArg(0))
    .option('--lora-dropout <p>', `LoRA dropout (default ${LORA_DEFAULTS.dropout})`, floatArg(0, 0.99))
    .option('--lora-targets <set>', `layers to adapt: attention (default), mlp or all`, choiceArg(['attention', 'mlp', 'all'] as const))
    .option('--merge-lora', 'SFT: also write the merged model to <out>/merged')
    .option('--resume <dir>', 'SFT: continue the run in this directory (or checkpoint) exactly, with its settings; --steps or --epochs may extend it (implies --objective sft; --model and --out are then optional)');
}

interface ChatCliOptions {
  model: string;
  adapter?: string;
  system?: string;
  maxTokens?: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
}

async function chatLoop(o: ChatCliOptions): Promise<void> {
  const { model, tokenizer, template } = loadChatModel(o.model, o.adapter);
  const session = new ChatSession(model, tokenizer, {
    template, system: o.system, maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP,
    repetitionPenalty: o.repetitionPenalty, seed: o.seed,
  });
  const tty = process.stdin.isTTY === true;
  const out = process.stdout;
  // Banner, prompt and notices go to stderr so that piping stdout keeps only the replies.
  const info = process.stderr;
  info.write(`chatting with ${o.model}${o.adapter ? ` + ${o.adapter}` : ''} — /reset clears the history, /exit quits\n`);
  if (session.maxTokensCapped) info.write(`(replies capped at ${session.maxTokens} tokens to fit the model's ${decoderContext(model)}-token context; --max-tokens sets it)\n`);
  let answered = 0;
  let refused = 0;
  const rl = createInterface({ input: process.stdin, terminal: tty });
  const promptUser = () => tty && info.write('you> ');
  promptUser();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '/exit' || line === '/quit') break;
    if (line === '/reset') {
      session.reset();
      info.write('(history cleared)\n');
    } else if (line) {
      out.write('assistant>');
      try {
        for (const piece of session.send(line)) out.write(piece);
        out.write('\n');
        answered++;
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        out.write(`\n(error: ${e.message})\n`);
        refused++;
      }
    }
    promptUser();
  }
  rl.close();
  out.write('bye\n');
  // A piped session in which no message got a reply failed, whatever the reason per turn.
  if (refused > 0 && answered === 0) process.exitCode = 1;
}

export function registerAdaptCommands(program: Command): void {
  program
    .command('chat')
    .description('interactive chat with a GPT (streamed replies; /reset clears the history, /exit quits)')
    .requiredOption('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json)')
    .option('--adapter <dir>', 'a LoRA adapter (PEFT layout) to merge into the model first')
    .option('--system <text>', 'system prompt')
    .option('--max-tokens <n>', 'tokens per reply (default 64; for a small context, half of what the chat template leaves)', intArg(1))
    .option('--temperature <t>', 'sampling temperature, 0 = greedy', floatArg(0), 0.7)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', intArg(0), 40)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (1 = off)', probabilityArg, 1)
    .option('--repetition-penalty <r>', 'above 1 discourages tokens already in the text (1 = off)', floatArg(Number.MIN_VALUE), 1)
    .option('--seed <n>', 'random seed', intArg(0), 0)
    .action(action(chatLoop));

  const lora = program.command('lora').description('LoRA adapters (PEFT layout)');
  lora
    .command('merge')
    .description('fold a LoRA adapter into its base model and save a plain model directory')
    .requiredOption('--base <dir>', 'base model directory the adapter was trained on')
    .requiredOption('--adapter <dir>', 'adapter directory (adapter_config.json, adapter_model.safetensors)')
    .requiredOption('--out <dir>', 'output model directory')
    .action(action((o: { base: string; adapter: string; out: string }) => {
      const merged = mergeLoraDir(o);
      console.log(`merged ${merged.layers} LoRA layers into ${o.base} → ${o.out}`);
    }));
}
