/**
 * The generic training loop, shared by GPT pre-training, BERT pre-training and fine-tuning: it only
 * sees a Module, a `lossFn(batch) → scalar Tensor` and a batch source, so nothing here is GPT-specific.
 *
 * One optimizer step (nanoGPT's loop):
 *   lr = schedule(step)                         linear warmup, then cosine/linear decay to minLr
 *   for a in 1..A:  L_a = lossFn(batch_a);  ∇ += ∇(L_a / A)      gradient accumulation
 *   ‖g‖ = clip(∇, gradClip)                     global-norm clipping
 *   AdamW(θ, ∇, lr); decay only ≥2-D weights    (biases and LayerNorm weights are not decayed)
 * Then, every N steps: evaluate (val loss, perplexity = e^loss) and checkpoint.
 *
 * Exact resume: the state that decides the future — weights, AdamW moments and step, the data
 * sampler's position, every RNG (dropout) — is all in the checkpoint, and nothing else (evaluation,
 * logging) consumes randomness, so stopping at step s and resuming reproduces the uninterrupted run
 * bit for bit.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freemem } from 'node:os';
import type { Module } from '../nn/module.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { autocast, noGrad, withScope } from '../tensor/tensor.ts';
import { scale } from '../tensor/ops.ts';
import { AdamW, clipFactor, gradientNorm, learningRate, type ParamGroup, type ScheduleOptions } from '../tensor/optim.ts';
import type { Rng } from '../util/random.ts';
import { PrimerError } from '../io/errors.ts';
import { pinComputeThreads } from '../backend/index.ts';
import { withPath, writeFileAtomic } from '../io/atomic.ts';
import { readCheckpoint, recoverCheckpoints, restoreCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.ts';
import { createProgress, type ProgressReporter } from './progress.ts';
import { catchStopSignals, type StopSignal } from './signals.ts';

/** Where the trainer draws its batches from; state()/loadState() make a resume exact. */
export interface BatchSource<B> {
  next(): B;
  /** Position in the data (for exact resume). */
  state(): unknown;
  loadState(state: unknown): void;
}

export class TrainingDivergedError extends PrimerError {
  constructor(message: string, readonly step: number, readonly lastCheckpoint: string | null) {
    super('DIVERGED', message);
  }
}

export interface TrainerOptions<B> {
  model: Module;
  /** The scalar loss of one (micro-)batch, with its autograd graph. */
  lossFn: (batch: B) => Tensor;
  data: BatchSource<B>;
  /** Fixed evaluation batches (the same every evaluation). */
  evalData?: readonly B[];
  /** Tokens in a batch, for tokens/s (default: batch.tokens if present, else 0). */
  batchTokens?: (batch: B) => number;
  /** Directory for checkpoints/ and metrics.jsonl. */
  runDir: string;
  /** Total optimizer steps; the LR schedule spans them. */
  steps: number;
  /** Stop (with a checkpoint) after this step even though the schedule goes on; used to split runs. */
  stopAtStep?: number;
  /** Stop (with a checkpoint) after this many seconds of training. */
  maxSeconds?: number;
  lr: number;
  /** Floor of the decay (default lr / 10). */
  minLr?: number;
  warmupSteps?: number;
  decay?: ScheduleOptions['decay'];
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  /** Max global gradient norm (default 1; Infinity disables clipping). */
  gradClip?: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  bf16?: boolean;
  evalEvery?: number;
  checkpointEvery?: number;
  keepCheckpoints?: number;
  /** RNGs whose state must survive a resume (e.g. the model's dropout Rng), by name. */
  rngs?: Record<string, Rng>;
  /** The run's configuration, stored in every checkpoint. */
  run?: Record<string, unknown>;
  /** Writes config.json, tokenizer.json, … into each checkpoint directory. */
  writeExtraFiles?: (dir: string) => void;
  /** A checkpoint (directory, run directory or already-read Checkpoint) to continue from. */
  resumeFrom?: string | Checkpoint;
  /** A progress reporter, or false for silence (default: bar on a TTY, log lines otherwise). */
  progress?: ProgressReporter | false;
  logEvery?: number;
  /** Save a checkpoint and return on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
}

export interface TrainResult {
  status: 'completed' | 'stopped' | 'time-limit' | 'interrupted';
  signal?: StopSignal;
  step: number;
  lastCheckpoint: string | null;
  /** Mean training loss of the last step. */
  trainLoss: number;
  valLoss: number | null;
  bestValLoss: number | null;
  /** Average over the steps of this invocation (excluding the first, which warms up the pool). */
  tokensPerSecond: number;
  seconds: number;
}

