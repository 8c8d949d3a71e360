/**
 * Worker threads for inference with a bounded wait queue. Each worker holds up to `parallel` jobs at
 * once (its completions decode together in one continuous batch, see scheduler.ts); jobs wait in FIFO
 * order for a free slot, and when `maxQueue` jobs already wait, submit() refuses with a QueueFullError
 * (HTTP 429) instead of letting latency and memory grow without bound.
 */
import { Worker } from 'node:worker_threads';
import type { FromWorker, JobRequest, ToWorker } from './worker.ts';
import type { ModelInfo } from './engine.ts';

export class QueueFullError extends Error {
  constructor(limit: number) {
    super(`server busy: ${limit} requests are already waiting; retry later`);
  }
}

export class JobError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export interface PoolOptions {
  workers: number;
  maxQueue: number;
  /** Jobs one worker holds at once (decode batch slots, like llama.cpp's --parallel). Default 8. */
  parallel?: number;
  /** OpenMP threads per worker (default: the native default, all cores). */
  threads?: number;
}

interface Pending {
  id: number;
  request: JobRequest;
  onEvent?: (event: unknown) => void;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  worker?: Slot;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Pending>;
}

/** Node 20 workers ignore the parent's `--import tsx`: a TypeScript worker registers tsx itself. */
function startWorker(data: unknown): Worker {
  // From the checkout this module is worker.ts's TypeScript sibling; from the package's dist/, worker.js's.
  const file = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url).href;
  const register = file.endsWith('.ts') ? `(await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();` : '';
  const code = `(async () => { ${register} await import(${JSON.stringify(file)}); })().catch((e) => { throw e; });`;
  return new Worker(code, { eval: true, workerData: data, execArgv: [] });
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Pending[] = [];
  private nextId = 1;
  private closing = false;

  /** Workers replaced after a crash (for /health and tests). */
  restarts = 0;

  private constructor(private readonly o: PoolOptions, private readonly workerData: unknown) {}

  /** Starts the workers and waits until each has loaded the models (rejects with the load error). */
  static async start(models: ModelInfo[], o: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(o, { primerServeWorker: true, models, threads: o.threads });
    await Promise.all(Array.from({ length: Math.max(1, o.workers) }, () => pool.addWorker())).catch(async (e) => {
      await pool.close();
      throw e;
    });
    return pool;
  }

  private addWorker(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const worker = startWorker(this.workerData);
      const slot: Slot = { worker, jobs: new Map() };
      worker.once('message', (msg: FromWorker) => {
        if ('ready' in msg) {
          worker.off('error', reject);
          worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
          worker.on('error', (e) => this.onCrash(slot, e));
          worker.on('exit', (code) => { if (!this.closing) this.onCrash(slot, new Error(`worker exited with code ${code}`)); });
          this.slots.push(slot);
          this.drain();
          resolve();
        } else if ('fatal' in msg) {
          reject(new Error(msg.fatal));
          void worker.terminate();
        }
      });
      worker.once('error', reject);
    });
  }

  get queued(): number {
    return this.waiting.length;
  }
  get busyWorkers(): number {
    return this.slots.filter((s) => s.jobs.size > 0).length;
  }
  /** Sequences being decoded now (prompts × choices of the dispatched completion jobs). */
  get sequences(): number {
    let n = 0;
    for (const s of this.slots) {
      for (const j of s.jobs.values()) if (j.request.type === 'complete') n += j.request.job.prompts.length * (j.request.job.n ?? 1);
    }
    return n;
  }
  private get parallel(): number {
    return Math.max(1, this.o.parallel ?? 8);
  }
  /** The least loaded worker with a free slot. */
  private freeSlot(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (s.jobs.size < this.parallel && (!best || s.jobs.size < best.jobs.size)) best = s;
    return best;
  }
  private drain(): void {
    for (let slot = this.freeSlot(); slot && this.waiting.length; slot = this.freeSlot()) this.dispatch(slot, this.waiting.shift()!);
  }
  get size(): number {
    return this.slots.length;
  }

  /** Runs a job; `onEvent` receives streamed events. Throws QueueFullError synchronously when full. */
  submit(request: JobRequest, onEvent?: (event: unknown) => void): { id: number; done: Promise<unknown> } {
    if (this.closing) throw new JobError('server is shutting down', 503);
    const free = this.freeSlot();
    if (!free && this.waiting.length >= this.o.maxQueue) throw new QueueFullError(this.o.maxQueue);
    const id = this.nextId++;
    let pending!: Pending;
    const done = new Promise<unknown>((resolve, reject) => { pending = { id, request, onEvent, resolve, reject }; });
    if (free) this.dispatch(free, pending);
    else this.waiting.push(pending);
    return { id, done };
  }

  /** Stops a job: dropped if still waiting, else the worker is told to abandon it. */
  cancel(id: number): void {
    const i = this.waiting.findIndex((p) => p.id === id);
    if (i >= 0) {
      const [p] = this.waiting.splice(i, 1);
      p!.reject(new JobError('cancelled', 499));
      return;
    }
    const slot = this.slots.find((s) => s.jobs.has(id));
    slot?.worker.postMessage({ cancel: id } satisfies ToWorker);
  }

  private dispatch(slot: Slot, p: Pending): void {
    slot.jobs.set(p.id, p);
    p.worker = slot;
    slot.worker.postMessage({ id: p.id, request: p.request } satisfies ToWorker);
  }

  private onMessage(slot: Slot, msg: FromWorker): void {
    if (!('id' in msg)) return;
    const job = slot.jobs.get(msg.id);
    if (!job) return;
    if ('event' in msg) {
      job.onEvent?.(msg.event);
      return;
    }
    slot.jobs.delete(msg.id);
    if ('error' in msg) job.reject(new JobError(msg.error, msg.status));
    else job.resolve(msg.result);
    this.drain();
  }

  /** A dead worker fails its job (500) and is replaced, so the server keeps serving. */
  private onCrash(slot: Slot, e: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return; // 'error' and 'exit' both report the same death
    this.slots.splice(i, 1);
    for (const job of slot.jobs.values()) job.reject(new JobError(`inference worker failed: ${e.message}`, 500));
    slot.jobs.clear();
    void slot.worker.terminate();
    if (this.closing) return;
    this.restarts++;
    this.addWorker().catch((err: Error) => process.stderr.write(`primer serve: cannot restart a worker: ${err.message}\n`));
  }

  /** Test hook: kills one worker as a crash would. */
  crashOneWorker(): void {
    void this.slots[0]?.worker.terminate();
  }

  /** Waits for running and queued jobs to finish (up to graceMs), then stops the workers. */
  close(graceMs = 10_000): Promise<void> {
    return (this.closed ??= this.shutDown(graceMs));
  }
  private closed: Promise<void> | null = null;

  private async shutDown(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while ((this.waiting.length || this.slots.some((s) => s.jobs.size > 0)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const p of this.waiting.splice(0)) p.reject(new JobError('server is shutting down', 503));
    // Past the grace period running jobs are cut: their streams end with an error event.
    for (const s of this.slots) {
      for (const p of s.jobs.values()) p.reject(new JobError('server is shutting down: the request was cut after the grace period', 503));
      s.jobs.clear();
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
