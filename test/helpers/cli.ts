/** Runs `primer ARGS` in this process (a child process would cost seconds of tsx start-up) and reports what a user sees. */
import type { Command } from 'commander';
import { createProgram } from '../../src/cli/index.ts';

/**
 * exitOverride on every command: a subcommand inherits it only if set before it was added, and a
 * usage error (an unknown option, too many arguments) would otherwise exit the test process.
 */
function exitOverrideAll(command: Command): Command {
  command.exitOverride();
  for (const sub of command.commands) exitOverrideAll(sub);
  return command;
}

/**
 * Stdout lines, stderr lines (warnings, notices), the `primer: error` line (or null) and the exit code
 * the command set; the runner's own exit code is kept.
 */
export async function primerInProcess(args: string[]): Promise<{ out: string[]; err: string[]; error: string | null; exitCode: number }> {
  const logs: string[] = [];
  const errors: string[] = [];
  const [log, error, code] = [console.log, console.error, process.exitCode];
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  let exitCode = 0;
  process.exitCode = undefined; // the test runner sets 1 after a failed test
  try {
    await exitOverrideAll(createProgram()).parseAsync(['node', 'primer', ...args]);
  } finally {
    [console.log, console.error] = [log, error];
    exitCode = Number(process.exitCode ?? 0);
    process.exitCode = code;
  }
  return { out: logs, err: errors, error: errors.find((e) => e.startsWith('primer: error')) ?? null, exitCode };
}

/** Stdout of `primer ARGS`; throws its `primer: error` line. */
export async function runPrimer(args: string[]): Promise<string> {
  const r = await primerInProcess(args);
  if (r.error) throw new Error(r.error);
  return r.out.join('\n');
}
