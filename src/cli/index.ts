/** The `primer` command-line program. Each command is a thin layer over the library API. */
import { Command } from 'commander';
import { registerPretrainCommand } from './pretrain.ts';
import { registerGenerateCommand } from './generate.ts';
import { registerVerifyCommand } from './verify.ts';
import { registerTokenizerCommands } from './tokenizer.ts';
import { registerBertCommands } from './bert.ts';
import { registerDataCommands } from './data.ts';
import { registerFinetuneCommands } from './finetune.ts';
import { registerServeCommands } from './serve.ts';
import { registerInteropCommands } from './interop.ts';
import { registerAdaptCommands } from './adapt.ts';

export function createProgram(): Command {
  const program = new Command('primer')
    .description('pre-train, fine-tune and serve transformer language models in Node.js')
    .version('0.1.0')
    .showHelpAfterError();
  registerPretrainCommand(program);
  registerGenerateCommand(program);
  registerVerifyCommand(program);
  registerTokenizerCommands(program);
  registerDataCommands(program);
  registerBertCommands(program);
  registerFinetuneCommands(program);
  registerServeCommands(program);
  registerInteropCommands(program);
  registerAdaptCommands(program);
  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  // `primer classify … | head -1`: the reader has gone, so there is nobody left to write for. Stop
  // quietly (exit 0, as Unix tools do) instead of dying on an unhandled EPIPE with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
  const program = createProgram();
  await program.parseAsync([...argv]);
}
