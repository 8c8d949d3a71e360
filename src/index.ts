/**
 * Primer's public library API. The CLI (src/cli) is a thin layer over exactly these functions.
 *
 *   import { pretrain, loadModelDir, generateText, loadTokenizer } from 'primer';
 */

// Engine: tensors, autograd, ops, optimizers, backends.
export * from './tensor/index.ts';
export { backend, setBackend, setNumThreads, getNumThreads, type BackendName } from './backend/index.ts';
export { missingNativeMethods } from './backend/native.ts';

// Models.
export { Module } from './nn/module.ts';
export { Linear, LayerNorm, Embedding } from './nn/layers.ts';
export { GPT, GPT2Model, shiftLabels, type GPTConfig, type CausalLMOutput } from './models/gpt.ts';
export { Bert, BertModel, type BertConfig, type BertInputs, type PreTrainingOutput } from './models/bert.ts';
export { gptPreset, bertPreset, gptParameterCount, PRESET_NAMES, type PresetName, type ModelOverrides } from './models/presets.ts';
export {
  loadModelDir, saveModelDir, readModelConfig, parseModelConfig, createModel, loadWeights, writeModelFiles, ModelLoadError,
  type LoadedModel, type ModelConfig,
} from './models/load.ts';

// Files.
export { readSafetensors, parseSafetensors, writeSafetensors, serializeSafetensors, SafetensorsError } from './io/safetensors.ts';
export { writeFileAtomic, writeJsonAtomic } from './io/atomic.ts';
export { PrimerError } from './io/errors.ts';

// Tokenizers.
export { loadTokenizer, trainTokenizer, BpeTokenizer, WordPieceTokenizer, type Tokenizer, type Encoding, type EncodeOptions } from './tokenizers/index.ts';

// Data.
export { readCorpus, listCorpusFiles, CorpusError, type CorpusChunk, type CorpusOptions } from './data/corpus.ts';
export { builtinCorpusFiles } from './data/builtin.ts';
export { tokenizeCorpus, RandomBlocks, evalBatches, type ClmBatch, type BatchSource, type TokenStreams } from './data/clm.ts';
export { trainBpeOnCorpus, separatorId } from './data/tokenizer.ts';

// Training.
export { train, evaluateLoss, decayGroups, TrainingDivergedError, type TrainerOptions, type TrainResult } from './train/trainer.ts';
export {
  saveCheckpoint, readCheckpoint, restoreCheckpoint, listCheckpoints, resolveCheckpointDir, CheckpointError,
  type Checkpoint, type TrainerState,
} from './train/checkpoint.ts';
export { createProgress, type ProgressReporter } from './train/progress.ts';
export { pretrain, PRETRAIN_DEFAULTS, type PretrainOptions, type PretrainResult, type PretrainConfig } from './train/pretrain.ts';
export { verifyModel, type VerifyOptions, type VerifyReport } from './train/verify.ts';

// Inference.
export { generateIds, generateText, sampleToken, type GenerateOptions, type SamplingOptions } from './infer/generate.ts';
