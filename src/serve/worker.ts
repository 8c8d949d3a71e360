/**
 * A server worker thread: loads every served model once, then runs one job at a time. Completion jobs
 * stream `event` messages token by token and yield to the event loop between tokens, so a `cancel`
 * message (client gone, timeout) stops the decode loop promptly.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setNumThreads } from '../backend/index.ts';
import {
  RequestError, loadServeModel, runAttention, runClassify, runCompletion, runEmbeddings, runFillMask,
  type CompletionJob, type LoadedServeModel, type ModelInfo,
} from './engine.ts';

export type JobRequest =
  | { type: 'complete'; model: string; job: CompletionJob }
  | { type: 'fill-mask'; model: string; text: string; topK: number }
  | { type: 'classify'; model: string; texts: string[] }
  | { type: 'embed'; model: string; texts: string[] }
  | { type: 'attention'; model: string; text: string };

export type ToWorker = { id: number; request: JobRequest } | { cancel: number };
export type FromWorker =
  | { ready: true }
  | { fatal: string }
  | { id: number; event: unknown }
  | { id: number; result: unknown }
  | { id: number; error: string; status: number };

interface WorkerInit {
  primerServeWorker: true;
  models: ModelInfo[];
  threads?: number;
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort!;
  if (init.threads) setNumThreads(init.threads);
  let models: Map<string, LoadedServeModel>;
  try {
    models = new Map(init.models.map((info) => [info.id, loadServeModel(info)]));
  } catch (e) {
    port.postMessage({ fatal: (e as Error).message } satisfies FromWorker);
    return;
  }
  const cancelled = new Map<number, AbortController>();
  const queue: Array<{ id: number; request: JobRequest }> = [];
  let busy = false;

  const run = async (id: number, request: JobRequest): Promise<unknown> => {
    const m = models.get(request.model);
    if (!m) throw new RequestError(`unknown model "${request.model}"`, 404);
    switch (request.type) {
      case 'complete': {
        const ctrl = new AbortController();
        cancelled.set(id, ctrl);
        const it = runCompletion(m, request.job, ctrl.signal);
        for (;;) {
          const r = await it.next();
          if (r.done) return r.value;
          port.postMessage({ id, event: r.value } satisfies FromWorker);
        }
      }
      case 'fill-mask': return runFillMask(m, request.text, request.topK);
      case 'classify': return runClassify(m, request.texts);
      case 'embed': return runEmbeddings(m, request.texts);
      case 'attention': return runAttention(m, request.text);
    }
  };

  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (queue.length) {
      const { id, request } = queue.shift()!;
      try {
        const result = await run(id, request);
        port.postMessage({ id, result } satisfies FromWorker);
      } catch (e) {
        const status = e instanceof RequestError ? e.status : 500;
        port.postMessage({ id, error: (e as Error).message, status } satisfies FromWorker);
      } finally {
        cancelled.delete(id);
      }
    }
    busy = false;
  };

  port.on('message', (msg: ToWorker) => {
    if ('cancel' in msg) {
      cancelled.get(msg.cancel)?.abort();
      return;
    }
    queue.push(msg);
    void pump();
  });
  port.postMessage({ ready: true } satisfies FromWorker);
}

if (parentPort && (workerData as Partial<WorkerInit> | undefined)?.primerServeWorker) void main();
