/** Test entry: the `primer` program with the adaptation commands (registered here until index.ts wires them). */
import { createProgram } from '../../src/cli/index.ts';
import { registerAdaptCommands } from '../../src/cli/adapt.ts';

const program = createProgram();
if (!program.commands.some((c) => c.name() === 'chat')) registerAdaptCommands(program);
await program.parseAsync(process.argv);
