/**
 * A server worker thread: loads every served model once, then hands jobs to its Scheduler, which
 * decodes all running completions in one continuous batch and yields to the event loop between
 * steps, so new jobs join promptly and a `cancel` message (client gone, timeout) takes effect at once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setNumThreads } from '../backend/index.ts';
import { loadServeModel, type LoadedServeModel, type ModelInfo } from './engine.ts';
import { Scheduler, type JobReply, type JobRequest } from './scheduler.ts';

export type { JobRequest } from './scheduler.ts';

export type ToWorker = { id: number; request: JobRequest } | { cancel: number };
export type FromWorker = { ready: true } | { fatal: string } | JobReply;

interface WorkerInit {
  primerServeWorker: true;
  models: ModelInfo[];
  threads?: number;
}

function main(): void {
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
  const scheduler = new Scheduler(models, (msg) => port.postMessage(msg satisfies FromWorker));
  port.on('message', (msg: ToWorker) => {
    if ('cancel' in msg) scheduler.cancel(msg.cancel);
    else scheduler.submit(msg.id, msg.request);
  });
  port.postMessage({ ready: true } satisfies FromWorker);
}

if (parentPort && (workerData as Partial<WorkerInit> | undefined)?.primerServeWorker) main();
