/**
 * The label-efficiency experiment: does pre-training pay off when labels are scarce?
 *
 * For every label budget N and seed s, N training examples are drawn stratified from the train split
 * (for one seed a smaller budget is a subset of a larger one), and on exactly those labels:
 *   tfidf       TF-IDF word 1–2-grams + L2 logistic regression, C chosen on validation (the baseline)
 *   scratch     LP-FT of an identically shaped, randomly initialised body
 *   pre-trained the few-label methods of fewlabel.ts on the pre-trained body: LP-FT, a frozen-feature
 *               linear probe, prompt-based fine-tuning through the LM head, label-word anchors, and
 *               the ensemble of those (mean class probabilities)
 * The validation split is cut in two: `earlyStopping` (valExamples, stratified) picks epochs, C and probe
 * views; `selection` (the rest) picks which pre-trained method the curve reports at each budget, by
 * mean Brier score over seeds (experiment-summary.ts chooseMethod). The test split is
 * scored once per run and never chooses anything.
 * Without --model a GPT is first pre-trained for --pretrain-minutes on all of Primer's built-in English
 * text without the task's evaluation documents (experiment-corpus.ts, experiment-pretrain.ts).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTokenizer } from '../tokenizers/index.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { pretrain, type PretrainOptions } from '../train/pretrain.ts';
import { pretrainBert } from '../train/bert-pretrain.ts';
import type { TextExample } from './data.ts';
import { stratifiedSample } from './labels.ts';
import { loadBackbone } from '../models/model-dir.ts';
import { loadModelDir } from '../models/load.ts';
import { GPT2Model } from '../models/gpt.ts';
import { loadExperimentData, checkBudgets, type ExperimentDataOptions, type ExperimentData as ExperimentTask } from './experiment-data.ts';
import { writeExperimentCorpus } from './experiment-corpus.ts';
import { chooseBudgetRecipe, type BudgetRecipe } from './experiment-pretrain.ts';
import { DEFAULT_RECIPE, lpftRun, promptRun, scratchBackbone, type FinetuneRecipe, type RunInputs } from './experiment-runs.ts';
import { clozeTemplate, clozeZeroShot } from './cloze.ts';
import { anchorBank, anchorPredict, anchorProbe, anchorStacked, type AnchorBank } from './anchor.ts';
import { FEW_LABEL_METHODS, ensembleScore, linearProbe, scorePredictions, zeroShot, type FeatureBank, type FewLabelMethod, type MethodScore, type ZeroShotResult } from './fewlabel.ts';
import { layerFeatures } from './probe.ts';
import { applyTemplate, checkTemplate, defaultPrompt, parseVerbalizer, type PromptSpec } from './prompt.ts';
import { tfidfBaseline } from './tfidf.ts';
import { writeReport, type Arm, type RunRecord, type Summary } from './experiment-summary.ts';

export { DEFAULT_RECIPE, type FinetuneRecipe } from './experiment-runs.ts';
export type { RunRecord } from './experiment-summary.ts';

/**
 * Pre-training minutes without --model: with the ~18 minutes of fine-tuning and fitting of the default
 * budgets and seeds, the whole experiment stays within 45 minutes on 2 cores.
 */
export const DEFAULT_PRETRAIN_MINUTES = 25;

export interface LabelEfficiencyOptions extends ExperimentDataOptions {
  labels: readonly number[];
  /** Number of seeds (firstSeed … firstSeed + seeds − 1). */
  seeds: number;
  firstSeed?: number;
  /** Pre-trained model directory; without it a model is pre-trained first. */
  model?: string;
  out: string;
  /** Minutes of pre-training when no model is given (DEFAULT_PRETRAIN_MINUTES); the recipe is chosen for it. */
  pretrainMinutes?: number;
  /** Explicit pre-training options (override the chosen recipe). */
  pretrain?: PretrainOptions;
  /** Pre-train a GPT (CLM, default) or a BERT (MLM); BERT gets LP-FT and the probe (no prompt methods yet). */
  backbone?: 'gpt' | 'bert';
  recipe?: Partial<FinetuneRecipe>;
  /** Add the task's unlabelled train texts (never val or test) to the pre-training corpus. */
  domainText?: boolean;
  /** Few-label methods tried on the pre-trained body (default all that the backbone supports). */
  methods?: readonly FewLabelMethod[];
  template?: string;
  /** "label=word|word,label=word" or JSON. */
  verbalizer?: string;
  testExamples?: number;
  /** 'test' (default) or 'val': score the selection set instead (recipe work that never sees test). */
  scoreSplit?: 'test' | 'val';
  log?: (message: string) => void;
}

