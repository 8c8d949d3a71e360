/** Argument parsers and error handling shared by the CLI commands. */
import { InvalidArgumentError } from 'commander';
import { PrimerError } from '../io/errors.ts';

export function intArg(min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

export function floatArg(min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number${min > -Infinity ? ` ≥ ${min}` : ''}${max < Infinity ? ` ≤ ${max}` : ''}, got "${value}"`);
    }
    return n;
  };
}

export function choiceArg<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/**
 * Runs a command action: user-facing failures (bad input files, corrupt checkpoints, invalid
 * options) print one clear line and exit 1; anything else is a bug and keeps its stack trace.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (e) {
      const err = e as Error;
      const userError = err instanceof PrimerError || err instanceof RangeError || err.name === 'TokenizerFormatError'
        || /^(no |the |--|\S+: )/.test(err.message ?? '');
      console.error(`primer: error: ${userError ? err.message : err.stack ?? String(err)}`);
      process.exitCode = 1;
    }
  };
}
