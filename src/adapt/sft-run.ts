/**
 * The SFT run behind `primer finetune --objective sft`: model directory + JSONL → held-out split →
 * (optional LoRA adapters) → the generic trainer on response-only loss → saved model or adapter,
 * with the held-out response perplexity before and after.
 *
 * Output directory: full fine-tuning writes a model directory (config.json, model.safetensors,
 * tokenizer files with `chat_template` in tokenizer_config.json); LoRA writes the PEFT adapter
 * (adapter_config.json, adapter_model.safetensors) plus the tokenizer files, and with `mergeLora` a
 * merged model directory under <out>/merged.
 *
 * Ctrl-C (SIGINT) or SIGTERM: the trainer finishes the current step and checkpoints; the model or
 * adapter trained so far is then saved (atomic file replacement) and the result says 'interrupted'.
 * `resume` continues such a run (or extends a finished one) exactly; see sft-resume.ts.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadAnyModelDir, configJson, writeModelFiles } from '../models/load.ts';
import { GPT } from '../models/gpt.ts';
import { contextLength } from '../models/heads.ts';
import { copyGenerationConfig } from '../models/model-files.ts';
import { carryTokenizerConfig } from '../tokenizers/index.ts';
import { loadTokenizerJson, separatorId } from '../data/tokenizer.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { Rng } from '../util/random.ts';
import { train, type TrainResult } from '../train/trainer.ts';
import { startFreshRun } from '../train/checkpoint.ts';
import { modelFingerprint } from '../nn/fingerprint.ts';
import type { ProgressReporter } from '../train/progress.ts';
import type { Module } from '../nn/module.ts';
import { readChatTemplate, writeChatTemplate, type ChatMessage } from './chat-template.ts';
import { LORA_DEFAULTS, LoraModel, resolveLoraTargets, type LoraSettings } from './lora.ts';
import { loadSftData } from './instructions.ts';
import { checkResumedInputs, dataPath, examplesSha256, openSftResume, stepsForEpochs, type SftRunSettings } from './sft-resume.ts';
import { SftBatches, encodeConversation, readSftJsonl, responseLoss, sftEvalBatches, sftLoss, type CausalLM, type SftBatch, type SftExample } from './sft.ts';

/** Defaults of the SFT run (the CLI's help text shows these). */
export const SFT_DEFAULTS = {
  /** Optimizer steps when neither steps nor epochs is given. */
  steps: 200, batchSize: 8, lrFull: 1e-4, lrLora: 1e-3, weightDecayFull: 0.01, valFraction: 0.1, seed: 1234,
};

/**
 * model, data and out are required for a new run. With `resume`, every setting comes from the run's
 * checkpoint: one given anyway must equal the stored value (else RESUME_CONFLICT), except steps or
 * epochs, which may extend the run, and mergeLora (default: the run's).
 */
export interface SftOptions {
  /** Base model directory (HF layout with tokenizer.json). */
  model?: string;
  /** JSONL file, or builtin:sentiment. */
  data?: string;
  /** Separate held-out JSONL; default: a valFraction split of data. */
  valData?: string;
  out?: string;
  /** An SFT run directory (its latest checkpoint) or one checkpoint directory to continue. */
  resume?: string;
  /** Optimizer steps (default: `epochs` passes over the training examples, else SFT_DEFAULTS.steps). */
  steps?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  valFraction?: number;
  /** Tokens per example (default: the model's n_positions). */
  maxLength?: number;
  seed?: number;
  /** Chat template; default: the model directory's, else DEFAULT_CHAT_TEMPLATE. */
  chatTemplate?: string;
  /** LoRA instead of full fine-tuning; alpha defaults to 2·r, dropout to 0. On resume only the fields given are checked. */
  lora?: Partial<LoraSettings> | null;
  mergeLora?: boolean;
  log?: (message: string) => void;
  progress?: ProgressReporter | false;
}

export interface SftResult {
  out: string;
  trainExamples: number;
  valExamples: number;
  skipped: number;
  /** The held-out conversations that fit maxLength (before tokenization), e.g. to measure answers by generation. */
  heldOut: ChatMessage[][];
  trainableParameters: number;
  before: { loss: number; perplexity: number; tokens: number };
  /** null when training was interrupted (the run stops as soon as the weights are saved). */
  after: { loss: number; perplexity: number; tokens: number } | null;
  training: TrainResult;
}

function encodeAll(examples: ReturnType<typeof readSftJsonl>, encode: (m: ReturnType<typeof readSftJsonl>[number]) => SftExample | null) {
  const out: SftExample[] = [];
  const kept: typeof examples = [];
  for (const m of examples) {
    const e = encode(m);
    if (!e) continue;
    out.push(e);
    kept.push(m);
  }
  return { examples: out, kept, skipped: examples.length - out.length };
}