export interface LabelEfficiencyResult {
  task: string;
  source: string;
  model: string;
  domainText: boolean;
  complete: boolean;
  pretrainSeconds: number | null;
  pretrainRecipe: BudgetRecipe | null;
  recipe: FinetuneRecipe;
  prompt: PromptSpec | null;
  scoreSplit: 'test' | 'val';
  testExamples: number;
  majority: { label: string; accuracy: number };
  zeroShot: ZeroShotResult | null;
  /** Zero-shot by label-word anchors in the token-embedding space (anchor.ts), when 'anchor' ran. */
  anchorZeroShot: { selection: number; accuracy: number; macroF1: number } | null;
  runs: RunRecord[];
  summary: Summary;
  seconds: number;
  files: { results: string; table: string; plot: string; probabilities: string };
}

function majorityOf(train: readonly TextExample[], test: readonly TextExample[]): { label: string; accuracy: number } {
  const counts = new Map<string, number>();
  for (const x of train) counts.set(x.label!, (counts.get(x.label!) ?? 0) + 1);
  const label = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  return { label, accuracy: test.filter((x) => x.label === label).length / test.length };
}

/**
 * The examples that pick epochs/C/views (a stratified subset of val), those that pick the method (the
 * rest of val) and those scored (test; with scoreSplit 'val' the selection set itself).
 */
export function evaluationSets(task: ExperimentTask, valExamples: number, scoreSplit: 'test' | 'val', limit?: number): { earlyStopping: TextExample[]; selection: TextExample[]; scored: TextExample[] } {
  const labelOf = (x: TextExample) => x.label!;
  const earlyStopping = stratifiedSample(task.val, Math.min(valExamples, Math.floor(task.val.length / 2)), labelOf, 12345);
  const used = new Set(earlyStopping);
  const selection = task.val.filter((x) => !used.has(x));
  if (selection.length === 0) throw new RangeError(`experiment: the validation split (${task.val.length} examples) is too small to leave examples for choosing a method`);
  const pool = scoreSplit === 'val' ? selection : task.test;
  const scored = limit !== undefined && limit < pool.length ? stratifiedSample(pool, limit, labelOf, 54321) : [...pool];
  return { earlyStopping, selection, scored };
}

function fixedRecipe(p: PretrainOptions): BudgetRecipe {
  const batchSize = p.batchSize ?? 32;
  const blockSize = p.blockSize ?? 128;
  return { preset: p.preset!, lr: p.lr ?? 2e-3, steps: p.steps!, batchSize, blockSize, warmupSteps: p.warmupSteps ?? 20, tokensPerSecond: NaN, tokenBudget: p.steps! * batchSize * blockSize, nonEmbeddingParameters: NaN, considered: [] };
}

/**
 * Pre-trains the experiment's backbone for the time budget; returns its run directory. A BERT (MLM)
 * gets the shape and steps chosen for a GPT (the same body costs about the same per token) with
 * pretrainBert's own optimiser defaults (ref_bert.py's: lr 2e-3, β₂ 0.99).
 */
