/**
 * BERT pre-training end to end — the library function behind `primer pretrain --objective mlm|mlm+nsp`:
 *   prepared shards (or: corpus → WordPiece tokenizer, trained or given → `data prepare` into <run>/data)
 *   → BertForPreTraining from a preset → the shared trainer (trainer.ts) on packed MLM blocks or
 *   NSP sentence pairs with dynamic masking → evaluation (MLM loss, MLM accuracy, NSP accuracy) →
 *   checkpoints and the final model in Hugging Face BertForPreTraining layout.
 *
 * The trainer reports one validation loss (MLM + NSP loss); the BERT metrics are gathered by the loss
 * function itself while the trainer evaluates (it calls it on each fixed evaluation batch, in order,
 * with the model in eval mode) and appended to metrics.jsonl as {step, mlm_loss, mlm_accuracy, nsp_accuracy}.
 */
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { WordPieceTrainer } from '../tokenizers/wordpiece-train.ts';
import { Bert, initLocalAttention, initPoolerIdentity, type BertConfig } from '../models/bert.ts';
import { bertPreset, type PresetName } from '../models/presets.ts';
import { configJson, readModelConfig, writeModelFiles } from '../models/load.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import type { Rng } from '../util/random.ts';
import { resolveCorpus } from '../data/builtin.ts';
import { readCorpus } from '../data/corpus.ts';
import { prepareData } from '../data/prepare.ts';
import { openShards, type ShardSplit } from '../data/shards.ts';
import { maskingOptionsFor } from '../data/mlm.ts';
import {
  MlmBlocks, NspBatches, bertSpecialIds, mlmEvalBatches, nspEvalBatches, type BertBatch, type NspBatchOptions,
} from '../data/bert-batches.ts';
import { readCheckpoint, recoverCheckpoints, resumedSettings, runDirOf, startFreshRun } from './checkpoint.ts';
import { checkResumeSettings, nothingToTrain } from './resume-settings.ts';
import { checkBetas, checkOptionValues, defaultKeys, refuseUnknownOptions, RUN_SETTING_SPECS, type OptionKeys } from './option-checks.ts';
import { PrimerError } from '../io/errors.ts';
import { train, type TrainResult } from './trainer.ts';
import type { ProgressReporter } from './progress.ts';
import type { RunSettings } from './pretrain.ts';
import { MetricsAccumulator, bertInputs, evaluateBert, type BertMetrics } from './bert-metrics.ts';
import { initEmbeddingsFromStream } from './distributional.ts';

/** The masking rate of the held-out evaluation, whatever the training rate. */
export const EVAL_MASK_PROBABILITY = 0.15;

/** BERT-specific settings on top of the shared run settings. */
export interface BertPretrainConfig extends RunSettings {
  objective: 'mlm' | 'mlm+nsp';
  /** A directory written by `primer data prepare`; else `corpus` is prepared into <run>/data. */
  data?: string;
  /** Corpus paths, `builtin` or `builtin:zh` (empty = the English built-in corpus) when no `data` is given. */
  corpus: string[];
  jsonlField: string;
  documents: 'file' | 'blank-line';
  /** tokenizer.json or directory; default: a WordPiece trained on the corpus. */
  tokenizer?: string;
  vocabSize: number;
  lowercase: boolean;
  preset: PresetName;
  layers?: number;
  dims?: number;
  heads?: number;
  intermediate?: number;
  maxSeqLength: number;
  eps: number;
  maskProbability: number;
  wholeWordMask: boolean;
  shortSeqProb: number;
  /**
   * Word embeddings (tied to the MLM decoder, trained): 'ppmi' (default), the corpus's co-occurrence
   * geometry (distributional.ts, as for the GPT), which gives the [CLS] position topical vectors to
   * compare the two segments with (NSP: +2–4 points held-out, +7–11 on speech-vs-speech pairs, MLM
   * accuracy −0.7; BENCHMARKS.md, "BERT … session 13"), or 'random' (N(0, 0.02²), BERT's).
   */
  embeddingInit: 'random' | 'ppmi';
  /**
   * BertConfig.position_embedding_type of a new model: 'relative_key' (default) learns a vector per
   * distance in every layer; 'absolute' is BERT's original learned position embeddings.
   */
  positionEmbedding: 'absolute' | 'relative_key';
  /**
   * 'local' (default with relative_key): the heads start on the neighbouring tokens (initLocalAttention),
   * which takes a word-level BERT off the unigram plateau in the first hundred steps; 'random': BERT's.
   */
  attentionInit: 'local' | 'random';
  /** 'identity' (default): the pooler starts as the identity (initPoolerIdentity); 'random': BERT's. */
  poolerInit: 'identity' | 'random';
  /** Held-out batches of the final evaluation (default 32: 512 NSP pairs). */
  finalEvalBatches: number;
  /**
   * Documents longer than this are cut into parts (between lines) before the train/validation split
   * (default 32,768 characters): the split then holds out `valFraction` of the text in many small pieces
   * of every source, instead of a few whole documents whose size and genre vary with the seed (a
   * document split of the built-in corpus held out 0.8–24 % of its tokens; BENCHMARKS.md, "BERT").
   */
  maxDocumentChars: number;
}

