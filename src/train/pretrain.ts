/**
 * GPT pre-training end to end — the library function behind `primer pretrain`:
 *   corpus (files or the built-in one) → byte-level BPE tokenizer (trained, or given) → train/val token
 *   streams split by document → GPT (or, with arch 'llama', a Llama) from a preset → the generic trainer (CLM loss on random blocks)
 *   → final model saved in HF layout in the run directory → sample continuations.
 * Resuming takes everything (tokenizer, model config, hyper-parameters) from the checkpoint; options that
 * would change them are refused (checkResumeSettings), only the length of the run and its cadence may change.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Tokenizer } from '../tokenizers/types.ts';
import { GPT, type GPTConfig } from '../models/gpt.ts';
import { Llama, llamaActivationFloatsPerToken, type LlamaConfig } from '../models/llama.ts';
import { gptPreset, llamaPreset, type PresetName } from '../models/presets.ts';
import { configJson, isLlamaConfig, loadModelDir, parameterCount, readAnyModelConfig, writeModelFiles } from '../models/load.ts';
import { modelFingerprint } from '../nn/fingerprint.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { PrimerError } from '../io/errors.ts';
import { refuseOutputOverInput } from '../io/paths.ts';
import { crossEntropy } from '../tensor/nn-ops.ts';
import { BUILTIN_CORPORA, resolveCorpus } from '../data/builtin.ts';
import { readCorpus } from '../data/corpus.ts';
import { RandomBlocks, describeSplit, evalBatches, tokenizeCorpus, type ClmBatch } from '../data/clm.ts';
import { loadTokenizerJson, separatorId, trainBpeOnCorpus } from '../data/tokenizer.ts';
import { generateText } from '../infer/generate.ts';
import { readCheckpoint, recoverCheckpoints, resumedSettings, runDirOf, startFreshRun } from './checkpoint.ts';
import { checkTrainingMemory, train, type TrainResult } from './trainer.ts';
import type { ProgressReporter } from './progress.ts';
import { initEmbeddingsFromStream } from './distributional.ts';
import { checkResumeSettings, nothingToTrain } from './resume-settings.ts';
import { checkBetas, checkOptionValues, defaultKeys, refuseUnknownOptions, RUN_SETTING_SPECS, type OptionKeys } from './option-checks.ts';

/** Optimisation, schedule and bookkeeping settings shared by every pre-training objective. */
export interface RunSettings {
  batchSize: number;
  gradAccum: number;
  steps: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  decay: 'cosine' | 'linear' | 'constant';
  weightDecay: number;
  betas: [number, number];
  gradClip: number;
  dropout: number;
  bf16: boolean;
  evalEvery: number;
  evalBatches: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  valFraction: number;
  seed: number;
}

/** Hyper-parameters of a pre-training run (all stored in its checkpoints). */
export interface PretrainConfig extends RunSettings {
  objective: 'clm';
  /** Corpus paths; empty = the built-in corpus. */
  corpus: string[];
  jsonlField: string;
  preset: PresetName;
  /** Model family: GPT-2 (default) or Llama (RMSNorm, RoPE, SwiGLU) of the same preset sizes. */
  arch?: 'gpt' | 'llama';
  layers?: number;
  dims?: number;
  heads?: number;
  vocabSize: number;
  /** Existing tokenizer.json (or a directory with one) instead of training a BPE. */
  tokenizer?: string;
  blockSize: number;
  /**
   * Continued pre-training: the parent model directory (Primer run or imported HF GPT-2) whose weights,
   * config and tokenizer the run starts from, with a fresh optimizer and schedule. Recorded in every
   * checkpoint with the parent's weight fingerprint.
   */
  initFrom?: string;
  parentFingerprint?: string;
  /**
   * Token-embedding initialisation: 'random' (N(0, 0.02²), GPT-2's) or 'ppmi' (count-based word
   * vectors of the training stream, see distributional.ts). Older checkpoints lack it: 'random'.
   */
  embeddingInit?: 'random' | 'ppmi';
  /**
   * Keep the token embeddings as initialised (no gradient); the model then gets an untied LM head
   * (tie_word_embeddings false). With 'ppmi' this keeps the co-occurrence geometry that the label-word
   * anchors (src/tasks/anchor.ts) read; LM training moves a trained table away from it.
   */
  freezeEmbeddings?: boolean;
}

