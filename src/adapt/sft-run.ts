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
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadAnyModelDir, configJson, writeModelFiles } from '../models/load.ts';
import { GPT } from '../models/gpt.ts';
import { contextLength } from '../models/heads.ts';
import { loadTokenizerJson, separatorId } from '../data/tokenizer.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { Rng } from '../util/random.ts';
import { train, type TrainResult } from '../train/trainer.ts';
import { startFreshRun } from '../train/checkpoint.ts';
import type { ProgressReporter } from '../train/progress.ts';
import type { Module } from '../nn/module.ts';
import { readChatTemplate, writeChatTemplate, type ChatMessage } from './chat-template.ts';
import { LoraModel, resolveLoraTargets, type LoraSettings } from './lora.ts';
import { loadSftData } from './instructions.ts';
import { SftBatches, encodeConversation, readSftJsonl, responseLoss, sftEvalBatches, sftLoss, type CausalLM, type SftBatch, type SftExample } from './sft.ts';

/** Defaults of the SFT run (the CLI's help text shows these). */
export const SFT_DEFAULTS = {
  /** Optimizer steps when neither steps nor epochs is given. */
  steps: 200, batchSize: 8, lrFull: 1e-4, lrLora: 1e-3, weightDecayFull: 0.01, valFraction: 0.1, seed: 1234,
};

