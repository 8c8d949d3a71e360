/** Runs `primer ARGS` in this process (a child process would cost seconds of tsx start-up); returns stdout, throws on `primer: error`. */
import { createProgram } from '../../src/cli/index.ts';

export async function runPrimer(args: string[]): Promise<string> {
  const logs: string[] = [];
  const errors: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  try {
    await createProgram().exitOverride().parseAsync(['node', 'primer', ...args]);
  } finally {
    [console.log, console.error] = [log, error];
  }
  const failure = errors.find((e) => e.startsWith('primer: error'));
  if (failure) throw new Error(failure);
  return logs.join('\n');
}