export const PRETRAIN_DEFAULTS: PretrainConfig = {
  objective: 'clm', corpus: [], jsonlField: 'text', preset: 'mini', vocabSize: 8192,
  blockSize: 128, batchSize: 16, gradAccum: 1, steps: 1000, lr: 1e-3, minLr: 1e-4, warmupSteps: 50, decay: 'cosine',
  weightDecay: 0.1, betas: [0.9, 0.95], gradClip: 1, dropout: 0, bf16: false, evalEvery: 100, evalBatches: 8,
  checkpointEvery: 250, keepCheckpoints: 3, valFraction: 0.05, seed: 1337,
};

export interface PretrainOptions extends Partial<PretrainConfig> {
  /** Run directory (default ./runs/<preset>-<date>). */
  out?: string;
  /**
   * A checkpoint or run directory to continue; its stored config is used. `steps`, `evalEvery`,
   * `checkpointEvery` and `keepCheckpoints` may change; any other setting that differs is refused.
   */
  resume?: string;
  /** Stop (saving a checkpoint) after this many minutes of training (default DEFAULT_MAX_MINUTES when steps are not given). */
  maxMinutes?: number;
  /** Prompts for the sample continuations printed at the end ([] = none). */
  samplePrompts?: string[];
  sampleTokens?: number;
  log?: (message: string) => void;
  progress?: ProgressReporter | false;
}

/** What a run produced; C is LlamaConfig for `arch: 'llama'` runs (a resumed run reports the checkpoint's family). */
export interface PretrainResult<C extends GPTConfig | LlamaConfig = GPTConfig> {
  runDir: string;
  config: PretrainConfig;
  modelConfig: C;
  parameters: number;
  trainTokens: number;
  valTokens: number;
  training: TrainResult;
  samples: Array<{ prompt: string; text: string }>;
  seconds: { tokenizer: number; data: number; training: number; total: number };
}

function tokenEmbeddingTable(model: GPT | Llama) {
  return model instanceof GPT ? model.transformer.wte.weight : model.model.embed_tokens.weight;
}

export const DEFAULT_SAMPLE_PROMPTS = ['The', 'It was a dark and stormy night', 'Mr. President, the state of the Union'];
export const DEFAULT_SAMPLE_PROMPTS_ZH = ['床前明月光，', '春眠不觉晓，', '今天天气真好，'];

/**
 * The default sample prompts in the language of the corpus, judged from a decoded piece of it: Chinese
 * when Han characters are most of its letters (builtin:zh or any Chinese corpus). English prompts
 * would only show a Chinese model failing at a language it never saw.
 */
export function defaultSamplePrompts(corpusSample: string): string[] {
  const han = corpusSample.match(/\p{Script=Han}/gu)?.length ?? 0;
  const letters = corpusSample.match(/\p{L}/gu)?.length ?? 0;
  return han * 2 > letters ? DEFAULT_SAMPLE_PROMPTS_ZH : DEFAULT_SAMPLE_PROMPTS;
}

/**
 * With no --steps (the README's main job), training also stops after this many minutes, so the
 * whole command stays under 10 minutes on a slow or busy 2-core machine; the checkpoint is kept.
 */
export const DEFAULT_MAX_MINUTES = 8.5;

function defaultRunDir(preset: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return resolve('runs', `${preset}-${stamp}`);
}

/**
 * fp32 values per token a GPT keeps for the backward pass, for estimateTrainingMemory: per layer
 * about 28·d (two LayerNorms, q/k/v and their head-split copies, attention output and projection,
 * the 4d MLP input and GELU output, residual sums) plus 2·heads·T (attention scores and softmax),
 * then the final LayerNorm and the logits with their softmax (2·vocab).
 */
export function gptActivationFloatsPerToken(c: GPTConfig, seqLength: number): number {
  const d = c.n_embd;
  const inner = c.n_inner ?? 4 * d;
  return c.n_layer * (20 * d + 2 * inner + 2 * c.n_head * seqLength) + 2 * c.vocab_size + 3 * d;
}

/** Refuses a run that cannot fit in memory before the model or any batch is allocated (see checkTrainingMemory). */
function checkMemory(modelConfig: GPTConfig | LlamaConfig, config: PretrainConfig): void {
  const perToken = isLlamaConfig(modelConfig) ? llamaActivationFloatsPerToken(modelConfig, config.blockSize) : gptActivationFloatsPerToken(modelConfig, config.blockSize);
  checkTrainingMemory({
    parameters: parameterCount(modelConfig), activationFloatsPerToken: perToken,
    batchSize: config.batchSize, seqLength: config.blockSize, gradAccum: config.gradAccum,
  });
}

