/**
 * Checked reads of tokenizer files (tokenizer.json, vocab.json, …). Every failure names the file and the
 * field, e.g. `tokenizer.json: model.merges[12] must be "a b" or ["a","b"]`, so a user with a broken or
 * unsupported file knows exactly what to fix instead of getting a TypeError from deep inside a model.
 */
import { PrimerError } from '../io/errors.ts';

/** A broken or unsupported tokenizer file: bad input, so a PrimerError (code 'TOKENIZER_FORMAT') like the other file errors. */
export class TokenizerFormatError extends PrimerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TOKENIZER_FORMAT', message, options);
  }
}

/** Throws TokenizerFormatError `<file>: <field> <problem>`. */
export function formatError(field: string, problem: string, file = 'tokenizer.json'): never {
  throw new TokenizerFormatError(`${file}: ${field} ${problem}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readObject(value: unknown, field: string, file?: string): Record<string, unknown> {
  if (!isObject(value)) formatError(field, `must be an object, got ${describe(value)}`, file);
  return value;
}

export function readArray(value: unknown, field: string, file?: string): unknown[] {
  if (!Array.isArray(value)) formatError(field, `must be an array, got ${describe(value)}`, file);
  return value;
}

export function readString(value: unknown, field: string, file?: string): string {
  if (typeof value !== 'string') formatError(field, `must be a string, got ${describe(value)}`, file);
  return value;
}

/** A string, or undefined when the field is absent or null (HF writes null for "not set"). */
export function readOptionalString(value: unknown, field: string, file?: string): string | undefined {
  return value === undefined || value === null ? undefined : readString(value, field, file);
}

export function readBool(value: unknown, field: string, fallback: boolean, file?: string): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') formatError(field, `must be true or false, got ${describe(value)}`, file);
  return value;
}

/** A non-negative integer id (or count). */
export function readIndex(value: unknown, field: string, file?: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    formatError(field, `must be a non-negative integer, got ${describe(value)}`, file);
  }
  return value;
}
