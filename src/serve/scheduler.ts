/**
 * A worker's job scheduler with continuous batching. All completion jobs of a model decode in one
 * DecodeBatch (src/infer/batch.ts): a new job's prompts are pre-filled as soon as it arrives and join
 * the next step; each step samples every running sequence, sends the text pieces, then runs one
 * batched forward; finished or cancelled sequences leave without stalling the others. Short jobs
 * (fill-mask, classify, embeddings, attention) run between two steps. GPT-2 and Llama-family models
 * batch alike: DecodeBatch runs either through its forward's per-row KV caches (for a Llama,
 * llama-cache.ts's grouped-query attention), so a sequence's tokens do not depend on its batch-mates.
 */
import { DecodeBatch, type Sequence } from '../infer/batch.ts';
import { decoderContext } from '../infer/kv-cache.ts';
import { TextStream, encodePrompt, textStopIds, type Completion, type TextEvent } from '../infer/decode.ts';
import {
  RequestError, causalModel, runAttention, runClassify, runEmbeddings, runFillMask, type CompletionJob, type LoadedServeModel,
} from './engine.ts';

export type JobRequest =
  | { type: 'complete'; model: string; job: CompletionJob }
  | { type: 'fill-mask'; model: string; text: string; topK: number }
  | { type: 'classify'; model: string; texts: string[] }
  | { type: 'embed'; model: string; texts: string[] }
  | { type: 'attention'; model: string; text: string };

export type JobReply =
  | { id: number; event: TextEvent }
  | { id: number; result: unknown }
  | { id: number; error: string; status: number };

/**
 * A cancelled completion job's answer: what each sequence had decoded by then. The client is gone, but
 * those tokens were computed and count in the server's metrics.
 */
export interface CancelledJob {
  cancelled: Completion[];
}

interface RunningJob {
  id: number;
  batch: DecodeBatch;
  sequences: Sequence[];
  streams: TextStream[];
}

export class Scheduler {
  private readonly batches = new Map<string, DecodeBatch>();
  private readonly jobs = new Map<number, RunningJob>();
  private readonly owner = new Map<Sequence, { job: RunningJob; index: number }>();
  private ticking = false;

  constructor(private readonly models: Map<string, LoadedServeModel>, private readonly reply: (msg: JobReply) => void) {}

  /** Sequences decoding now, over all models. */
  get running(): number {
    let n = 0;
    for (const b of this.batches.values()) n += b.size;
    return n;
  }

  submit(id: number, request: JobRequest): void {
    try {
      const m = this.models.get(request.model);
      if (!m) throw new RequestError(`unknown model "${request.model}"`, 404);
      if (request.type === 'complete') {
        this.admit(id, m, request.job);
        return;
      }
      this.reply({ id, result: runShort(m, request) });
    } catch (e) {
      this.reply({ id, error: (e as Error).message, status: e instanceof RequestError ? e.status : 500 });
    }
  }

  /** Client gone or deadline passed: the job's sequences leave the batch; it answers a CancelledJob. */
  cancel(id: number): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.release(job);
    this.reply({ id, result: { cancelled: job.streams.map((st) => st.result) } satisfies CancelledJob });
  }

  private admit(id: number, served: LoadedServeModel, job: CompletionJob): void {
    const m = causalModel(served);
    const n = decoderContext(m.model);
    const prompts = job.prompts.map((p, i) => {
      const ids = encodePrompt(m.tokenizer, p);
      if (ids.length > n) throw new RequestError(`prompt ${i} has ${ids.length} tokens, more than the model's context of ${n} tokens`);
      return ids;
    });
    let batch = this.batches.get(m.info.id);
    if (!batch) this.batches.set(m.info.id, (batch = new DecodeBatch(m.model)));
    const choices = job.n ?? 1;
    // The tokenizer's end-of-text plus generation_config.json's eos ids (transformers stops on all of them).
    const stopIds = [...new Set([...textStopIds(m.tokenizer, job), ...(m.info.stopTokenIds ?? [])])];
    const running: RunningJob = { id, batch, sequences: [], streams: [] };
    const seed = job.seed ?? 0;
    try {
      for (const ids of prompts) {
        for (let c = 0; c < choices; c++) {
          // Choice c of a prompt draws with seed + c, so n > 1 gives different samples.
          const seq = batch.add(ids, { ...job, seed: (seed + c) % 2 ** 32, stopIds });
          running.streams.push(new TextStream(m.tokenizer, job.stop ?? [], ids.length));
          running.sequences.push(seq);
          this.owner.set(seq, { job: running, index: running.sequences.length - 1 });
        }
      }
    } catch (e) {
      this.release(running);
      throw e instanceof RangeError ? new RequestError(e.message) : e;
    }
    this.jobs.set(id, running);
    // max_tokens 0: nothing to decode, the sequences never entered the batch.
    if (running.sequences.every((s) => s.done)) {
      running.streams.forEach((st, i) => st.push(-1, running.sequences[i]!.finishReason ?? 'length'));
      this.finish(running, running.streams.map((st) => st.result));
      return;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.ticking) return;
    this.ticking = true;
    setImmediate(() => this.tick());
  }

  /** One decoding step of every model's batch, then back to the event loop (new jobs, cancels). */
  private tick(): void {
    this.ticking = false;
    for (const batch of this.batches.values()) {
      if (batch.size === 0) continue;
      try {
        for (const step of batch.sample()) {
          const own = this.owner.get(step.sequence);
          if (!own) continue;
          const stream = own.job.streams[own.index]!;
          const ev = stream.push(step.id, step.finishReason);
          if (ev) this.reply({ id: own.job.id, event: { index: own.index, ...ev } });
          if (stream.closed) {
            batch.remove(step.sequence);
            if (own.job.streams.every((st) => st.closed)) this.finish(own.job, own.job.streams.map((st) => st.result));
          }
        }
        batch.advance();
        for (const seq of batch.failed.splice(0)) {
          const own = this.owner.get(seq);
          if (own) this.fail(own.job, seq.error?.message ?? 'generation failed', 400);
        }
      } catch (e) {
        // A fault in the batch fails every job in it (the others models' batches go on).
        for (const job of [...this.jobs.values()]) if (job.batch === batch) this.fail(job, `generation failed: ${(e as Error).message}`, 500);
      }
    }
    if (this.running > 0) this.schedule();
  }

  private release(job: RunningJob): void {
    for (const seq of job.sequences) {
      job.batch.remove(seq);
      this.owner.delete(seq);
    }
    this.jobs.delete(job.id);
  }

  private finish(job: RunningJob, result: Completion[]): void {
    this.release(job);
    this.reply({ id: job.id, result });
  }

  private fail(job: RunningJob, message: string, status: number): void {
    this.release(job);
    this.reply({ id: job.id, error: message, status });
  }
}

function runShort(m: LoadedServeModel, request: Exclude<JobRequest, { type: 'complete' }>): unknown {
  switch (request.type) {
    case 'fill-mask': return runFillMask(m, request.text, request.topK);
    case 'classify': return runClassify(m, request.texts);
    case 'embed': return runEmbeddings(m, request.texts);
    case 'attention': return runAttention(m, request.text);
  }
}