function resolveLora(l: Partial<LoraSettings> | null | undefined): SftRunSettings['lora'] {
  if (!l) return null;
  if (l.r === undefined) throw new RangeError('SFT: lora.r (the LoRA rank) is required');
  return { r: l.r, alpha: l.alpha ?? LORA_DEFAULTS.alphaPerRank * l.r, dropout: l.dropout ?? 0, targets: l.targets ?? LORA_DEFAULTS.targets };
}

export async function runSft(o: SftOptions): Promise<SftResult> {
  const log = o.log ?? ((m: string) => console.log(m));
  const resumed = o.resume !== undefined ? openSftResume(o.resume, o, { steps: o.steps, epochs: o.epochs }) : null;
  if (!resumed) {
    const missing = (['model', 'data', 'out'] as const).filter((k) => o[k] === undefined);
    if (missing.length) throw new RangeError(`SFT: a new run needs ${missing.join(' and ')} (resume continues an existing one)`);
    // A rerun into the --out of an SFT run would start over from the base model and replace its
    // checkpoints without a word: refused, pointing at --resume, as pretrain refuses it.
    startFreshRun(resolve(o.out!));
  }
  const s = resumed?.settings;
  const modelDir = s?.model ?? o.model!;
  const dataName = s?.data ?? o.data!;
  const valData = s ? s.valData ?? undefined : o.valData;
  const loaded = loadAnyModelDir(modelDir);
  if (loaded.kind === 'bert') throw new RangeError(`SFT: ${modelDir} is a bert model; SFT needs a causal LM (GPT-2, Llama, Qwen2)`);
  // GPT-2 or a Llama-family decoder: both are trained through forward(ids, b, t, labels) alone.
  const gpt: CausalLM = loaded.model;
  const config = loaded.config;
  // The checkpoint's own tokenizer: the one the run's examples were encoded with.
  const tokenizer = loadTokenizerJson(resumed ? resumed.checkpoint.dir : modelDir);
  const template = s?.chatTemplate ?? o.chatTemplate ?? readChatTemplate(modelDir);
  const context = contextLength(config);
  const maxLength = s?.maxLength ?? Math.min(o.maxLength ?? context, context);
  const seed = s?.seed ?? o.seed ?? SFT_DEFAULTS.seed;
  const valFraction = s?.valFraction ?? o.valFraction ?? SFT_DEFAULTS.valFraction;
  const padId = separatorId(tokenizer);
  const encode = (m: ReturnType<typeof readSftJsonl>[number]) => encodeConversation(tokenizer, template, m, maxLength);

  let trainRaw = loadSftData(dataName);
  let valRaw: typeof trainRaw;
  if (valData) {
    valRaw = loadSftData(valData);
  } else {
    // A seeded shuffle decides the split, so reruns hold out the same examples.
    const rng = new Rng(seed);
    const order = trainRaw.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const nVal = Math.max(1, Math.round(trainRaw.length * valFraction));
    if (trainRaw.length < 2) throw new RangeError(`SFT: ${dataName} has ${trainRaw.length} example; need at least 2 to hold one out (or give --val-data)`);
    const valSet = new Set(order.slice(0, nVal));
    valRaw = trainRaw.filter((_, i) => valSet.has(i));
    trainRaw = trainRaw.filter((_, i) => !valSet.has(i));
  }
  const trainSet = encodeAll(trainRaw, encode);
  const valSet = encodeAll(valRaw, encode);
  const skipped = trainSet.skipped + valSet.skipped;
  if (skipped) log(`warning: ${skipped} example(s) have no response token within ${maxLength} tokens and were skipped`);
  if (!trainSet.examples.length || !valSet.examples.length) throw new RangeError('SFT: no usable training or held-out examples after tokenization');
  const batchSize = s?.batchSize ?? o.batchSize ?? SFT_DEFAULTS.batchSize;
  const evalData = sftEvalBatches(valSet.examples, batchSize, padId);

  const loraSettings = s ? s.lora : resolveLora(o.lora);
  let trainable: Module = gpt;
  let lora: LoraModel | null = null;
  if (loraSettings) {
    const targets = resolveLoraTargets(loaded.kind, loraSettings.targets);
    lora = new LoraModel(gpt, loaded.kind, {
      r: loraSettings.r, alpha: loraSettings.alpha, dropout: loraSettings.dropout, targetModules: targets, seed, baseModelNameOrPath: resolve(modelDir), taskType: 'CAUSAL_LM',
    });
    trainable = lora;
  }
  const baseFingerprint = lora?.config.primer_base_fingerprint ?? modelFingerprint(gpt);
  const exampleHash = examplesSha256(trainSet.examples, valSet.examples);
  if (resumed) checkResumedInputs(o.resume!, resumed.settings, { baseFingerprint, examplesSha256: exampleHash });
  const trainableParameters = trainable.numParameters();
  log(`SFT: ${trainSet.examples.length} training / ${valSet.examples.length} held-out examples, `
    + `${lora ? `LoRA r=${loraSettings!.r} on ${lora.layers.size} layers, ` : 'full fine-tuning, '}${trainableParameters.toLocaleString('en-US')} trainable parameters`);

  const before = responseLoss(gpt, evalData);
  log(`held-out response perplexity before: ${before.perplexity.toFixed(2)} (loss ${before.loss.toFixed(4)}, ${before.tokens} tokens)`);

  const out = resolve(resumed ? resumed.runDir : o.out!);
  const mergeLora = o.mergeLora ?? s?.mergeLora ?? false;
  const steps = s?.steps ?? o.steps ?? (o.epochs ? stepsForEpochs(o.epochs, trainSet.examples.length, batchSize) : SFT_DEFAULTS.steps);
  const lr = s?.lr ?? o.lr ?? (lora ? SFT_DEFAULTS.lrLora : SFT_DEFAULTS.lrFull);
  const run: SftRunSettings = {
    objective: 'sft', model: resolve(modelDir), data: dataPath(dataName), valData: valData ? resolve(valData) : null, valFraction, steps, batchSize, lr,
    warmupSteps: s?.warmupSteps ?? o.warmupSteps ?? Math.min(20, Math.floor(steps / 10)),
    weightDecay: s?.weightDecay ?? o.weightDecay ?? (lora ? 0 : SFT_DEFAULTS.weightDecayFull),
    maxLength, seed, chatTemplate: template, lora: loraSettings, mergeLora, trainExamples: trainSet.examples.length, baseFingerprint, examplesSha256: exampleHash,
  };
  const writeExtraFiles = (dir: string) => {
    if (lora) writeJsonAtomic(join(dir, 'adapter_config.json'), lora.config, { durable: false });
    else writeJsonAtomic(join(dir, 'config.json'), configJson(config), { durable: false });
    tokenizer.save(dir);
    writeChatTemplate(dir, template);
    if (!lora) copyGenerationConfig(modelDir, dir); // a full checkpoint is a model directory: served, it stops at the base's eos ids
  };
  // Llama-family models have no dropout, so no dropout stream to checkpoint.
  const rngs: Record<string, Rng> = gpt instanceof GPT ? { dropout: gpt.transformer.rng } : {};
  if (lora) rngs.lora = lora.rng;
  if (resumed) log(`resuming ${out} from step ${resumed.checkpoint.state.step} of ${steps} (${resumed.checkpoint.dir})`);
  const training = await train<SftBatch>({
    model: trainable, lossFn: (b) => sftLoss(gpt, b),
    data: new SftBatches(trainSet.examples, batchSize, padId, seed + 1), evalData,
    runDir: out, steps, lr, minLr: lr / 10, warmupSteps: run.warmupSteps, weightDecay: run.weightDecay,
    evalEvery: Math.max(1, Math.floor(steps / 4)), checkpointEvery: 0, keepCheckpoints: 1,
    rngs, run: { ...run }, writeExtraFiles, resumeFrom: resumed?.checkpoint,
    progress: o.progress, logEvery: Math.max(1, Math.round(steps / 20)),
  });
  const interrupted = training.status === 'interrupted';
  const after = interrupted ? null : responseLoss(gpt, evalData);
  if (after) log(`held-out response perplexity after ${training.step} steps: ${after.perplexity.toFixed(2)} (loss ${after.loss.toFixed(4)})`);

  // What save_pretrained keeps of the base beside the weights: its tokenizer_config.json fields
  // (model_max_length, padding_side, …; the run's chat template wins) and generation_config.json.
  const keepBaseFiles = (dir: string, generation: boolean) => {
    carryTokenizerConfig(modelDir, dir);
    writeChatTemplate(dir, template);
    if (generation) copyGenerationConfig(modelDir, dir);
  };
  if (lora) {
    lora.save(out);
    tokenizer.save(out);
    keepBaseFiles(out, false);
    if (mergeLora) {
      lora.merge();
      mkdirSync(join(out, 'merged'), { recursive: true });
      writeModelFiles(join(out, 'merged'), gpt, config, tokenizer);
      keepBaseFiles(join(out, 'merged'), true);
    }
  } else {
    writeModelFiles(out, gpt, config, tokenizer);
    keepBaseFiles(out, true);
  }
  log(`${interrupted ? `interrupted at step ${training.step}: ` : ''}saved ${lora ? 'LoRA adapter' : 'model'} to ${out}`);
  return {
    out, trainExamples: trainSet.examples.length, valExamples: valSet.examples.length, skipped, heldOut: valSet.kept, trainableParameters, before, after, training,
  };
}
