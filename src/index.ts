/**
 * Primer's public library API. The CLI (src/cli) is a thin layer over exactly these functions.
 *
 *   import { pretrain, loadModelDir, generateText, loadTokenizer, finetune, serve } from 'primer';
 *
 * An installed package runs the JavaScript and .d.ts that `npm pack` emits from these sources into dist/.
 */

// Engine: tensors, autograd, ops, optimizers, backends.
export * from './tensor/index.ts';
export { softmaxRow, argmax } from './util/math.ts';
export { backend, setBackend, setNumThreads, getNumThreads, type BackendName } from './backend/index.ts';
export { missingNativeMethods } from './backend/native.ts';

// Models.
export { Module } from './nn/module.ts';
export { Linear, LayerNorm, Embedding } from './nn/layers.ts';
export { GPT, GPT2Model, shiftLabels, type GPTConfig, type CausalLMOutput, type GPTForwardOptions } from './models/gpt.ts';
export { Bert, BertModel, type BertConfig, type BertInputs, type PreTrainingOutput } from './models/bert.ts';
export {
  Llama, LlamaModel, RMSNorm, llamaConfigSchema, ropeInvFreq,
  type LlamaConfig, type Llama3RopeScaling, type LlamaForwardOptions, type LlamaBodyOptions,
} from './models/llama.ts';
export {
  LlamaForSequenceClassification, lastNonPadIndices, type LlamaClassifierConfig, type SequenceClassifierOutput,
} from './models/llama-heads.ts';
export { gptPreset, bertPreset, llamaPreset, gptParameterCount, PRESET_NAMES, type PresetName, type ModelOverrides } from './models/presets.ts';
export {
  loadModelDir, saveModelDir, readModelConfig, parseModelConfig, createModel, loadWeights, writeModelFiles, ModelLoadError,
  loadAnyModelDir, readAnyModelConfig, parseAnyModelConfig, isLlamaConfig,
  type LoadedModel, type ModelConfig, type AnyLoadedModel, type AnyModelConfig, type ModelKind,
} from './models/load.ts';

// Files.
export {
  readSafetensors, parseSafetensors, writeSafetensors, serializeSafetensors, SafetensorsError, SafetensorsFile,
  type SafetensorsDtype, type SerializeOptions, type TensorsToWrite,
} from './io/safetensors.ts';
export { writeFileAtomic, writeJsonAtomic, FileWriteError, type AtomicWriteOptions } from './io/atomic.ts';
// Every error a bad input or file causes is a PrimerError; its subclasses and their `code` types are exported so callers can branch on them.
export { PrimerError, type SafetensorsErrorCode } from './io/errors.ts';

// Tokenizers.
export {
  loadTokenizer, trainTokenizer, BpeTokenizer, WordPieceTokenizer, type Tokenizer, type Encoding, type EncodeOptions, type TrainTokenizerOptions,
} from './tokenizers/index.ts';
export type { TruncationStrategy, Side } from './tokenizers/types.ts';
export { TokenizerFormatError } from './tokenizers/json-fields.ts';

// Data.
export { readCorpus, listCorpusFiles, CorpusError, type CorpusChunk, type CorpusOptions } from './data/corpus.ts';
export { builtinCorpusFiles } from './data/builtin.ts';
export { tokenizeCorpus, RandomBlocks, evalBatches, type ClmBatch, type TokenStreams, type TokenizeCorpusOptions } from './data/clm.ts';
export { ShardError } from './data/shards.ts';
export { trainBpeOnCorpus, separatorId } from './data/tokenizer.ts';

// Training.
export { train, evaluateLoss, decayGroups, TrainingDivergedError, type TrainerOptions, type TrainResult, type BatchSource } from './train/trainer.ts';
export {
  saveCheckpoint, readCheckpoint, restoreCheckpoint, listCheckpoints, resolveCheckpointDir, CheckpointError,
  type Checkpoint, type TrainerState, type SaveCheckpointOptions,
} from './train/checkpoint.ts';
export type { StopSignal } from './train/signals.ts';
export { createProgress, type ProgressReporter, type ProgressInfo } from './train/progress.ts';
export { pretrain, PRETRAIN_DEFAULTS, type PretrainOptions, type PretrainResult, type PretrainConfig, type RunSettings } from './train/pretrain.ts';
export { verifyModel, type VerifyOptions, type VerifyReport, type TensorCheck } from './train/verify.ts';

// Inference.
export { generateIds, generateText, sampleToken, type GenerateOptions, type GenerateTextOptions, type SamplingOptions } from './infer/generate.ts';
export {
  complete, streamCompletions, streamCompletionsAsync, generateBatchIds, decodeSteps, encodePrompt,
  type DecodeOptions, type TextDecodeOptions, type Completion, type TextEvent, type StepEvent,
} from './infer/decode.ts';
export { KVCache, transposedHead, decoderContext, type CausalDecoder } from './infer/kv-cache.ts';
export { DecodeBatch, type Sequence, type FinishReason } from './infer/batch.ts';
export { fillMask, loadBert, type FillMaskResult, type MaskPrediction } from './infer/fill-mask.ts';
export { isNextProbability } from './infer/nsp.ts';