async function pretrainForExperiment(o: LabelEfficiencyOptions, task: ExperimentTask, out: string, log: (m: string) => void): Promise<{ dir: string; seconds: number; recipe: BudgetRecipe }> {
  const minutes = o.pretrainMinutes ?? o.pretrain?.maxMinutes ?? DEFAULT_PRETRAIN_MINUTES;
  const given: PretrainOptions = Object.fromEntries(Object.entries(o.pretrain ?? {}).filter(([, v]) => v !== undefined));
  let files = given.corpus;
  if (!files) {
    const corpus = writeExperimentCorpus(join(out, 'corpus'), { heldOut: [...task.val, ...task.test], domainTexts: o.domainText ? task.train.map((x) => x.text) : [] });
    log(`pre-training corpus: built-in English text${o.domainText ? ' + the task\'s unlabelled train texts' : ''}, ${corpus.files.length} files, ${corpus.excludedDocuments} evaluation documents left out`);
    files = corpus.files;
  } else if (o.domainText) {
    files = [...files, ...writeExperimentCorpus(join(out, 'corpus'), { heldOut: [...task.val, ...task.test], sources: [], domainTexts: task.train.map((x) => x.text) }).files];
  }
  // An explicit shape and step count (tests, reproductions) skip the timing of candidate shapes.
  const recipe = given.preset && given.steps ? fixedRecipe(given) : (log(`choosing a model for ${minutes} minutes of pre-training on this machine:`), chooseBudgetRecipe(minutes, { log }));
  const backbone = o.backbone ?? 'gpt';
  log(`  → ${backbone === 'bert' ? 'BERT (MLM)' : 'GPT'} ${recipe.preset}, ${recipe.steps} steps of ${recipe.batchSize}×${recipe.blockSize} tokens${backbone === 'gpt' ? `, lr ${recipe.lr}` : ''}`);
  const { objective: _clm, ...rest } = given;
  const common = { preset: recipe.preset, steps: recipe.steps, batchSize: recipe.batchSize, maxMinutes: minutes * 1.1, progress: false as const, log, ...rest, corpus: files, out: given.out ?? join(out, 'pretrain') };
  // The recipe's block size is BERT's maxSeqLength; GPT-only options are not pretrainBert's (it refuses unknown ones).
  const gptOnlyRemoved = ({ blockSize: _b, arch: _a, initFrom: _i, freezeEmbeddings: _f, samplePrompts: _p, sampleTokens: _t, parentFingerprint: _fp, ...o }: typeof common) => o;
  const r = backbone === 'bert'
    ? await pretrainBert({ objective: 'mlm', maxSeqLength: recipe.blockSize, ...gptOnlyRemoved(common) })
    // Token embeddings from the corpus's co-occurrence counts, kept fixed (the LM head is untied): the
    // label-word anchors need that geometry, and LM training from it is no slower (BENCHMARKS.md).
    : await pretrain({ blockSize: recipe.blockSize, lr: recipe.lr, warmupSteps: recipe.warmupSteps, minLr: recipe.lr / 20, samplePrompts: [], embeddingInit: 'ppmi', freezeEmbeddings: true, ...common });
  rmSync(join(out, 'corpus'), { recursive: true, force: true });
  if (r.training.status === 'interrupted') {
    throw new Error(`experiment: pre-training was interrupted (${r.training.signal ?? 'signal'}) at step ${r.training.step}; its model is in ${r.runDir}: rerun with --model ${r.runDir}, or pre-train again`);
  }
  return { dir: r.runDir, seconds: r.seconds.total, recipe };
}

