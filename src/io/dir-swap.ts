/**
 * Replacing several files of a directory as one (a model: config.json, model.safetensors, tokenizer
 * files). Each file's own atomic write is not enough: a kill between two of them would leave one
 * model's config beside another model's weights. The new files are written into a staging folder
 * inside the directory (same filesystem, so the renames are atomic), a marker written last commits
 * them, then each is renamed over its old copy. Whoever opens the directory next rolls a committed
 * staging forward and discards an uncommitted one, so readers only ever see all old or all new files.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirectorySync, writeFileAtomic, withPath } from './atomic.ts';
import { PrimerError } from './errors.ts';

export const STAGING_DIR = '.primer-staging';
const COMMITTED = '.committed';

/**
 * Finishes or discards a replacement cut short by a kill; a no-op without a staging folder.
 * Returns what it did (a read-only directory with a staging folder is reported, not guessed at).
 */
export function completeStagedFiles(dir: string): 'none' | 'completed' | 'discarded' {
  const staging = join(dir, STAGING_DIR);
  if (!existsSync(staging)) return 'none';
  const committed = existsSync(join(staging, COMMITTED));
  try {
    if (committed) {
      for (const name of readdirSync(staging)) if (name !== COMMITTED) renameSync(join(staging, name), join(dir, name));
      fsyncDirectorySync(dir);
    }
    rmSync(staging, { recursive: true, force: true });
  } catch (e) {
    throw new PrimerError('UNFINISHED_SAVE', `${dir} holds a save that was cut short (${STAGING_DIR}, ${committed ? 'complete' : 'incomplete'}) and it could not be `
      + `${committed ? 'finished' : 'discarded'}: ${(e as Error).message}. Open the directory once with write access, or delete ${join(dir, STAGING_DIR)} `
      + `to keep the ${committed ? 'previous' : 'current'} files`, { cause: e });
  }
  return committed ? 'completed' : 'discarded';
}

/**
 * Writes files with `write(staging)` (plain files only, no subfolders) and then replaces their
 * namesakes in `dir` as one; other files of `dir` are left alone. `durable`: the files were fsynced
 * by `write`, so the commit marker and the directory are fsynced too (power loss, not only a kill).
 */
export function replaceFilesTogether(dir: string, write: (staging: string) => void, o: { durable?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  completeStagedFiles(dir);
  const staging = join(dir, STAGING_DIR);
  mkdirSync(staging);
  try {
    write(staging);
    for (const name of readdirSync(staging)) {
      if (!statSync(join(staging, name)).isFile()) throw new TypeError(`replaceFilesTogether: ${name} is not a plain file`);
    }
    writeFileAtomic(join(staging, COMMITTED), '', { durable: o.durable ?? true });
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw withPath(dir, e);
  }
  completeStagedFiles(dir);
}