// BERT pre-training (masked LM + next-sentence prediction).
export { pretrainBert, BERT_PRETRAIN_DEFAULTS, type BertPretrainOptions, type BertPretrainResult, type BertPretrainConfig } from './train/bert-pretrain.ts';
export type { BertMetrics } from './train/bert-metrics.ts';

// Fine-tuning for tasks: heads, data, training, evaluation, embeddings and retrieval.
export {
  TaskModel, SequenceClassifier, TokenClassifier, QuestionAnswering, createTaskModel, type Backbone, type Pooling, type HeadOptions,
  type ModelInputs, type ClassifierOutput, type QAOutput,
} from './models/heads.ts';
export { loadTaskModelDir, saveTaskModelDir, loadBackbone } from './models/model-dir.ts';
export { contextLength } from './models/heads.ts';
export { LabelMap } from './models/labels.ts';
export {
  finetuneTask, loadTaskSplits, buildTaskModel, evaluateSplit, testSplitName, taskTypeOfFile,
  type TaskFinetuneOptions, type TaskFinetuneResult, type TaskAdapter, type TaskType, type TaskDataSpec, type TaskSplits, type TaskReport, type TaskExamples,
} from './tasks/task-run.ts';
export { classifyTexts, tagText, answerQuestion, splitWords, type Classification } from './tasks/task-infer.ts';
export type { Span } from './tasks/qa.ts';
export type { EvalOptions, QAEvalOptions } from './tasks/task-eval.ts';
export {
  finetune, evaluateTask, evaluateQA, predictClasses, predictTags, freezeBackbone,
  type FinetuneOptions, type FinetuneResult, type EpochRecord, type QAReport, type FreezeOptions,
} from './tasks/finetune.ts';
export {
  readTextExamples, readTokenTagged, readSquad, TaskDataError, splitDataset,
  type TextExample, type TokenExample, type QAExample, type ColumnOptions, type TokenFileOptions,
} from './tasks/data.ts';
export type { SplitOptions, Splits } from './tasks/labels.ts';
export { loadBuiltinTask, BUILTIN_TASKS, type BuiltinTask, type BuiltinTaskName, type BuiltinTaskOptions } from './tasks/builtin.ts';
export { classificationReport, tokenClassificationReport, squadMetrics, type ClassificationReport, type TokenClassificationReport, type ClassScores } from './tasks/metrics.ts';
export { embedTexts, loadEmbedder, TextTooLongError, type EmbedOptions, type Embeddings, type EmbeddingPooling } from './tasks/embed.ts';
export { buildIndex, loadIndex, searchIndex, type SearchHit, type BuildIndexOptions, type LoadedIndex, type IndexInfo, type IndexedDocument } from './tasks/retrieval.ts';
export { evaluateFewShot, type FewShotOptions, type FewShotReport, type FewShotResult, type PromptTemplate } from './tasks/fewshot.ts';

// Adaptation: LoRA, supervised fine-tuning on conversations, chat.
export {
  LoraModel, LoraLayer, LoraError, loadLoraAdapter, readAdapterConfig, LORA_DEFAULTS, type LoraSettings, type AdapterConfig, type LoraOptions,
} from './adapt/lora.ts';
export { addTaskLora, saveTaskAdapter, loadTaskAdapter, taskLoraAdapter, loadTaskModelForInference } from './adapt/lora-task.ts';
export { mergeLoraDir, type LoraMergeResult } from './adapt/lora-merge.ts';
export { runSft, SFT_DEFAULTS, type SftOptions, type SftResult } from './adapt/sft-run.ts';
export { readSftJsonl, parseSftJsonl, SftDataError } from './adapt/sft.ts';
export { ChatSession, loadChatModel, type ChatOptions } from './adapt/chat.ts';
export {
  renderChat, renderChatText, readChatTemplate, writeChatTemplate, DEFAULT_CHAT_TEMPLATE, ChatTemplateError, type ChatMessage, type Role, type RenderContext,
} from './adapt/chat-template.ts';

// Interop: Hugging Face directories in and out, ONNX out.
export { loadPretrained, InteropError, type Pretrained, type InteropErrorCode } from './interop/import.ts';
export { exportHf, exportHfDir, type ExportHfOptions, type ExportDtype } from './interop/export-hf.ts';
export { exportOnnx, exportOnnxDir, onnxModelBytes } from './interop/onnx.ts';

// Serving: the HTTP API and web UI.
export { createServer, listen, type ServeOptions, type PrimerServer } from './serve/server.ts';
export type { SecurityOptions } from './serve/security.ts';
export type { ModelInfo } from './serve/engine.ts';
import { createServer as createPrimerServer, listen as listenPrimerServer, type ServeOptions as PrimerServeOptions } from './serve/server.ts';

/** `primer serve` as a function: starts the server and resolves once it listens (url: its base URL). */
export async function serve(o: PrimerServeOptions & { port?: number; host?: string; handleSignals?: boolean }): Promise<Awaited<ReturnType<typeof createPrimerServer>> & { url: string }> {
  const server = await createPrimerServer(o);
  const url = await listenPrimerServer(server, o.port ?? 8080, o.host ?? '127.0.0.1', o.handleSignals ?? false);
  return { ...server, url };
}
