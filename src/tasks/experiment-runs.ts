/**
 * One fine-tuning run of the label-efficiency experiment (experiment.ts): the recipe, its budget-dependent
 * stretch (small budgets get smaller batches and more epochs), LP-FT for a new head, and prompt-based
 * fine-tuning whose head starts as the verbalizer's LM-head rows (prompt.ts).
 */
import { rmSync } from 'node:fs';
import type { Tokenizer } from '../tokenizers/types.ts';
import { GPT2Model } from '../models/gpt.ts';
import { createModel, readModelConfig } from '../models/load.ts';
import type { TextExample } from './data.ts';
import type { LabelMap } from '../models/labels.ts';
import { SequenceClassifier, backboneKind, type Backbone, type Pooling } from '../models/heads.ts';
import { finetune, predictProbabilities } from './finetune.ts';
import { loadBackbone } from '../models/model-dir.ts';
import { applyTemplate, promptClassifier, type PromptSpec } from './prompt.ts';
import { methodScore, type MethodScore } from './fewlabel.ts';

export interface FinetuneRecipe {
  epochs: number;
  /** Small budgets get more epochs, so that every run takes at least this many optimizer steps. */
  minSteps: number;
  /** Upper bound on epochs after that stretch. */
  maxEpochs: number;
  lr: number;
  batchSize: number;
  maxLength: number;
  warmupRatio: number;
  weightDecay: number;
  /** Epochs without a better validation accuracy before stopping. */
  patience: number;
  /** GPT-2 and Llama: 'mean' or 'last' token; BERT: 'pooler', 'cls' or 'mean'. */
  pooling?: Pooling;
  /** Validation examples used for early stopping (a stratified subset of the val split). */
  valExamples: number;
  /** Freeze the token and position embeddings (both inits alike). */
  freezeEmbeddings?: boolean;
  /** Dropout before the classifier (default: the head's default). */
  dropout?: number;
  /**
   * LP-FT: first up to this many epochs (early-stopped; like `epochs`, about minSteps steps, at least
   * 2 epochs) training only the new head on the frozen body at headLr, then the full fine-tuning;
   * 0 = off. The body's fine-tuning then starts from a head that already separates the classes
   * instead of back-propagating a random head's gradients into it.
   */
  headEpochs?: number;
  headLr?: number;
  /** Learning rate of prompt-based fine-tuning (the whole model, head = LM-head rows). */
  promptLr: number;
}

export const DEFAULT_RECIPE: FinetuneRecipe = {
  epochs: 6, minSteps: 40, maxEpochs: 30, lr: 3e-4, batchSize: 16, maxLength: 64, warmupRatio: 0.1, weightDecay: 0.01, patience: 4, valExamples: 100,
  headEpochs: 10, headLr: 3e-3, promptLr: 1e-4,
};


/** Batch size, epochs and head epochs of one run: small budgets get ≥ 4 steps an epoch and ≥ minSteps steps. */
export function stretch(recipe: FinetuneRecipe, n: number): { batchSize: number; epochs: number; headEpochs: number } {
  const batchSize = Math.min(recipe.batchSize, Math.max(4, Math.floor(n / 4)));
  const steps = Math.ceil(n / batchSize);
  const epochs = Math.min(recipe.maxEpochs, Math.max(recipe.epochs, Math.ceil(recipe.minSteps / steps)));
  // A linear head needs about minSteps steps too: large budgets get 2 head epochs, not headEpochs.
  const headEpochs = Math.min(recipe.headEpochs ?? 0, Math.max(2, Math.ceil(recipe.minSteps / steps)));
  return { batchSize, epochs, headEpochs };
}

/** A freshly initialised body with the pre-trained one's exact config (and tokenizer vocabulary). */
export function scratchBackbone(modelDir: string, seed: number): Backbone {
  const loaded = createModel(readModelConfig(modelDir), seed);
  return loaded.kind === 'gpt2' ? loaded.model.transformer : loaded.model.bert;
}

export interface RunSetup {
  tokenizer: Tokenizer;
  train: TextExample[];
  val: TextExample[];
  runDir: string;
  batchSize: number;
  epochs: number;
  headEpochs: number;
  recipe: FinetuneRecipe;
  seed: number;
}

/**
 * One fine-tuning run: the head alone on the frozen body (headEpochs > 0), then everything. Early
 * stopping spans both stages: when every full epoch is worse than the best head-only epoch on
 * validation, the head-only weights are kept. Epochs are counted over both stages.
 */
