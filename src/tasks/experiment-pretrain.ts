/**
 * Pre-training for a time budget (`primer experiment label-efficiency --pretrain-minutes M`): which GPT
 * shape and how many steps fit M minutes on *this* machine.
 *
 * Each candidate shape is timed for a few real training steps (forward + backward on random ids) at
 * the start, so the choice follows the CPU and its load. Its token budget is then D = tok/s · 60 · M ·
 * (1 − overhead). Compute-optimal scaling (Hoffmann et al. 2022: D ≈ 20·N) says a model of N
 * parameters is worth training only when D reaches ≈ 20·N; the largest candidate whose budget reaches
 * COMPUTE_OPTIMAL_TOKENS_PER_PARAM × its non-embedding parameters is taken (N without the embedding
 * table, as Kaplan et al. 2020 count it: at this size the table is most of the parameters but little
 * of the compute), else the smallest. Steps = D / (batch · block).
 */
import { GPT } from '../models/gpt.ts';
import { gptPreset, type PresetName } from '../models/presets.ts';
import { withScope } from '../tensor/tensor.ts';
import { mix32 } from '../util/random.ts';

export const COMPUTE_OPTIMAL_TOKENS_PER_PARAM = 20;

export interface Candidate {
  preset: PresetName;
  lr: number;
}

/** From the smallest to the largest; learning rates from the ablations in BENCHMARKS.md. */
export const BUDGET_CANDIDATES: readonly Candidate[] = [
  { preset: 'tiny', lr: 2e-3 },
  { preset: 'mini', lr: 2e-3 },
  { preset: 'small', lr: 1e-3 },
];

export interface BudgetRecipe {
  preset: PresetName;
  lr: number;
  steps: number;
  batchSize: number;
  blockSize: number;
  warmupSteps: number;
  tokensPerSecond: number;
  tokenBudget: number;
  nonEmbeddingParameters: number;
  /** Every candidate's measurement and verdict, for the report. */
  considered: Array<{ preset: PresetName; tokensPerSecond: number; tokenBudget: number; nonEmbeddingParameters: number; computeOptimal: boolean }>;
}

/** Share of the wall time that is not training steps (tokenizer, data, evaluations, checkpoints). */
const OVERHEAD = 0.15;

export function nonEmbeddingParameters(preset: PresetName, vocabSize: number): number {
  const c = gptPreset(preset, { vocabSize });
  return c.n_layer * 12 * c.n_embd * c.n_embd;
}

/**
 * Tokens/s of full training steps (forward + backward) of one shape: the median step time over at least
 * `seconds` (default 4) and 3 steps, after 2 warm-up steps. The first steps of a fresh process run up to
 * a fifth slower than the steady state (cold JIT, first touches of the buffer pool), so a short
 * measurement would spend only ~80 % of the budget (BENCHMARKS.md, "Label efficiency", session 9).
 */
export function measureTokensPerSecond(preset: PresetName, o: { vocabSize: number; batchSize: number; blockSize: number; seconds?: number }): number {
  const model = new GPT(gptPreset(preset, { vocabSize: o.vocabSize, context: o.blockSize }), 0);
  const n = o.batchSize * o.blockSize;
  const ids = new Int32Array(n).map((_, i) => mix32(i) % o.vocabSize);
  const step = () => withScope(() => {
    const { loss } = model.forward(ids, o.batchSize, o.blockSize, ids);
    loss!.backward();
    for (const p of model.parameters()) p.grad?.data.fill(0);
  });
  step();
  step();
  const t0 = performance.now();
  const times: number[] = [];
  do {
    const t = performance.now();
    step();
    times.push(performance.now() - t);
  } while ((performance.now() - t0 < (o.seconds ?? 4) * 1000 || times.length < 3) && times.length < 50);
  times.sort((a, b) => a - b);
  const median = times.length % 2 ? times[times.length >> 1]! : (times[times.length / 2 - 1]! + times[times.length / 2]!) / 2;
  return n / (median / 1000);
}

/** Chooses shape and steps for `minutes` of pre-training (see the file comment). */
export function chooseBudgetRecipe(minutes: number, o: { vocabSize?: number; batchSize?: number; blockSize?: number; measure?: typeof measureTokensPerSecond; log?: (m: string) => void } = {}): BudgetRecipe {
  if (!(minutes > 0)) throw new RangeError(`--pretrain-minutes must be positive, got ${minutes}`);
  const vocabSize = o.vocabSize ?? 8192;
  const batchSize = o.batchSize ?? 32;
  const blockSize = o.blockSize ?? 128;
  const measure = o.measure ?? measureTokensPerSecond;
  const considered: BudgetRecipe['considered'] = [];
  for (const cand of BUDGET_CANDIDATES) {
    const tokensPerSecond = measure(cand.preset, { vocabSize, batchSize, blockSize });
    const tokenBudget = tokensPerSecond * 60 * minutes * (1 - OVERHEAD);
    const nonEmb = nonEmbeddingParameters(cand.preset, vocabSize);
    const computeOptimal = tokenBudget >= COMPUTE_OPTIMAL_TOKENS_PER_PARAM * nonEmb;
    considered.push({ preset: cand.preset, tokensPerSecond, tokenBudget, nonEmbeddingParameters: nonEmb, computeOptimal });
    o.log?.(`  ${cand.preset}: ${Math.round(tokensPerSecond)} tokens/s → ${(tokenBudget / 1e6).toFixed(1)}M tokens in ${minutes} min; ${(nonEmb / 1e6).toFixed(2)}M non-embedding parameters${computeOptimal ? '' : ' (under-trained: fewer than 20 tokens per parameter)'}`);
    if (!computeOptimal) break; // larger shapes are slower and bigger still
  }
  const fits = considered.filter((c) => c.computeOptimal);
  const chosen = fits.length ? fits[fits.length - 1]! : considered[0]!;
  const cand = BUDGET_CANDIDATES.find((c) => c.preset === chosen.preset)!;
  const steps = Math.max(50, Math.floor(chosen.tokenBudget / (batchSize * blockSize)));
  return {
    preset: chosen.preset, lr: cand.lr, steps, batchSize, blockSize, warmupSteps: Math.min(200, Math.max(20, Math.round(steps / 20))),
    tokensPerSecond: chosen.tokensPerSecond, tokenBudget: chosen.tokenBudget, nonEmbeddingParameters: chosen.nonEmbeddingParameters, considered,
  };
}