export interface MemoryEstimate {
  /** Weights, gradients and AdamW's two moments: 4 fp32 copies of every parameter. */
  stateBytes: number;
  /** Activations kept for the backward pass of one micro-batch. */
  activationBytes: number;
  /** stateBytes + activationBytes + RUNTIME_BYTES. */
  totalBytes: number;
}

/** Node, the native addon, the data and the tokenizer: a fixed allowance on top of the model's own memory. */
export const RUNTIME_BYTES = 256 * 2 ** 20;

/**
 * A simple, deliberately optimistic estimate of the peak memory of one training step in fp32:
 *   state       = 4 bytes × parameters × 4       (weights, gradients, AdamW m and v)
 *   activations = 4 bytes × activationFloatsPerToken × batchSize × seqLength   (one micro-batch)
 *   total       = state + activations + RUNTIME_BYTES
 * Transient buffers of the backward pass are left out, so a run the estimate refuses cannot fit,
 * while one it accepts may still need some headroom.
 */
export function estimateTrainingMemory(o: { parameters: number; activationFloatsPerToken: number; batchSize: number; seqLength: number }): MemoryEstimate {
  const stateBytes = 16 * o.parameters;
  const activationBytes = 4 * o.activationFloatsPerToken * o.batchSize * o.seqLength;
  return { stateBytes, activationBytes, totalBytes: stateBytes + activationBytes + RUNTIME_BYTES };
}

