/**
 * Encoding many texts on worker threads (corpus preparation). Each worker rebuilds the tokenizer from
 * its tokenizer.json, takes batches of ~1 MB of text and sends back Int32Arrays (transferred, not
 * copied); results are stored by input index, so the output order is the input order whatever the
 * scheduling. `encodeLongText` cuts one huge text at points where pre-tokenization cannot change and
 * concatenates the pieces' ids, which equals encoding it whole.
 *
 * Workers run this same file (see startWorker for how they load TypeScript).
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Tokenizer } from './types.ts';
import { safeCutAfter } from './bytelevel.ts';

type Roles = Tokenizer['specialTokens'];

interface WorkerInit {
  primerTokenizerWorker: true;
  json: unknown;
  roles: Roles;
}

interface Job {
  id: number;
  texts: string[];
  addSpecialTokens: boolean;
}

/** All ids of a batch in one buffer (one transfer instead of one per text): text k is ids[ends[k-1], ends[k]). */
interface JobResult {
  id: number;
  ids?: Int32Array;
  ends?: Int32Array;
  error?: string;
}

/**
 * Ids of one text, with the post-processor's specials when asked: the tokenizer's `encodeIds` fast path
 * when it has one and the post-processor adds nothing, else encode().ids.
 */
export function encodeToIds(tokenizer: Tokenizer, text: string, addSpecialTokens = true): Int32Array {
  const fast = (tokenizer as Partial<{ encodeIds(t: string): Int32Array }>).encodeIds;
  const pp = (tokenizer as Partial<{ postProcessor: { addedTokens(pair: boolean): number } | null }>).postProcessor;
  if (typeof fast === 'function' && (!addSpecialTokens || !pp || pp.addedTokens(false) === 0)) return fast.call(tokenizer, text);
  return Int32Array.from(tokenizer.encode(text, null, { addSpecialTokens }).ids);
}

export interface ParallelEncodeOptions {
  /** Worker count; default: the number of cores, but no more than the input needs (1 per ~1 MB). */
  threads?: number;
  /** Add the post-processor's special tokens ([CLS] … [SEP]); default true, like encode(). */
  addSpecialTokens?: boolean;
  /** Called as batches complete with (texts done, texts total). */
  onProgress?: (done: number, total: number) => void;
  /** Characters per batch sent to a worker (default 1 MiB). */
  batchChars?: number;
}

/**
 * Worker bootstrap: Node 20 workers ignore the parent's `--import tsx`, so when this file is TypeScript
 * the worker registers tsx itself before importing it.
 */
function startWorker(init: WorkerInit): Worker {
  const self = import.meta.url;
  const register = self.endsWith('.ts') ? `(await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();` : '';
  const code = `(async () => { ${register} await import(${JSON.stringify(self)}); })().catch((e) => { throw e; });`;
  return new Worker(code, { eval: true, workerData: init, execArgv: [] });
}

/** Encodes texts on worker threads; result[i] is the ids of texts[i] (arrays of one batch share a buffer). */
export async function encodeParallel(tokenizer: Tokenizer, texts: readonly string[], options: ParallelEncodeOptions = {}): Promise<Int32Array[]> {
  const add = options.addSpecialTokens ?? true;
  const batchChars = options.batchChars ?? 1 << 20;
  const batches: number[][] = [];
  let current: number[] = [];
  let chars = 0;
  let totalChars = 0;
  texts.forEach((t, i) => {
    current.push(i);
    chars += t.length;
    totalChars += t.length;
    if (chars >= batchChars) {
      batches.push(current);
      current = [];
      chars = 0;
    }
  });
  if (current.length > 0) batches.push(current);
  const results = new Array<Int32Array>(texts.length);
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), batches.length));
  if (threads === 1 && options.threads === undefined && totalChars < batchChars) {
    texts.forEach((t, i) => (results[i] = encodeToIds(tokenizer, t, add)));
    options.onProgress?.(texts.length, texts.length);
    return results;
  }

  const init: WorkerInit = { primerTokenizerWorker: true, json: tokenizer.toJSON(), roles: tokenizer.specialTokens };
  const workers = Array.from({ length: threads }, () => startWorker(init));
  let done = 0;
  let nextBatch = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let active = 0;
      const feed = (w: Worker): void => {
        if (nextBatch >= batches.length) {
          if (active === 0) resolve();
          return;
        }
        const id = nextBatch++;
        active++;
        w.postMessage({ id, texts: batches[id].map((i) => texts[i]), addSpecialTokens: add } satisfies Job);
      };
      for (const w of workers) {
        w.on('message', (r: JobResult) => {
          active--;
          if (r.error !== undefined) return reject(new Error(`encodeParallel worker: ${r.error}`));
          batches[r.id].forEach((textIndex, k) => (results[textIndex] = r.ids!.subarray(k === 0 ? 0 : r.ends![k - 1], r.ends![k])));
          done += batches[r.id].length;
          options.onProgress?.(done, texts.length);
          feed(w);
        });
        w.on('error', reject);
        w.on('exit', (code) => code !== 0 && reject(new Error(`encodeParallel worker exited with code ${code}`)));
      }
      for (const w of workers) feed(w);
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}

/**
 * One long text encoded in parallel: cut into ~pieceChars pieces at safe points (before whitespace that
 * follows a non-space, where neither GPT-2's nor BERT's pre-tokenizer joins across), ids concatenated.
 * Identical to encoding the whole text unless an added token itself contains whitespace across a cut.
 */
export async function encodeLongText(tokenizer: Tokenizer, text: string, options: ParallelEncodeOptions & { pieceChars?: number } = {}): Promise<Int32Array> {
  const pieces: string[] = [];
  const size = options.pieceChars ?? 1 << 20;
  for (let s = 0; s < text.length; ) {
    const e = safeCutAfter(text, s + size);
    pieces.push(text.slice(s, e));
    s = e;
  }
  const parts = await encodeParallel(tokenizer, pieces, { ...options, addSpecialTokens: false, batchChars: size });
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.length;
  }
  return out;
}

async function workerMain(init: WorkerInit): Promise<void> {
  const { tokenizerFromJSON } = await import('./index.ts');
  const tokenizer = tokenizerFromJSON(init.json, init.roles);
  parentPort!.on('message', (job: Job) => {
    try {
      const parts = job.texts.map((t) => encodeToIds(tokenizer, t, job.addSpecialTokens));
      const ends = new Int32Array(parts.length);
      let n = 0;
      parts.forEach((p, k) => (ends[k] = n += p.length));
      const ids = new Int32Array(n);
      parts.forEach((p, k) => ids.set(p, k === 0 ? 0 : ends[k - 1]));
      parentPort!.postMessage({ id: job.id, ids, ends } satisfies JobResult, [ids.buffer, ends.buffer]);
    } catch (e) {
      parentPort!.postMessage({ id: job.id, error: (e as Error).stack ?? String(e) } satisfies JobResult);
    }
  });
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.primerTokenizerWorker === true) {
  void workerMain(workerData as WorkerInit);
}
