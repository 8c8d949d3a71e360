/**
 * Replacing several files of a directory as one (a model: config.json, model.safetensors, tokenizer
 * files; an export, with onnx/model.onnx). Each file's own atomic write is not enough: a kill between
 * two of them would leave one model's config beside another model's weights. The new files are
 * written into a staging folder inside the directory (same filesystem, so the renames are atomic), a
 * marker written last commits them together with the list of old files they make stale, then each
 * is renamed over its old copy and the stale ones are removed. Whoever opens the directory next rolls
 * a committed staging forward and discards an uncommitted one, so after a crash readers see all old
 * or all new files.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fsyncDirectorySync, writeFileAtomic, withPath } from './atomic.ts';
import { PrimerError } from './errors.ts';

export const STAGING_DIR = '.primer-staging';
const COMMITTED = '.committed';

/** Files under `root`, as relative paths with '/' separators. */
function filesUnder(root: string, dir = root): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(root, p) : [relative(root, p).split(sep).join('/')];
  });
}

/** Removes dir and its parents up to (not including) root while they are empty. */
function removeEmptyDirs(root: string, dir: string): void {
  while (dir !== root && dir.startsWith(root) && existsSync(dir) && readdirSync(dir).length === 0) {
    rmdirSync(dir);
    dir = dirname(dir);
  }
}

/**
 * Finishes or discards a replacement cut short by a kill; a no-op without a staging folder.
 * Returns what it did (a read-only directory with a staging folder is reported, not guessed at).
 */
export function completeStagedFiles(dir: string): 'none' | 'completed' | 'discarded' {
  const staging = join(dir, STAGING_DIR);
  if (!existsSync(staging)) return 'none';
  const marker = join(staging, COMMITTED);
  const committed = existsSync(marker);
  try {
    if (committed) {
      const { remove } = JSON.parse(readFileSync(marker, 'utf8')) as { remove: string[] };
      for (const f of filesUnder(staging)) {
        if (f === COMMITTED) continue;
        mkdirSync(dirname(join(dir, f)), { recursive: true });
        renameSync(join(staging, f), join(dir, f));
      }
      for (const f of remove) {
        rmSync(join(dir, f), { force: true });
        removeEmptyDirs(dir, dirname(join(dir, f)));
      }
      fsyncDirectorySync(dir);
    }
    rmSync(staging, { recursive: true, force: true });
  } catch (e) {
    throw new PrimerError('UNFINISHED_SAVE', `${dir} holds a save that was cut short (${STAGING_DIR}, ${committed ? 'complete' : 'incomplete'}) and it could not be `
      + `${committed ? 'finished' : 'discarded'}: ${(e as Error).message}. Open the directory once with write access, or delete ${staging} `
      + `to keep the ${committed ? 'previous' : 'current'} files`, { cause: e });
  }
  return committed ? 'completed' : 'discarded';
}

export interface ReplaceFilesOptions {
  /** The files were fsynced by `write`: fsync the commit marker and the directory too (power loss, not only a kill). */
  durable?: boolean;
  /** Files of `dir` (relative paths) that the new ones make stale, given what `write` wrote: removed in the same commit. */
  stale?: (written: readonly string[]) => string[];
}

/**
 * Writes files with `write(staging)` (subfolders allowed) and then replaces their namesakes in `dir`
 * as one, removing `stale` files; other files of `dir` are left alone. A `dir` that did not exist is
 * removed again when `write` fails. Returns what `write` returned.
 */
export function replaceFilesTogether<T>(dir: string, write: (staging: string) => T, o: ReplaceFilesOptions = {}): T {
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  completeStagedFiles(dir);
  const staging = join(dir, STAGING_DIR);
  mkdirSync(staging);
  let result: T;
  try {
    result = write(staging);
    const remove = (o.stale?.(filesUnder(staging)) ?? []).filter((f) => !existsSync(join(staging, f)));
    writeFileAtomic(join(staging, COMMITTED), JSON.stringify({ remove }), { durable: o.durable ?? true });
  } catch (e) {
    rmSync(created ? dir : staging, { recursive: true, force: true });
    throw withPath(dir, e);
  }
  completeStagedFiles(dir);
  return result;
}