function modelFromPreset(config: PretrainConfig, vocabSize: number, sep: number): GPTConfig | LlamaConfig {
  if (config.arch === 'llama') {
    return {
      ...llamaPreset(config.preset, { vocabSize, layers: config.layers, dims: config.dims, heads: config.heads }), max_position_embeddings: config.blockSize, bos_token_id: sep, eos_token_id: sep,
      ...(config.freezeEmbeddings ? { tie_word_embeddings: false } : {}),
    };
  }
  return {
    ...gptPreset(config.preset, { vocabSize, layers: config.layers, dims: config.dims, heads: config.heads, dropout: config.dropout }),
    n_positions: config.blockSize, bos_token_id: sep, eos_token_id: sep,
    // Frozen input embeddings need an output head of their own to learn.
    ...(config.freezeEmbeddings ? { tie_word_embeddings: false } : {}),
  };
}

function pick<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What a GPT or Llama run kept before its checkpoints stored these settings: the defaults a resume compares with. */
export const CLM_RESUME_DEFAULTS: Record<string, unknown> = { ...PRETRAIN_DEFAULTS, arch: 'gpt', embeddingInit: 'random', freezeEmbeddings: false };

const PRETRAIN_OPTION_KEYS: OptionKeys<PretrainOptions> = {
  ...defaultKeys(PRETRAIN_DEFAULTS),
  arch: true, layers: true, dims: true, heads: true, tokenizer: true, initFrom: true, parentFingerprint: true, embeddingInit: true,
  freezeEmbeddings: true, out: true, resume: true, maxMinutes: true, samplePrompts: true, sampleTokens: true, log: true, progress: true,
};

/** pretrain's options checked before anything is read or written (see option-checks.ts). */
export function checkPretrainOptions(opts: PretrainOptions): void {
  refuseUnknownOptions('pretrain', opts, PRETRAIN_OPTION_KEYS);
  checkOptionValues('pretrain', opts as Record<string, unknown>, {
    ...RUN_SETTING_SPECS, objective: { oneOf: ['clm'] }, preset: { type: 'string' }, arch: { oneOf: ['gpt', 'llama'] },
    embeddingInit: { oneOf: ['random', 'ppmi'] }, blockSize: { int: 2 }, initFrom: { type: 'string' }, freezeEmbeddings: { type: 'boolean' },
    samplePrompts: 'strings', sampleTokens: { int: 1 },
  });
  checkBetas('pretrain', opts.betas);
}

