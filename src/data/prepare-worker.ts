/**
 * The CPU-heavy half of `primer data prepare`, run on worker threads: split pieces of documents into
 * sentences and encode each sentence (encodeToIds from tokenizers/parallel.ts). The workers are
 * long-lived (one tokenizer build each), fed batches of pieces, and answer with one transferred buffer.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Tokenizer } from '../tokenizers/types.ts';
import { encodeToIds } from '../tokenizers/parallel.ts';
import { sentenceBoundaries } from './sentences.ts';

/** Encoded pieces: piece k owns ids[tokenEnds[k-1], tokenEnds[k]) and segments [segmentCounts[k-1], segmentCounts[k]). */
export interface EncodedPieces {
  ids: Int32Array;
  tokenEnds: Int32Array;
  /** Token end of each segment (sentence), relative to its piece. */
  segmentEnds: Int32Array;
  segmentCounts: Int32Array;
}

/** Sentences of each piece, encoded without special tokens; empty sentences are left out. */
export function encodePieces(tokenizer: Tokenizer, pieces: readonly string[]): EncodedPieces {
  const parts: Int32Array[] = [];
  const segmentEnds: number[] = [];
  const tokenEnds = new Int32Array(pieces.length);
  const segmentCounts = new Int32Array(pieces.length);
  let total = 0;
  pieces.forEach((text, k) => {
    let start = 0;
    let inPiece = 0;
    for (const cut of [...sentenceBoundaries(text), text.length]) {
      if (cut <= start) continue;
      const ids = encodeToIds(tokenizer, text.slice(start, cut), false);
      start = cut;
      if (ids.length === 0) continue;
      parts.push(ids);
      inPiece += ids.length;
      segmentEnds.push(inPiece);
    }
    total += inPiece;
    tokenEnds[k] = total;
    segmentCounts[k] = segmentEnds.length;
  });
  const ids = new Int32Array(total);
  let n = 0;
  for (const p of parts) {
    ids.set(p, n);
    n += p.length;
  }
  return { ids, tokenEnds, segmentEnds: Int32Array.from(segmentEnds), segmentCounts };
}

interface WorkerInit {
  primerPrepareWorker: true;
  json: unknown;
  roles: Tokenizer['specialTokens'];
}

interface Job {
  id: number;
  pieces: string[];
}

type JobResult = { id: number; result: EncodedPieces } | { id: number; error: string };

/** A pool of long-lived encoding workers; results are returned per job, in any order. */
export class EncodePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<{ job: Job; resolve: (r: EncodedPieces) => void; reject: (e: Error) => void }> = [];
  private readonly pending = new Map<number, { resolve: (r: EncodedPieces) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;
  private closing = false;

  constructor(tokenizer: Tokenizer, threads: number) {
    const init: WorkerInit = { primerPrepareWorker: true, json: tokenizer.toJSON(), roles: tokenizer.specialTokens };
    const self = import.meta.url;
    // Node 20 workers ignore the parent's --import tsx: register it inside when this file is TypeScript.
    const register = self.endsWith('.ts') ? `(await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();` : '';
    const code = `(async () => { ${register} await import(${JSON.stringify(self)}); })().catch((e) => { throw e; });`;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(code, { eval: true, workerData: init, execArgv: [] });
      w.on('message', (m: JobResult) => this.finish(w, m));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (c) => c !== 0 && this.fail(new Error(`prepare worker exited with code ${c}`)));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  encode(pieces: string[]): Promise<EncodedPieces> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ job: { id: this.nextId++, pieces }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const w = this.idle.pop()!;
      const { job, resolve, reject } = this.waiting.shift()!;
      this.pending.set(job.id, { resolve, reject });
      w.postMessage(job);
    }
  }

  private finish(w: Worker, m: JobResult): void {
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    this.idle.push(w);
    if ('error' in m) p?.reject(new Error(`prepare worker: ${m.error}`));
    else p?.resolve(m.result);
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.closing) return;
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    for (const q of this.waiting) q.reject(e);
    this.pending.clear();
    this.waiting.length = 0;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function workerMain(init: WorkerInit): Promise<void> {
  const { tokenizerFromJSON } = await import('../tokenizers/index.ts');
  const tokenizer = tokenizerFromJSON(init.json, init.roles);
  parentPort!.on('message', (job: Job) => {
    try {
      const result = encodePieces(tokenizer, job.pieces);
      parentPort!.postMessage({ id: job.id, result } satisfies JobResult, [result.ids.buffer, result.tokenEnds.buffer, result.segmentEnds.buffer, result.segmentCounts.buffer] as ArrayBuffer[]);
    } catch (e) {
      parentPort!.postMessage({ id: job.id, error: (e as Error).stack ?? String(e) } satisfies JobResult);
    }
  });
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.primerPrepareWorker === true) {
  void workerMain(workerData as WorkerInit);
}
