/** Runs `primer serve|dashboard` as a child process for the tests (before the CLI index wires it in). */
import { Command } from 'commander';
import { registerServeCommands } from '../../src/cli/serve.ts';

const program = new Command('primer').exitOverride();
registerServeCommands(program);
await program.parseAsync(process.argv);