export async function pretrain(opts: PretrainOptions & { arch: 'llama' }): Promise<PretrainResult<LlamaConfig>>;
export async function pretrain(opts?: PretrainOptions): Promise<PretrainResult>;
export async function pretrain(opts: PretrainOptions = {}): Promise<PretrainResult<GPTConfig | LlamaConfig>> {
  checkPretrainOptions(opts);
  const log = opts.log ?? ((m: string) => console.log(m));
  const tStart = performance.now();
  const { out, resume, maxMinutes, samplePrompts, sampleTokens, log: _log, progress, ...given } = opts;
  // A limit of 0 minutes would stop before the first step and save an untrained model.
  if (maxMinutes !== undefined && !(maxMinutes > 0)) throw new RangeError(`maxMinutes must be > 0, got ${maxMinutes}`);

  let config: PretrainConfig;
  let runDir: string;
  let tokenizer: Tokenizer | null = null;
  let modelConfig: GPTConfig | LlamaConfig | null = null;
  let checkpoint: ReturnType<typeof readCheckpoint> | undefined;
  if (resume) {
    if (!existsSync(join(resume, 'trainer_state.json'))) recoverCheckpoints(resume); // a run directory: undo a swap cut short by a kill
    checkpoint = readCheckpoint(resume); // validates everything before any write
    runDir = runDirOf(checkpoint.dir);
    const mc = readAnyModelConfig(checkpoint.dir);
    if (mc.model_type === 'bert') throw new Error(`--resume: ${checkpoint.dir} holds a ${mc.model_type} model, not a GPT or Llama (resume it with pretrainBert)`);
    const run = checkpoint.state.run;
    checkResumeSettings({ resume, runDir, run, defaults: CLM_RESUME_DEFAULTS, modelConfig: mc, given, out });
    config = resumedSettings(PRETRAIN_DEFAULTS, run, given);
    const idle = nothingToTrain(checkpoint.state.step, config.steps);
    if (idle) throw new PrimerError('NOTHING_TO_TRAIN', idle);
    tokenizer = loadTokenizerJson(checkpoint.dir);
    modelConfig = mc;
    log(`resuming ${runDir} from step ${checkpoint.state.step} (${checkpoint.dir})`);
  } else {
    config = { ...PRETRAIN_DEFAULTS, ...pick(given) };
    // Absolute paths, so a resume from another working directory finds the same corpus.
    config.corpus = config.corpus.map((p) => (Object.hasOwn(BUILTIN_CORPORA, p) ? p : resolve(p)));
    if (config.tokenizer) config.tokenizer = resolve(config.tokenizer);
    if (config.initFrom) {
      if (config.arch === 'llama') throw new Error('--init-from is not supported with --arch llama yet');
      config.initFrom = resolve(config.initFrom);
      if (config.tokenizer) throw new Error('--init-from uses the parent model\'s tokenizer; do not combine it with --tokenizer');
      config.tokenizer = config.initFrom;
    }
    runDir = resolve(out ?? defaultRunDir(config.preset));
    refuseOutputOverInput(runDir, { '--init-from': config.initFrom, '--tokenizer': config.initFrom ? undefined : config.tokenizer });
    startFreshRun(runDir); // refuses a resumable run; clears what a run killed before its first checkpoint left
  }
  if (config.objective !== 'clm') throw new Error(`objective "${config.objective}" is not supported by pretrain yet (only "clm")`);
  // Before the tokenizer and the data (minutes on a big corpus): a run that cannot fit is refused now.
  if (!resume && !config.initFrom && !config.tokenizer) checkMemory(modelFromPreset(config, config.vocabSize, 0), config);

  const corpus = resolveCorpus(config.corpus);
  const named = config.corpus.length > 3 ? [...config.corpus.slice(0, 3), `… ${config.corpus.length - 3} more`] : config.corpus;
  const corpusLabel = config.corpus.length ? `${named.join(', ')} (${corpus.length} files)` : `built-in corpus (${corpus.length} files)`;
  // The built-in corpus has two Gutenberg files with a few bad bytes (known, harmless): no warnings for it.
  const warn = config.corpus.length ? (m: string) => log(`warning: ${m}`) : () => {};
  let t = performance.now();
  if (!tokenizer) {
    if (config.tokenizer) {
      tokenizer = loadTokenizerJson(config.tokenizer);
      log(`tokenizer: ${config.tokenizer} (${tokenizer.vocabSize} tokens)`);
    } else {
      log(`training a byte-level BPE tokenizer (vocab ${config.vocabSize}) on ${corpusLabel}…`);
      tokenizer = await trainBpeOnCorpus(corpus, config.vocabSize, { jsonlField: config.jsonlField, warn: () => {} });
      log(`  done in ${((performance.now() - t) / 1000).toFixed(1)}s: ${tokenizer.vocabSize} tokens`);
    }
  }
  const tokenizerSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  const sep = separatorId(tokenizer);
  const streams = await tokenizeCorpus(readCorpus(corpus, { jsonlField: config.jsonlField, warn }), tokenizer, {
    separatorId: sep, valFraction: config.valFraction, seed: config.seed,
  });
  const dataSeconds = (performance.now() - t) / 1000;
  log(`data: ${describeSplit(streams)}, ${dataSeconds.toFixed(1)}s`);

  let parent: ReturnType<typeof loadModelDir> | null = null;
  if (config.initFrom && !resume) {
    parent = loadModelDir(config.initFrom);
    if (parent.kind !== 'gpt2') throw new Error(`--init-from: ${config.initFrom} holds a ${parent.kind} model, not a GPT`);
    // The default block size is for new models; a parent with a shorter context sets it.
    if (given.blockSize === undefined) config.blockSize = Math.min(config.blockSize, parent.config.n_positions);
    modelConfig = { ...parent.config, resid_pdrop: config.dropout, embd_pdrop: config.dropout, attn_pdrop: config.dropout };
    config.parentFingerprint = modelFingerprint(parent.model);
  }
  modelConfig ??= modelFromPreset(config, tokenizer.vocabSize, sep);
  const context = isLlamaConfig(modelConfig) ? modelConfig.max_position_embeddings : modelConfig.n_positions;
  if (config.blockSize > context) throw new RangeError(`block size ${config.blockSize} exceeds the model's context ${context}`);
  if (modelConfig.vocab_size < tokenizer.vocabSize) throw new RangeError(`the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${modelConfig.vocab_size}`);
  checkMemory(modelConfig, config);
  const model = isLlamaConfig(modelConfig) ? new Llama(modelConfig, config.seed) : new GPT(modelConfig, config.seed);
  if (parent) {
    // Start from the parent's exact weights (the fresh init above is overwritten).
    model.loadStateDict(new Map(parent.model.namedParameters().map(([n, p]) => [n, p.data])));
    log(`init: weights from ${config.initFrom} (fingerprint ${config.parentFingerprint!.slice(0, 12)}…); fresh optimizer and schedule`);
  } else if (config.embeddingInit === 'ppmi' && !resume) {
    initEmbeddingsFromStream(tokenEmbeddingTable(model), streams.train, { skip: [sep], seed: config.seed, what: 'token embeddings', log });
  }
  if (config.freezeEmbeddings) tokenEmbeddingTable(model).requiresGrad = false; // on resume too: it is in the stored config
  const parameters = model.numParameters();
  // A model from --init-from has its parent's shape, whatever --preset says.
  const name = config.initFrom ? `from ${config.initFrom}` : config.preset;
  const shape = isLlamaConfig(modelConfig)
    ? `Llama ${name} — ${modelConfig.num_hidden_layers} layers, ${modelConfig.hidden_size} dims, ${modelConfig.num_attention_heads} heads`
    : `GPT ${name} — ${modelConfig.n_layer} layers, ${modelConfig.n_embd} dims, ${modelConfig.n_head} heads`;
  log(`model: ${shape}, context ${context}, ${(parameters / 1e6).toFixed(2)}M parameters`);
  log(`run: ${runDir} — ${config.steps} steps × ${config.batchSize}×${config.blockSize}${config.gradAccum > 1 ? `×${config.gradAccum}` : ''} tokens, lr ${config.lr}${config.bf16 ? ', bf16' : ''}`);

  const timeLimit = maxMinutes ?? (given.steps === undefined && !resume ? DEFAULT_MAX_MINUTES : undefined);
  const lossFn = (b: ClmBatch) => crossEntropy(model.forward(b.input, b.batch, b.length).logits, b.target);
  const finalConfig = modelConfig;
  const writeExtraFiles = (dir: string) => {
    writeJsonAtomic(join(dir, 'config.json'), configJson(finalConfig), { durable: false });
    tokenizer!.save(dir);
  };
  if (config.initFrom) mkdirSync(runDir, { recursive: true });
  if (config.initFrom) writeJsonAtomic(join(runDir, 'parent.json'), { init_from: config.initFrom, parent_fingerprint: config.parentFingerprint });
  t = performance.now();
  const training = await train<ClmBatch>({
    model, lossFn,
    data: new RandomBlocks(streams.train, config.batchSize, config.blockSize, config.seed + 1),
    evalData: evalBatches(streams.val, config.batchSize, config.blockSize, config.evalBatches),
    runDir, steps: config.steps, maxSeconds: timeLimit !== undefined ? timeLimit * 60 : undefined,
    lr: config.lr, minLr: config.minLr, warmupSteps: config.warmupSteps, decay: config.decay,
    weightDecay: config.weightDecay, betas: config.betas, gradClip: config.gradClip, gradAccum: config.gradAccum, bf16: config.bf16,
    evalEvery: config.evalEvery, checkpointEvery: config.checkpointEvery, keepCheckpoints: config.keepCheckpoints,
    rngs: model instanceof GPT ? { dropout: model.transformer.rng } : {}, run: { ...config }, writeExtraFiles,
    resumeFrom: checkpoint, progress, logEvery: Math.max(1, Math.round(config.steps / 50)),
  });
  const trainingSeconds = (performance.now() - t) / 1000;
  writeModelFiles(runDir, model, finalConfig, tokenizer);
  // No step in this invocation (a time limit hit at once): there is no training loss to report.
  const trainLoss = Number.isNaN(training.trainLoss) ? 'no step trained' : `train loss ${training.trainLoss.toFixed(4)}`;
  log(`${training.status === 'completed' ? 'finished' : training.status} at step ${training.step}: ${trainLoss}`
    + `${training.valLoss !== null ? `, val loss ${training.valLoss.toFixed(4)} (perplexity ${Math.exp(training.valLoss).toFixed(1)})` : ''}, `
    + `${Math.round(training.tokensPerSecond).toLocaleString('en-US')} tokens/s, ${trainingSeconds.toFixed(0)}s; model saved to ${runDir}`);

  const samples: PretrainResult['samples'] = [];
  if (training.status !== 'interrupted') {
    const prompts = samplePrompts ?? defaultSamplePrompts(tokenizer.decode(Array.from(streams.train.subarray(0, 1024)), { skipSpecialTokens: true }));
    for (const prompt of prompts) {
      const text = generateText(model, tokenizer, prompt, { maxTokens: sampleTokens ?? 40, temperature: 0.8, topK: 40, seed: config.seed });
      samples.push({ prompt, text });
    }
  }
  return {
    runDir, config, modelConfig: finalConfig, parameters, trainTokens: streams.train.length, valTokens: streams.val.length, training, samples,
    seconds: { tokenizer: tokenizerSeconds, data: dataSeconds, training: trainingSeconds, total: (performance.now() - tStart) / 1000 },
  };
}