/** Memory this process can still use: os.freemem() (MemAvailable on Linux) plus what it already holds. */
export function availableMemory(): number {
  return freemem() + process.memoryUsage().rss;
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GB`;

/**
 * Refuses (PrimerError OUT_OF_MEMORY) a run whose estimate exceeds the available memory, before
 * anything big is allocated, with the largest micro-batch that fits and the --grad-accum that keeps
 * the same tokens per optimizer step.
 */
export function checkTrainingMemory(
  o: { parameters: number; activationFloatsPerToken: number; batchSize: number; seqLength: number; gradAccum: number },
  available = availableMemory(),
): MemoryEstimate {
  const e = estimateTrainingMemory(o);
  if (e.totalBytes <= available) return e;
  const perExample = e.activationBytes / o.batchSize;
  const fits = Math.floor((available - e.stateBytes - RUNTIME_BYTES) / perExample);
  const advice = fits >= 1
    ? `use --batch-size ${fits} --grad-accum ${Math.ceil((o.batchSize * o.gradAccum) / fits)} (the same ${o.batchSize * o.gradAccum} sequences per step), or a shorter --block-size`
    : 'the model alone does not fit: choose a smaller preset or fewer --layers / --dims';
  throw new PrimerError('OUT_OF_MEMORY', `training would need about ${gb(e.totalBytes)} (weights, gradients and AdamW state ${gb(e.stateBytes)}; `
    + `activations for a batch of ${o.batchSize} × ${o.seqLength} tokens ${gb(e.activationBytes)}) but only ${gb(available)} of memory is available: ${advice}`);
}

/** nanoGPT's grouping: weight decay on ≥2-D tensors (matmul weights, embeddings), none on biases and LayerNorm. */
export function decayGroups(model: Module, weightDecay: number): { groups: ParamGroup[]; names: string[] } {
  const named = model.namedParameters();
  const decay = named.filter(([, p]) => p.ndim >= 2);
  const noDecay = named.filter(([, p]) => p.ndim < 2);
  return {
    groups: [{ params: decay.map(([, p]) => p), weightDecay }, { params: noDecay.map(([, p]) => p), weightDecay: 0 }],
    names: [...decay, ...noDecay].map(([n]) => n),
  };
}

/** Mean loss over fixed batches, without gradients or dropout. */
export function evaluateLoss<B>(model: Module, lossFn: (b: B) => Tensor, batches: readonly B[], bf16 = false): number {
  const wasTraining = model.training;
  model.eval();
  try {
    let total = 0;
    for (const b of batches) total += noGrad(() => autocast(bf16, () => withScope(() => lossFn(b).item())));
    return total / Math.max(1, batches.length);
  } finally {
    model.train(wasTraining);
  }
}

/**
 * On resume from step s, metrics.jsonl keeps only the records of steps ≤ s: the steps after the
 * checkpoint are trained again and would otherwise be logged twice. A line torn by a kill is dropped too.
 */
function trimMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, 'utf8').split('\n').filter((line) => {
    try {
      const rec = JSON.parse(line) as { step?: unknown };
      return typeof rec === 'object' && rec !== null && (typeof rec.step !== 'number' || rec.step <= step);
    } catch {
      return false;
    }
  });
  try {
    writeFileAtomic(path, lines.map((l) => l + '\n').join(''), { durable: false });
  } catch (e) {
    throw withPath(path, e);
  }
}

function batchTokensDefault(b: unknown): number {
  const t = (b as { tokens?: unknown })?.tokens;
  return typeof t === 'number' ? t : 0;
}

export async function train<B>(o: TrainerOptions<B>): Promise<TrainResult> {
  const steps = o.steps;
  if (!Number.isInteger(steps) || steps <= 0) throw new RangeError(`train: steps must be a positive integer, got ${steps}`);
  const accum = o.gradAccum ?? 1;
  if (!Number.isInteger(accum) || accum < 1) throw new RangeError(`train: gradAccum must be a positive integer, got ${accum}`);
  const schedule: ScheduleOptions = {
    maxLr: o.lr, minLr: o.minLr ?? o.lr / 10, warmupSteps: o.warmupSteps ?? 0, totalSteps: steps, decay: o.decay ?? 'cosine',
  };
  const { groups, names } = decayGroups(o.model, o.weightDecay ?? 0.1);
  const optimizer = new AdamW(groups, { lr: o.lr, betas: o.betas ?? [0.9, 0.95], eps: o.eps ?? 1e-8 });
  const params = optimizer.parameters();
  const rngs = o.rngs ?? {};
  const tokensOf = o.batchTokens ?? batchTokensDefault;
  const clip = o.gradClip ?? 1;
  mkdirSync(o.runDir, { recursive: true });
  recoverCheckpoints(o.runDir); // partial saves of a killed process
  const metricsPath = join(o.runDir, 'metrics.jsonl');
  const writeMetrics = (rec: Record<string, unknown>) => {
    try {
      appendFileSync(metricsPath, JSON.stringify(rec) + '\n');
    } catch (e) {
      throw withPath(metricsPath, e);
    }
  };

  let step = 0;
  let tokensSeen = 0;
  let bestValLoss: number | null = null;
  let lastCheckpoint: string | null = null;
  if (o.resumeFrom !== undefined) {
    const ck = typeof o.resumeFrom === 'string' ? readCheckpoint(o.resumeFrom) : o.resumeFrom;
    const unknownRngs = Object.keys(rngs).filter((k) => !ck.state.rngs[k]);
    if (unknownRngs.length) throw new PrimerError('CHECKPOINT', `checkpoint ${ck.dir} has no state for RNG(s) ${unknownRngs.join(', ')}`);
    o.data.loadState(ck.state.data);
    restoreCheckpoint(ck, o.model, optimizer, names);
    for (const [k, r] of Object.entries(rngs)) {
      r.seed = ck.state.rngs[k]!.seed;
      r.counter = ck.state.rngs[k]!.counter;
    }
    step = ck.state.step;
    trimMetrics(metricsPath, step);
    tokensSeen = ck.state.tokensSeen;
    bestValLoss = ck.state.bestValLoss;
    lastCheckpoint = ck.dir;
  }

  const stopAt = Math.min(steps, o.stopAtStep ?? steps);
  const progress = o.progress === false ? null : (o.progress ?? createProgress({ logEvery: o.logEvery }));
  const log = (m: string) => (progress ? progress.log(m) : undefined);

  const save = (): string => {
    lastCheckpoint = saveCheckpoint({
      runDir: o.runDir, model: o.model, optimizer, paramNames: names, keep: o.keepCheckpoints,
      writeExtraFiles: o.writeExtraFiles,
      state: {
        step, totalSteps: steps, tokensSeen, bestValLoss, run: o.run ?? {}, data: o.data.state(),
        rngs: Object.fromEntries(Object.entries(rngs).map(([k, r]) => [k, r.state()])),
      },
    });
    return lastCheckpoint;
  };

  const stops = catchStopSignals(o.handleSignals ?? true, (s) => log(`${s} received: saving a checkpoint after this step (send it again to quit immediately)`));

  let status: TrainResult['status'] = 'completed';
  let trainLoss = NaN;
  let valLoss: number | null = null;
  let savedAt = -1;
  let evaluatedAt = -1;
  const t0 = performance.now();
  let timedSeconds = 0;
  let timedTokens = 0;
  let stepsThisRun = 0;
  const unpin = pinComputeThreads();
  try {
    while (step < stopAt) {
      if (stops.received()) {
        status = 'interrupted';
        break;
      }
      if (o.maxSeconds !== undefined && (performance.now() - t0) / 1000 >= o.maxSeconds) {
        status = 'time-limit';
        break;
      }
      const lr = learningRate(step, schedule);
      optimizer.lr = lr;
      const ts = performance.now();
      let lossSum = 0;
      let tokens = 0;
      for (let a = 0; a < accum; a++) {
        const batch = o.data.next();
        tokens += tokensOf(batch);
        lossSum += autocast(o.bf16 ?? false, () => withScope(() => {
          const loss = o.lossFn(batch);
          (accum > 1 ? scale(loss, 1 / accum) : loss).backward();
          return loss.item();
        }));
      }
      const loss = lossSum / accum;
      const gradNorm = gradientNorm(params);
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        optimizer.zeroGrad();
        const what = !Number.isFinite(loss) ? `the loss is ${loss}` : `the gradient norm is ${gradNorm}`;
        const keep = lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint was written yet';
        throw new TrainingDivergedError(
          `training diverged at step ${step + 1}: ${what} (lr ${lr.toExponential(2)}). Stopped without updating the weights; ${keep}. Try a lower --lr or more warmup.`,
          step + 1, lastCheckpoint,
        );
      }
      optimizer.update(clipFactor(gradNorm, clip)); // clipping folded into the update
      optimizer.zeroGrad();
      step++;
      stepsThisRun++;
      tokensSeen += tokens;
      trainLoss = loss;
      const dt = (performance.now() - ts) / 1000;
      if (stepsThisRun > 1 || stopAt - step === 0) {
        timedSeconds += dt;
        timedTokens += tokens;
      }
      const tps = tokens / dt;
      const avgStep = timedSeconds > 0 ? timedSeconds / Math.max(1, stepsThisRun - 1) : dt;
      writeMetrics({ step, loss, lr, grad_norm: gradNorm, tokens_per_s: Math.round(tps), elapsed_s: +((performance.now() - t0) / 1000).toFixed(3) });
      progress?.update({ step, totalSteps: steps, loss, lr, tokensPerSecond: timedSeconds > 0 ? timedTokens / timedSeconds : tps, etaSeconds: avgStep * (stopAt - step) });

      const last = step === steps;
      if (o.evalData?.length && ((o.evalEvery && step % o.evalEvery === 0) || last)) {
        valLoss = evaluateLoss(o.model, o.lossFn, o.evalData, o.bf16);
        evaluatedAt = step;
        if (bestValLoss === null || valLoss < bestValLoss) bestValLoss = valLoss;
        writeMetrics({ step, val_loss: valLoss, val_ppl: Math.exp(valLoss) });
        log(`step ${step}: val loss ${valLoss.toFixed(4)}, perplexity ${Math.exp(valLoss).toFixed(2)}`);
      }
      if ((o.checkpointEvery && step % o.checkpointEvery === 0) || last) {
        save();
        savedAt = step;
      }
      // Let signal handlers run: the loop is otherwise synchronous.
      await new Promise<void>((r) => setImmediate(r));
    }
    if (status === 'completed' && step < steps) status = 'stopped';
    if (status !== 'interrupted' && !stops.received() && o.evalData?.length && stepsThisRun > 0 && evaluatedAt !== step) {
      // Stopped early (time limit, stopAtStep): evaluate so the reported val loss is current.
      valLoss = evaluateLoss(o.model, o.lossFn, o.evalData, o.bf16);
      if (bestValLoss === null || valLoss < bestValLoss) bestValLoss = valLoss;
      writeMetrics({ step, val_loss: valLoss, val_ppl: Math.exp(valLoss) });
    }
    if (savedAt !== step && (stepsThisRun > 0 || lastCheckpoint === null)) save();
    if (stops.received()) {
      status = 'interrupted';
      log(`interrupted at step ${step}: checkpoint saved to ${lastCheckpoint}`);
    }
  } finally {
    unpin();
    progress?.stop();
    stops.release();
  }
  return {
    status, signal: stops.received(), step, lastCheckpoint, trainLoss, valLoss, bestValLoss,
    tokensPerSecond: timedSeconds > 0 ? timedTokens / timedSeconds : 0,
    seconds: (performance.now() - t0) / 1000,
  };
}