export interface SftOptions {
  /** Base model directory (HF layout with tokenizer.json). */
  model: string;
  /** JSONL file, or builtin:sentiment. */
  data: string;
  /** Separate held-out JSONL; default: a valFraction split of data. */
  valData?: string;
  out: string;
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
  lora?: LoraSettings | null;
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

export async function runSft(o: SftOptions): Promise<SftResult> {
  const log = o.log ?? ((m: string) => console.log(m));
  // A rerun into the --out of an SFT run would start over from the base model and replace its
  // checkpoints without a word (SFT has no --resume): refused, as pretrain refuses it.
  startFreshRun(resolve(o.out), { resumable: false, kind: 'an SFT run' });
  const loaded = loadAnyModelDir(o.model);
  if (loaded.kind === 'bert') throw new RangeError(`SFT: ${o.model} is a bert model; SFT needs a causal LM (GPT-2, Llama, Qwen2)`);
  // GPT-2 or a Llama-family decoder: both are trained through forward(ids, b, t, labels) alone.
  const gpt: CausalLM = loaded.model;
  const config = loaded.config;
  const tokenizer = loadTokenizerJson(o.model);
  const template = o.chatTemplate ?? readChatTemplate(o.model);
  const context = contextLength(config);
  const maxLength = Math.min(o.maxLength ?? context, context);
  const seed = o.seed ?? SFT_DEFAULTS.seed;
  const padId = separatorId(tokenizer);
  const encode = (m: ReturnType<typeof readSftJsonl>[number]) => encodeConversation(tokenizer, template, m, maxLength);

  let trainRaw = loadSftData(o.data);
  let valRaw: typeof trainRaw;
  if (o.valData) {
    valRaw = loadSftData(o.valData);
  } else {
    // A seeded shuffle decides the split, so reruns hold out the same examples.
    const rng = new Rng(seed);
    const order = trainRaw.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const nVal = Math.max(1, Math.round(trainRaw.length * (o.valFraction ?? SFT_DEFAULTS.valFraction)));
    if (trainRaw.length < 2) throw new RangeError(`SFT: ${o.data} has ${trainRaw.length} example; need at least 2 to hold one out (or give --val-data)`);
    const valSet = new Set(order.slice(0, nVal));
    valRaw = trainRaw.filter((_, i) => valSet.has(i));
    trainRaw = trainRaw.filter((_, i) => !valSet.has(i));
  }
  const trainSet = encodeAll(trainRaw, encode);
  const valSet = encodeAll(valRaw, encode);
  const skipped = trainSet.skipped + valSet.skipped;
  if (skipped) log(`warning: ${skipped} example(s) have no response token within ${maxLength} tokens and were skipped`);
  if (!trainSet.examples.length || !valSet.examples.length) throw new RangeError('SFT: no usable training or held-out examples after tokenization');
  const batchSize = o.batchSize ?? SFT_DEFAULTS.batchSize;
  const evalData = sftEvalBatches(valSet.examples, batchSize, padId);

  let trainable: Module = gpt;
  let lora: LoraModel | null = null;
  if (o.lora) {
    const targets = resolveLoraTargets(loaded.kind, o.lora.targets);
    lora = new LoraModel(gpt, loaded.kind, { r: o.lora.r, alpha: o.lora.alpha, dropout: o.lora.dropout, targetModules: targets, seed, baseModelNameOrPath: resolve(o.model), taskType: 'CAUSAL_LM' });
    trainable = lora;
  }
  const trainableParameters = trainable.numParameters();
  log(`SFT: ${trainSet.examples.length} training / ${valSet.examples.length} held-out examples, `
    + `${lora ? `LoRA r=${o.lora!.r} on ${lora.layers.size} layers, ` : 'full fine-tuning, '}${trainableParameters.toLocaleString('en-US')} trainable parameters`);

  const before = responseLoss(gpt, evalData);
  log(`held-out response perplexity before: ${before.perplexity.toFixed(2)} (loss ${before.loss.toFixed(4)}, ${before.tokens} tokens)`);

  const out = resolve(o.out);
  const steps = o.steps ?? (o.epochs ? Math.max(1, Math.ceil(o.epochs * trainSet.examples.length / batchSize)) : SFT_DEFAULTS.steps);
  const lr = o.lr ?? (lora ? SFT_DEFAULTS.lrLora : SFT_DEFAULTS.lrFull);
  const writeExtraFiles = (dir: string) => {
    if (lora) writeJsonAtomic(join(dir, 'adapter_config.json'), lora.config, { durable: false });
    else writeJsonAtomic(join(dir, 'config.json'), configJson(config), { durable: false });
    tokenizer.save(dir);
    writeChatTemplate(dir, template);
  };
  // Llama-family models have no dropout, so no dropout stream to checkpoint.
  const rngs: Record<string, Rng> = gpt instanceof GPT ? { dropout: gpt.transformer.rng } : {};
  if (lora) rngs.lora = lora.rng;
  const training = await train<SftBatch>({
    model: trainable, lossFn: (b) => sftLoss(gpt, b),
    data: new SftBatches(trainSet.examples, batchSize, padId, seed + 1), evalData,
    runDir: out, steps, lr, minLr: lr / 10,
    warmupSteps: o.warmupSteps ?? Math.min(20, Math.floor(steps / 10)), weightDecay: o.weightDecay ?? (lora ? 0 : SFT_DEFAULTS.weightDecayFull),
    evalEvery: Math.max(1, Math.floor(steps / 4)), checkpointEvery: 0, keepCheckpoints: 1,
    rngs, run: { objective: 'sft', model: resolve(o.model), data: o.data.startsWith('builtin:') ? o.data : resolve(o.data), steps, lora: o.lora ?? null }, writeExtraFiles,
    progress: o.progress, logEvery: Math.max(1, Math.round(steps / 20)),
  });
  const interrupted = training.status === 'interrupted';
  const after = interrupted ? null : responseLoss(gpt, evalData);
  if (after) log(`held-out response perplexity after ${training.step} steps: ${after.perplexity.toFixed(2)} (loss ${after.loss.toFixed(4)})`);

  if (lora) {
    lora.save(out);
    tokenizer.save(out);
    writeChatTemplate(out, template);
    if (o.mergeLora) {
      lora.merge();
      mkdirSync(join(out, 'merged'), { recursive: true });
      writeModelFiles(join(out, 'merged'), gpt, config, tokenizer);
      writeChatTemplate(join(out, 'merged'), template);
    }
  } else {
    writeModelFiles(out, gpt, config, tokenizer);
    writeChatTemplate(out, template);
  }
  log(`${interrupted ? `interrupted at step ${training.step}: ` : ''}saved ${lora ? 'LoRA adapter' : 'model'} to ${out}`);
  return {
    out, trainExamples: trainSet.examples.length, valExamples: valSet.examples.length, skipped, heldOut: valSet.kept, trainableParameters, before, after, training,
  };
}