export async function lpft(model: SequenceClassifier, s: RunSetup): Promise<{ epochs: number; bestEpoch: number }> {
  const common = { model, tokenizer: s.tokenizer, train: s.train, val: s.val, batchSize: s.batchSize, maxLength: s.recipe.maxLength, seed: s.seed, patience: s.recipe.patience, metric: 'accuracy' as const, weightDecay: s.recipe.weightDecay };
  let head: { epochs: number; bestEpoch: number; bestMetric: number; weights: Float32Array[] } | null = null;
  if (s.headEpochs > 0) {
    const bodyParams = model.backbone.parameters();
    for (const p of bodyParams) p.requiresGrad = false;
    const r = await finetune({ ...common, runDir: `${s.runDir}-head`, epochs: s.headEpochs, lr: s.recipe.headLr ?? 10 * s.recipe.lr, warmupRatio: 0 });
    for (const p of bodyParams) p.requiresGrad = true;
    rmSync(`${s.runDir}-head`, { recursive: true, force: true });
    head = { epochs: r.history.length, bestEpoch: r.bestEpoch, bestMetric: r.bestMetric ?? -Infinity, weights: model.parameters().map((p) => Float32Array.from(p.data)) };
  }
  const r = await finetune({
    ...common, runDir: s.runDir, epochs: s.epochs, lr: s.recipe.lr, warmupRatio: s.recipe.warmupRatio,
    freeze: s.recipe.freezeEmbeddings ? { embeddings: true } : undefined,
  });
  rmSync(s.runDir, { recursive: true, force: true });
  if (!head) return { epochs: r.history.length, bestEpoch: r.bestEpoch };
  const epochs = head.epochs + r.history.length;
  // A tie goes to the fully fine-tuned weights: this is a fine-tuning experiment.
  if (r.bestMetric !== null && r.bestMetric >= head.bestMetric) return { epochs, bestEpoch: head.epochs + r.bestEpoch };
  model.parameters().forEach((p, i) => p.data.set(head.weights[i]!));
  return { epochs, bestEpoch: head.bestEpoch };
}


export interface RunInputs {
  tokenizer: Tokenizer;
  labels: LabelMap;
  train: TextExample[];
  earlyStopping: TextExample[];
  selection: TextExample[];
  test: TextExample[];
  recipe: FinetuneRecipe;
  seed: number;
  runDir: string;
}

function scoreModel(model: SequenceClassifier, r: RunInputs, selection: readonly TextExample[], test: readonly TextExample[]): MethodScore {
  const o = { maxLength: r.recipe.maxLength, batchSize: 64 };
  // Scored by row order: `selection`/`test` may be the templated copies of r.selection/r.test.
  return methodScore(r.labels, r.selection, r.test, predictProbabilities(model, r.tokenizer, selection, o), predictProbabilities(model, r.tokenizer, test, o));
}

/** LP-FT of a new head on `body` (pre-trained or scratch). */
export async function lpftRun(body: Backbone, r: RunInputs): Promise<MethodScore & { epochs: number; bestEpoch: number }> {
  const s = stretch(r.recipe, r.train.length);
  const model = new SequenceClassifier(body, r.labels, { seed: r.seed, dropout: r.recipe.dropout, pooling: r.recipe.pooling ?? (backboneKind(body) === 'bert' ? 'pooler' : 'mean') });
  const fit = await lpft(model, { tokenizer: r.tokenizer, train: r.train, val: r.earlyStopping, runDir: r.runDir, batchSize: s.batchSize, epochs: s.epochs, headEpochs: s.headEpochs, recipe: r.recipe, seed: r.seed });
  return { ...scoreModel(model, r, r.selection, r.test), ...fit };
}

/** Prompt-based fine-tuning of a GPT through its LM head: no new random weights, no head-only stage. */
export async function promptRun(modelDir: string, spec: PromptSpec, r: RunInputs): Promise<MethodScore & { epochs: number; bestEpoch: number }> {
  const body = loadBackbone(modelDir);
  if (!(body instanceof GPT2Model)) throw new RangeError('prompt-based fine-tuning needs a GPT; BERT cloze fine-tuning is not implemented yet');
  const s = stretch(r.recipe, r.train.length);
  const model = promptClassifier(body, r.tokenizer, r.labels, spec, r.seed);
  const t = (xs: readonly TextExample[]) => applyTemplate(r.tokenizer, xs, spec.template, r.recipe.maxLength);
  const fit = await finetune({
    model, tokenizer: r.tokenizer, train: t(r.train), val: t(r.earlyStopping), runDir: r.runDir, epochs: s.epochs, batchSize: s.batchSize,
    lr: r.recipe.promptLr, warmupRatio: r.recipe.warmupRatio, weightDecay: r.recipe.weightDecay, maxLength: r.recipe.maxLength,
    seed: r.seed, patience: r.recipe.patience, metric: 'accuracy',
  });
  rmSync(r.runDir, { recursive: true, force: true });
  return { ...scoreModel(model, r, t(r.selection), t(r.test)), epochs: fit.history.length, bestEpoch: fit.bestEpoch };
}