export async function labelEfficiency(o: LabelEfficiencyOptions): Promise<LabelEfficiencyResult> {
  const log = o.log ?? ((m: string) => console.log(m));
  const t0 = performance.now();
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const task = loadExperimentData(o);
  const budgets = [...new Set(o.labels)].sort((a, b) => a - b);
  if (budgets.length === 0 || budgets.some((n) => !Number.isInteger(n) || n <= 0)) throw new RangeError(`experiment: --labels must be positive integers, got ${o.labels.join(',')}`);
  checkBudgets(budgets, task.train, o.data ?? task.name);
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new RangeError(`experiment: --seeds must be a positive integer, got ${o.seeds}`);
  if (o.domainText && o.model) throw new RangeError('experiment: --domain-text changes the pre-training corpus; it cannot be combined with --model');
  if (o.template !== undefined) checkTemplate(o.template);
  const recipe: FinetuneRecipe = { ...DEFAULT_RECIPE, ...Object.fromEntries(Object.entries(o.recipe ?? {}).filter(([, v]) => v !== undefined)) };
  const labelOf = (x: TextExample) => x.label!;

  let modelDir = o.model ? resolve(o.model) : '';
  let pretrainSeconds: number | null = null;
  let pretrainRecipe: BudgetRecipe | null = null;
  if (!modelDir) ({ dir: modelDir, seconds: pretrainSeconds, recipe: pretrainRecipe } = await pretrainForExperiment(o, task, out, log));
  const tokenizer = loadTokenizer(modelDir);
  const scoreSplit = o.scoreSplit ?? 'test';
  const { earlyStopping, selection, scored: test } = evaluationSets(task, recipe.valExamples, scoreSplit, o.testExamples);
  const majority = majorityOf(task.train, test);
  log(`task ${task.name}: ${task.train.length} train / ${earlyStopping.length} val for early stopping / ${selection.length} val for choosing the method / ${test.length} ${scoreSplit === 'val' ? 'selection' : 'test'} examples scored; majority class "${majority.label}" = ${(100 * majority.accuracy).toFixed(1)}%`);

  // The frozen body's features and the zero-shot scores are computed once: they do not depend on labels.
  const loaded = loadModelDir(modelDir);
  const body = loaded.kind === 'gpt2' ? loaded.model.transformer : loaded.model.bert;
  const isGpt = body instanceof GPT2Model;
  const methods = (o.methods ?? FEW_LABEL_METHODS).filter((m) => isGpt || m !== 'prompt');
  const verbalizer = o.verbalizer ? parseVerbalizer(o.verbalizer, task.labels) : defaultPrompt(task.name, task.labels).verbalizer;
  const prompt: PromptSpec | null = isGpt ? { ...defaultPrompt(task.name, task.labels), ...(o.template ? { template: o.template } : {}), verbalizer } : null;
  let zero: ZeroShotResult | null = null;
  if (prompt) {
    zero = zeroShot(body, tokenizer, task.labels, prompt, selection, test, recipe.maxLength);
    log(`zero-shot prompting ("${prompt.template}"): ${(100 * zero.uncalibrated.accuracy).toFixed(1)}% uncalibrated, ${(100 * zero.calibrated.accuracy).toFixed(1)}% calibrated (majority ${(100 * majority.accuracy).toFixed(1)}%)`);
  } else {
    // A BERT: cloze prompting through its MLM head ("{text} It was [MASK].").
    if (loaded.kind === 'bert') {
      const template = o.template ?? defaultPrompt(task.name, task.labels).template;
      zero = clozeZeroShot(loaded.model, tokenizer, task.labels, { template, verbalizer }, selection, test, recipe.maxLength);
      log(`zero-shot cloze prompting ("${clozeTemplate(template, tokenizer.specialTokens.mask ?? '[MASK]')}"): ${(100 * zero.uncalibrated.accuracy).toFixed(1)}% uncalibrated, ${(100 * zero.calibrated.accuracy).toFixed(1)}% calibrated (majority ${(100 * majority.accuracy).toFixed(1)}%)`);
    }
  }
  let bank: FeatureBank | null = null;
  if (methods.includes('probe')) {
    const all = [...new Set([...task.train, ...earlyStopping, ...selection, ...test])];
    const t = performance.now();
    const texts = prompt ? applyTemplate(tokenizer, all, prompt.template, recipe.maxLength) : all;
    bank = { features: layerFeatures(body, tokenizer, texts, { maxLength: recipe.maxLength }), index: new Map(all.map((x, i) => [x, i])), poolRows: Int32Array.from(task.train, (_, i) => i) };
    log(`frozen features of ${all.length} texts: ${((performance.now() - t) / 1000).toFixed(1)}s`);
  }

  let anchors: AnchorBank | null = null;
  let anchorZero: LabelEfficiencyResult['anchorZeroShot'] = null;
  if (methods.includes('anchor')) {
    anchors = anchorBank(body, tokenizer, task.labels, verbalizer, [...new Set([...task.train, ...earlyStopping, ...selection, ...test])], task.train.length, recipe.maxLength);
    anchorZero = {
      selection: scorePredictions(task.labels, selection, anchorPredict(anchors, selection)).accuracy,
      ...scorePredictions(task.labels, test, anchorPredict(anchors, test)),
    };
    log(`zero-shot by label-word anchors in the embedding space: ${(100 * anchorZero.accuracy).toFixed(1)}%`);
  }

  const runs: RunRecord[] = [];
  const files = { results: join(out, 'results.json'), table: join(out, 'results.md'), plot: join(out, 'label-efficiency.svg'), probabilities: join(out, 'probabilities.json') };
  // Every method's class probabilities on the selection and scored examples, for studying selection rules offline.
  const probabilities: Array<{ method: string; labels: number; seed: number; selection: number[]; test: number[] }> = [];
  const rounded = (p: Float64Array) => Array.from(p, (v) => Math.round(v * 1e5) / 1e5);
  const write = (complete: boolean): LabelEfficiencyResult => {
    const base = { task: task.name, source: task.source, model: modelDir, domainText: o.domainText ?? false, complete, pretrainSeconds, pretrainRecipe, recipe, prompt, scoreSplit, testExamples: test.length, majority, zeroShot: zero, anchorZeroShot: anchorZero, runs, seconds: (performance.now() - t0) / 1000, files };
    const summary = writeReport(base, budgets);
    const result = { ...base, summary };
    writeJsonAtomic(files.results, result, { indent: 2 });
    writeJsonAtomic(files.probabilities, { classes: task.labels.labels, selection: [...task.labels.encode(selection)], test: [...task.labels.encode(test)], runs: probabilities });
    return result;
  };
  const record = (arm: Arm, method: string, n: number, seed: number, s: MethodScore, t: number, extra: Partial<RunRecord> = {}) => {
    const rec: RunRecord = { arm, method, labels: n, seed, selection: s.selection, selectionBrier: s.selectionBrier, accuracy: s.accuracy, macroF1: s.macroF1, detail: s.detail, seconds: (performance.now() - t) / 1000, ...extra };
    runs.push(rec);
    if (arm === 'pretrained' && s.probabilities) probabilities.push({ method, labels: n, seed, selection: rounded(s.probabilities.selection), test: rounded(s.probabilities.test) });
    log(`  ${`${arm}/${method}`.padEnd(18)} labels ${String(n).padStart(5)} seed ${seed}: ${scoreSplit} ${(100 * rec.accuracy).toFixed(1)}%, selection ${(100 * rec.selection).toFixed(1)}%${rec.detail ? ` (${rec.detail})` : ''} ${rec.seconds.toFixed(1)}s`);
  };
  const runsDir = join(out, 'runs');
  for (const n of budgets) {
    const firstSeed = o.firstSeed ?? 0;
    for (let seed = firstSeed; seed < firstSeed + o.seeds; seed++) {
      const train = stratifiedSample(task.train, n, labelOf, seed);
      const inputs = (tag: string): RunInputs => ({ tokenizer, labels: task.labels, train, earlyStopping, selection, test, recipe, seed, runDir: join(runsDir, `${tag}-${n}-${seed}`) });
      let t = performance.now();
      // One fit scores both sets: the selection rows first, then the test rows.
      const tf = tfidfBaseline(train, earlyStopping, [...selection, ...test]);
      const tfPred = Int32Array.from(tf.predictions, (p) => (task.labels.has(p) ? task.labels.id(p) : -1));
      const tfTest = scorePredictions(task.labels, test, tfPred.subarray(selection.length));
      record('tfidf', 'tfidf', n, seed, { selection: scorePredictions(task.labels, selection, tfPred.subarray(0, selection.length)).accuracy, ...tfTest, detail: `C=${tf.C}` }, t);
      t = performance.now();
      const scratch = await lpftRun(scratchBackbone(modelDir, 1000 + seed), inputs('scratch'));
      record('scratch', 'lpft', n, seed, scratch, t, { epochs: scratch.epochs, bestEpoch: scratch.bestEpoch });
      const members: MethodScore[] = [];
      for (const m of methods) {
        t = performance.now();
        let score: MethodScore;
        if (m === 'lpft') {
          const r = await lpftRun(loadBackbone(modelDir), inputs('lpft'));
          record('pretrained', m, n, seed, (score = r), t, { epochs: r.epochs, bestEpoch: r.bestEpoch });
        } else if (m === 'probe') {
          record('pretrained', m, n, seed, (score = linearProbe(bank!, task.labels, train, earlyStopping, selection, test)), t);
        } else if (m === 'anchor') {
          record('pretrained', m, n, seed, (score = anchorProbe(anchors!, task.labels, train, earlyStopping, selection, test)), t);
          const ts = performance.now();
          record('stacked', 'anchor+tfidf', n, seed, anchorStacked(anchors!, task.labels, train, earlyStopping, selection, test), ts);
        } else {
          const r = await promptRun(modelDir, prompt!, inputs('prompt'));
          record('pretrained', m, n, seed, (score = r), t, { epochs: r.epochs, bestEpoch: r.bestEpoch });
        }
        members.push(score);
      }
      t = performance.now();
      const ensemble = ensembleScore(task.labels, selection, test, members);
      if (ensemble) record('pretrained', 'ensemble', n, seed, ensemble, t);
      write(false);
    }
  }
  rmSync(runsDir, { recursive: true, force: true });
  return write(true);
}