/**
 * Optimiser defaults as in ../shared/bench/ref_bert.py (AdamW lr 2e-3, β₂ 0.99, ε 1e-6, weight decay 0.01,
 * linear warmup then decay). The run is sized for ≤ 10 minutes on 2 cores (BENCHMARKS.md, "BERT on the
 * built-in corpus, sessions 12 and 13"): the tiny preset, 2,400 steps of 16 × 128, no dropout (one pass over the
 * corpus: the model underfits), 40 % masking (2.7× the targets of BERT's 15 % at the same cost; Wettig
 * et al. 2022; held-out metrics still mask 15 %). With BERT's absolute positions and random attention a
 * word-level BERT this small sits for thousands of steps at ≈ 6 nats with near-uniform attention; the
 * relative_key distances with heads that start on the neighbouring tokens leave that plateau within
 * ~100 steps, and the identity pooler lets NSP's gradient reach the encoder from the start.
 */
export const BERT_PRETRAIN_DEFAULTS: BertPretrainConfig = {
  objective: 'mlm+nsp', corpus: [], jsonlField: 'text', documents: 'file', vocabSize: 8192, lowercase: true, preset: 'tiny',
  maxSeqLength: 128, batchSize: 16, gradAccum: 1, steps: 2400, lr: 2e-3, minLr: 2e-4, warmupSteps: 100, decay: 'linear',
  weightDecay: 0.01, betas: [0.9, 0.99], eps: 1e-6, gradClip: 1, dropout: 0, bf16: false, maskProbability: 0.4, wholeWordMask: false,
  shortSeqProb: 0.1, embeddingInit: 'ppmi', positionEmbedding: 'relative_key', attentionInit: 'local', poolerInit: 'identity', evalEvery: 100, evalBatches: 8, finalEvalBatches: 32, maxDocumentChars: 32768, checkpointEvery: 200, keepCheckpoints: 3, valFraction: 0.02, seed: 1337,
};

export interface BertPretrainOptions extends Partial<BertPretrainConfig> {
  out?: string;
  resume?: string;
  maxMinutes?: number;
  /** Threads for `data prepare` (default: all cores; 0 = on the main thread). */
  workers?: number;
  log?: (message: string) => void;
  progress?: ProgressReporter | false;
  /** Called with the freshly built model before training (not on resume): experiments with other initialisations. */
  initialize?: (model: Bert) => void;
}

export interface BertPretrainResult {
  runDir: string;
  config: BertPretrainConfig;
  modelConfig: BertConfig;
  parameters: number;
  training: TrainResult;
  /** Final evaluation on `finalEvalBatches` held-out batches (the periodic evaluations use `evalBatches`). */
  metrics: BertMetrics;
  /** Every evaluation during training. */
  history: Array<{ step: number } & BertMetrics>;
  seconds: { data: number; training: number; total: number };
}

function pick<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function trainWordPieceOnCorpus(paths: string[], c: BertPretrainConfig): Promise<Tokenizer> {
  const trainer = new WordPieceTrainer({ vocabSize: c.vocabSize, normalizer: { lowercase: c.lowercase } });
  for await (const chunk of readCorpus(paths, { jsonlField: c.jsonlField, warn: () => {} })) trainer.feed(chunk.text);
  return trainer.train();
}

/** The split to evaluate on: val when it is big enough, else train (with a warning). */
function evalSplit(train: ShardSplit, val: ShardSplit, c: BertPretrainConfig, log: (m: string) => void): ShardSplit {
  const enough = c.objective === 'mlm' ? val.tokenCount >= c.maxSeqLength : val.count >= 2;
  if (!enough) log(`warning: the validation split is too small (${val.count} documents, ${val.tokenCount} tokens); evaluating on training data`);
  return enough ? val : train;
}

