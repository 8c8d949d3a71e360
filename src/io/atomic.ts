/**
 * Crash-safe file replacement: readers (and a process restarted after a crash or power loss) see
 * either the complete old file or the complete new one, never a torn mix. The recipe is the POSIX
 * one: write a temp file in the same directory (rename is only atomic within a filesystem), fsync
 * it so its bytes are durable before the name points at them, rename over the target, then fsync
 * the directory so the rename itself is durable.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { PrimerError } from './errors.ts';

export type AtomicData = Uint8Array | string | ReadonlyArray<Uint8Array>;

export interface AtomicWriteOptions {
  /** Permission bits for a new file (default 0o666, less the umask); an existing file keeps its own. */
  mode?: number;
  /** Skip the fsyncs (tests, scratch files): still atomic against concurrent readers, not against power loss. */
  durable?: boolean;
}

/**
 * A file-system error that names the file: Node's own messages for write/fsync failures (ENOSPC,
 * EIO, EDQUOT) carry only the syscall, not the path. `code` keeps the errno code ('ENOSPC', …).
 */
export class FileWriteError extends PrimerError {
  constructor(path: string, cause: unknown) {
    const err = cause as NodeJS.ErrnoException;
    const full = err.code === 'ENOSPC' || err.code === 'EDQUOT';
    super(err.code ?? 'IO', `${path}: could not be written (${err.message})${full ? '; free disk space and retry — the previous file, if any, is unchanged' : ''}`, { cause });
  }
}

/** Rethrows a Node file-system error as a FileWriteError naming `path`; other errors pass unchanged. */
export function withPath(path: string, err: unknown): unknown {
  if (err instanceof PrimerError || !(err instanceof Error) || typeof (err as NodeJS.ErrnoException).code !== 'string') return err;
  return new FileWriteError(path, err);
}

function toChunks(data: AtomicData): ReadonlyArray<Uint8Array> {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  if (data instanceof Uint8Array) return [data];
  if (Array.isArray(data) && data.every((c) => c instanceof Uint8Array)) return data;
  throw new TypeError('writeFileAtomic: data must be a Uint8Array, a string or an array of Uint8Array');
}

/**
 * Writes go through a symlink to its target (replacing the link itself would silently detach it), and
 * the temp name carries pid, thread id and random bytes so concurrent writers never share a temp file.
 */
function plan(path: string): { target: string; temp: string } {
  let target = path;
  try {
    target = fs.realpathSync(path);
  } catch {
    // No such file yet: the path itself is the target.
  }
  const suffix = `${process.pid}.${threadId}.${randomBytes(6).toString('hex')}`;
  return { target, temp: join(dirname(target), `.${basename(target)}.${suffix}.tmp`) };
}

function existingMode(target: string): number | undefined {
  try {
    return fs.statSync(target).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** Some platforms and filesystems refuse to open or fsync a directory; durability is then best-effort. */
export function fsyncDirectorySync(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best-effort, see above
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

export function writeFileAtomic(path: string, data: AtomicData, options: AtomicWriteOptions = {}): void {
  const chunks = toChunks(data);
  const durable = options.durable ?? true;
  const { target, temp } = plan(path);
  const previousMode = existingMode(target);
  const mode = previousMode ?? options.mode ?? 0o666;
  // 'wx' fails if the temp name exists, so we can never clobber another writer's temp file.
  let fd: number;
  try {
    fd = fs.openSync(temp, 'wx', mode);
  } catch (err) {
    throw withPath(target, err);
  }
  try {
    if (previousMode !== undefined) fs.fchmodSync(fd, mode); // open's mode is umask-filtered
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.byteLength) written += fs.writeSync(fd, chunk, written, chunk.byteLength - written);
    }
    if (durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(temp, target);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    try {
      fs.unlinkSync(temp);
    } catch {
      // already renamed or never created
    }
    throw withPath(target, err);
  }
  if (durable) fsyncDirectorySync(dirname(target));
}

/** Same contract as writeFileAtomic, without blocking the event loop (for servers). */
export async function writeFileAtomicAsync(path: string, data: AtomicData, options: AtomicWriteOptions = {}): Promise<void> {
  const chunks = toChunks(data);
  const durable = options.durable ?? true;
  const { target, temp } = plan(path);
  const previousMode = existingMode(target);
  const mode = previousMode ?? options.mode ?? 0o666;
  let handle: fsp.FileHandle | undefined = await fsp.open(temp, 'wx', mode).catch((err) => {
    throw withPath(target, err);
  });
  try {
    if (previousMode !== undefined) await handle.chmod(mode);
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.byteLength) {
        written += (await handle.write(chunk, written, chunk.byteLength - written)).bytesWritten;
      }
    }
    if (durable) await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(temp, target);
  } catch (err) {
    await handle?.close().catch(() => {});
    await fsp.unlink(temp).catch(() => {});
    throw withPath(target, err);
  }
  if (durable) fsyncDirectorySync(dirname(target));
}

function jsonText(obj: unknown, indent: number): string {
  const text = JSON.stringify(obj, null, indent);
  if (text === undefined) throw new TypeError('writeJsonAtomic: value is not JSON-serialisable');
  return text + '\n';
}

/** Pretty-printed (2-space) JSON with a trailing newline, written atomically. */
export function writeJsonAtomic(path: string, obj: unknown, options: AtomicWriteOptions & { indent?: number } = {}): void {
  writeFileAtomic(path, jsonText(obj, options.indent ?? 2), options);
}

export async function writeJsonAtomicAsync(
  path: string,
  obj: unknown,
  options: AtomicWriteOptions & { indent?: number } = {},
): Promise<void> {
  await writeFileAtomicAsync(path, jsonText(obj, options.indent ?? 2), options);
}