const BERT_OPTION_KEYS: OptionKeys<BertPretrainOptions> = {
  ...defaultKeys(BERT_PRETRAIN_DEFAULTS),
  data: true, tokenizer: true, layers: true, dims: true, heads: true, intermediate: true,
  out: true, resume: true, maxMinutes: true, workers: true, log: true, progress: true, initialize: true,
};

/** pretrainBert's options checked before anything is read or written (see option-checks.ts). */
function checkBertPretrainOptions(opts: BertPretrainOptions): void {
  // GPT's name for the sequence length is the likeliest slip: say which one BERT takes.
  if ((opts as { blockSize?: unknown }).blockSize !== undefined) throw new TypeError('pretrainBert: unknown option "blockSize" (BERT\'s sequence length is maxSeqLength)');
  refuseUnknownOptions('pretrainBert', opts, BERT_OPTION_KEYS);
  checkOptionValues('pretrainBert', opts as Record<string, unknown>, {
    ...RUN_SETTING_SPECS, objective: { oneOf: ['mlm', 'mlm+nsp'] }, preset: { type: 'string' }, data: { type: 'string' },
    documents: { oneOf: ['file', 'blank-line'] }, lowercase: { type: 'boolean' }, intermediate: { int: 1 }, maxSeqLength: { int: 5 },
    eps: { min: 0, exclusive: true }, maskProbability: { min: 0, exclusive: true }, wholeWordMask: { type: 'boolean' }, shortSeqProb: { min: 0 },
    embeddingInit: { oneOf: ['random', 'ppmi'] }, positionEmbedding: { oneOf: ['absolute', 'relative_key'] },
    attentionInit: { oneOf: ['local', 'random'] }, poolerInit: { oneOf: ['identity', 'random'] }, finalEvalBatches: { int: 1 },
    maxDocumentChars: { int: 1 }, workers: { int: 0 }, initialize: { type: 'function' },
  });
  checkBetas('pretrainBert', opts.betas);
}

export async function pretrainBert(opts: BertPretrainOptions = {}): Promise<BertPretrainResult> {
  checkBertPretrainOptions(opts);
  const log = opts.log ?? ((m: string) => console.log(m));
  const tStart = performance.now();
  const { out, resume, maxMinutes, workers, log: _l, progress, initialize: _i, ...given } = opts;
  let config: BertPretrainConfig;
  let runDir: string;
  let checkpoint: ReturnType<typeof readCheckpoint> | undefined;
  let modelConfig: BertConfig | null = null;
  // A limit of 0 minutes would stop before the first step and save an untrained model.
  if (maxMinutes !== undefined && !(maxMinutes > 0)) throw new RangeError(`maxMinutes must be > 0, got ${maxMinutes}`);
  if (resume) {
    if (!existsSync(join(resume, 'trainer_state.json'))) recoverCheckpoints(resume); // a run directory: undo a swap cut short by a kill
    checkpoint = readCheckpoint(resume);
    runDir = runDirOf(checkpoint.dir);
    const mc = readModelConfig(checkpoint.dir);
    if (mc.model_type !== 'bert') throw new Error(`--resume: ${checkpoint.dir} holds a ${mc.model_type} model, not a BERT (resume it with pretrain)`);
    checkResumeSettings({ resume, runDir, run: checkpoint.state.run, defaults: BERT_PRETRAIN_DEFAULTS, modelConfig: mc, given, out });
    config = resumedSettings(BERT_PRETRAIN_DEFAULTS, checkpoint.state.run, given);
    const idle = nothingToTrain(checkpoint.state.step, config.steps);
    if (idle) throw new PrimerError('NOTHING_TO_TRAIN', idle);
    modelConfig = mc;
    log(`resuming ${runDir} from step ${checkpoint.state.step}`);
  } else {
    // Local attention is a relative_key initialisation: absolute positions default to BERT's random one.
    const attentionInit = given.attentionInit ?? (given.positionEmbedding === 'absolute' ? 'random' : undefined);
    config = { ...BERT_PRETRAIN_DEFAULTS, ...pick({ ...given, attentionInit }) };
    if (config.attentionInit === 'local' && config.positionEmbedding !== 'relative_key') {
      throw new RangeError('attention init "local" needs position embedding "relative_key" (or use attention init "random")');
    }
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    runDir = resolve(out ?? join('runs', `bert-${config.preset}-${stamp}`));
    startFreshRun(runDir);
  }
  if (config.objective !== 'mlm' && config.objective !== 'mlm+nsp') throw new RangeError(`pretrainBert: objective must be "mlm" or "mlm+nsp", got "${config.objective}"`);
  mkdirSync(runDir, { recursive: true });

  // Data: prepared shards, prepared now into <run>/data (resumable), or reopened on resume.
  let t = performance.now();
  if (!config.data) {
    const dataDir = join(runDir, 'data');
    let tokenizer: Tokenizer;
    const corpus = resolveCorpus(config.corpus);
    if (existsSync(join(dataDir, 'tokenizer.json'))) tokenizer = loadTokenizer(dataDir);
    else if (config.tokenizer) tokenizer = loadTokenizer(config.tokenizer);
    else {
      log(`training a WordPiece tokenizer (vocab ${config.vocabSize}) on ${config.corpus.length ? config.corpus.join(', ') : 'the built-in corpus'}…`);
      tokenizer = await trainWordPieceOnCorpus(corpus, config);
    }
    const prepared = await prepareData({
      tokenizer, corpus, out: dataDir, valFraction: config.valFraction, jsonlField: config.jsonlField, documents: config.documents,
      seed: config.seed, maxDocumentChars: config.maxDocumentChars, workers, warn: (m) => log(`warning: ${m}`),
    });
    if (!prepared.alreadyComplete) log(`data: prepared ${prepared.manifest.counts.trainTokens.toLocaleString('en-US')} training tokens into ${dataDir} (${prepared.mbPerSecond.toFixed(1)} MB/s)`);
    config = { ...config, data: dataDir };
  }
  const data = openShards(config.data!);
  const tokenizer = loadTokenizer(config.data!);
  const dataSeconds = (performance.now() - t) / 1000;
  const ids = bertSpecialIds(tokenizer);
  const masking = maskingOptionsFor(tokenizer, { probability: config.maskProbability, wholeWord: config.wholeWordMask });
  log(`data: ${data.train.count} training documents (${data.train.tokenCount.toLocaleString('en-US')} tokens), ${data.val.count} validation documents`);

  modelConfig ??= {
    ...bertPreset(config.preset, { vocabSize: tokenizer.vocabSize, layers: config.layers, dims: config.dims, heads: config.heads, dropout: config.dropout }),
    ...(config.intermediate ? { intermediate_size: config.intermediate } : {}),
    pad_token_id: ids.pad,
    ...(config.positionEmbedding === 'absolute' ? {} : { position_embedding_type: config.positionEmbedding }),
  };
  if (config.maxSeqLength > modelConfig.max_position_embeddings) throw new RangeError(`maxSeqLength ${config.maxSeqLength} exceeds max_position_embeddings ${modelConfig.max_position_embeddings}`);
  if (modelConfig.vocab_size < tokenizer.vocabSize) throw new RangeError(`the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${modelConfig.vocab_size}`);
  const model = new Bert(modelConfig, config.seed);
  if (!checkpoint && config.embeddingInit === 'ppmi') {
    initEmbeddingsFromStream(model.bert.embeddings.word_embeddings.weight, data.train.stream(ids.sep), { skip: [ids.pad, ids.cls, ids.sep, ids.mask], seed: config.seed, what: 'word embeddings', log });
  }
  if (!checkpoint && config.attentionInit === 'local') initLocalAttention(model);
  if (!checkpoint && config.poolerInit === 'identity') initPoolerIdentity(model);
  if (!checkpoint) opts.initialize?.(model);
  // The dropout stream is the Rng the model was built with; it must survive a resume.
  const dropoutRng = model.bert.embeddings.rng;
  const parameters = model.numParameters();
  log(`model: BERT ${config.preset} — ${modelConfig.num_hidden_layers} layers, ${modelConfig.hidden_size} hidden, ${(parameters / 1e6).toFixed(2)}M parameters; objective ${config.objective}`);

  const batchOptions: NspBatchOptions = { batchSize: config.batchSize, maxSeqLength: config.maxSeqLength, seed: config.seed + 1, ids, masking, shortSeqProb: config.shortSeqProb };
  const evalFrom = evalSplit(data.train, data.val, config, log);
  const source = config.objective === 'mlm' ? new MlmBlocks(data.train, batchOptions) : new NspBatches(data.train, batchOptions);
  // Held-out metrics always mask BERT's standard 15 %, so that runs trained at other rates compare.
  const evalOptions: NspBatchOptions = { ...batchOptions, masking: { ...masking, probability: EVAL_MASK_PROBABILITY } };
  const evalData = config.objective === 'mlm' ? mlmEvalBatches(evalFrom, evalOptions, config.evalBatches) : nspEvalBatches(evalFrom, evalOptions, config.evalBatches);

  const history: BertPretrainResult['history'] = [];
  const metricsPath = join(runDir, 'metrics.jsonl');
  let acc = new MetricsAccumulator();
  const lossFn = (b: BertBatch) => {
    // Training needs the loss only: the MLM head runs on the masked positions; evaluation's metrics need every row.
    const outputs = model.forward(bertInputs(b), b.labels, b.nspLabels, { maskedOnly: model.training });
    if (!model.training && evalData.includes(b)) {
      if (b === evalData[0]) acc = new MetricsAccumulator();
      acc.add(outputs, b);
      if (b === evalData[evalData.length - 1]) {
        const step = Math.round(source.state().batches / config.gradAccum);
        const m = acc.result();
        history.push({ step, ...m });
        appendFileSync(metricsPath, JSON.stringify({ step, mlm_loss: m.mlmLoss, mlm_accuracy: m.mlmAccuracy, nsp_accuracy: m.nspAccuracy }) + '\n');
        log(`step ${step}: MLM loss ${m.mlmLoss.toFixed(4)}, MLM accuracy ${(100 * m.mlmAccuracy).toFixed(1)}%${m.nspAccuracy !== null ? `, NSP accuracy ${(100 * m.nspAccuracy).toFixed(1)}%` : ''}`);
      }
    }
    return outputs.loss!;
  };
  if (!checkpoint) {
    // The untrained model's metrics, so that every run shows where it started.
    const m = evaluateBert(model, evalData, config.bf16);
    history.push({ step: 0, ...m });
    appendFileSync(metricsPath, JSON.stringify({ step: 0, mlm_loss: m.mlmLoss, mlm_accuracy: m.mlmAccuracy, nsp_accuracy: m.nspAccuracy }) + '\n');
  }
  const finalConfig = modelConfig;
  t = performance.now();
  const training = await train<BertBatch>({
    model, lossFn, data: source, evalData, runDir, steps: config.steps, maxSeconds: maxMinutes !== undefined ? maxMinutes * 60 : undefined,
    lr: config.lr, minLr: config.minLr, warmupSteps: config.warmupSteps, decay: config.decay, weightDecay: config.weightDecay,
    betas: config.betas, eps: config.eps, gradClip: config.gradClip, gradAccum: config.gradAccum, bf16: config.bf16,
    evalEvery: config.evalEvery, checkpointEvery: config.checkpointEvery, keepCheckpoints: config.keepCheckpoints,
    rngs: { dropout: dropoutRng }, run: { ...config },
    writeExtraFiles: (dir) => {
      writeJsonAtomic(join(dir, 'config.json'), configJson(finalConfig), { durable: false });
      tokenizer.save(dir);
    },
    resumeFrom: checkpoint, progress, logEvery: Math.max(1, Math.round(config.steps / 50)),
  });
  const trainingSeconds = (performance.now() - t) / 1000;
  writeModelFiles(runDir, model, finalConfig, tokenizer);
  // The final figures come from a larger held-out sample than the periodic evaluations: NSP accuracy over
  // 128 pairs (8 batches) has a standard error of about 4 points.
  const finalData = config.objective === 'mlm' ? mlmEvalBatches(evalFrom, evalOptions, config.finalEvalBatches)
    : nspEvalBatches(evalFrom, evalOptions, config.finalEvalBatches);
  const metrics = evaluateBert(model, finalData, config.bf16);
  appendFileSync(metricsPath, JSON.stringify({ step: training.step, final: true, mlm_loss: metrics.mlmLoss, mlm_accuracy: metrics.mlmAccuracy, nsp_accuracy: metrics.nspAccuracy, pairs: metrics.pairs, predictions: metrics.predictions }) + '\n');
  log(`${training.status === 'completed' ? 'finished' : training.status} at step ${training.step}: MLM loss ${metrics.mlmLoss.toFixed(4)}, `
    + `MLM accuracy ${(100 * metrics.mlmAccuracy).toFixed(1)}%${metrics.nspAccuracy !== null ? `, NSP accuracy ${(100 * metrics.nspAccuracy).toFixed(1)}%` : ''}, `
    + `${Math.round(training.tokensPerSecond).toLocaleString('en-US')} tokens/s (held-out: ${metrics.predictions.toLocaleString('en-US')} masked tokens`
    + `${metrics.nspAccuracy !== null ? `, ${metrics.pairs} pairs` : ''}); model saved to ${runDir}`);
  return {
    runDir, config, modelConfig: finalConfig, parameters, training, metrics, history,
    seconds: { data: dataSeconds, training: trainingSeconds, total: (performance.now() - tStart) / 1000 },
  };
}
