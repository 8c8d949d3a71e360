/**
 * `exportOnnx(model, outDir)`: a directory Transformers.js (and optimum's ORTModel) loads as a local
 * model: the Hugging Face files of export-hf.ts (config.json, tokenizer files, generation_config.json,
 * model.safetensors) plus onnx/model.onnx, an fp32 opset-17 graph with optimum's input/output names
 * (see onnx-gpt.ts and onnx-bert.ts). Transformers.js picks onnx/model.onnx for dtype 'fp32'.
 *
 *   GPT2LMHeadModel / GPT2Model          decoder with past key values (text-generation)
 *   LlamaForCausalLM / Qwen2ForCausalLM  decoder with past key values, grouped-query (onnx-llama.ts)
 *   BertForPreTraining / MaskedLM / Model  masked LM logits (fill-mask)
 *   Bert/GPT2ForSequenceClassification   logits (text-classification; labels from config.json)
 *   BertForTokenClassification / QA      logits / start_logits + end_logits
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GPTConfig } from '../models/gpt.ts';
import type { BertConfig } from '../models/bert.ts';
import { modelTensors } from '../models/load.ts';
import { SequenceClassifier, TokenClassifier } from '../models/heads.ts';
import { InteropError } from './errors.ts';
import { writeHfFiles } from './export-hf.ts';
import { writeExportDir } from './export-dir.ts';
import { loadPretrained, type Pretrained } from './import.ts';
import { OnnxGraphBuilder, type NamedTensor } from './onnx-graph.ts';
import { buildGptLm, buildGptSequenceClassifier } from './onnx-gpt.ts';
import { buildLlamaLm } from './onnx-llama.ts';
import type { LlamaConfig } from '../models/llama.ts';
import { buildBertMaskedLm, buildBertQuestionAnswering, buildBertSequenceClassifier, buildBertTokenClassifier } from './onnx-bert.ts';

/** A protobuf message cannot exceed 2 GiB; larger models would need ONNX external data. */
const MAX_ONNX_BYTES = 2 ** 31 - 1;

/** The graph of a loaded model as model.onnx bytes. */
export function onnxModelBytes(p: Pretrained): Uint8Array {
  const weights = new Map<string, NamedTensor>();
  let bytes = 0;
  for (const t of modelTensors(p.model)) {
    weights.set(t.name, t);
    bytes += t.data.byteLength;
  }
  if (bytes > MAX_ONNX_BYTES - (1 << 24)) {
    throw new InteropError('UNSUPPORTED_ARCHITECTURE', `ONNX export: ${(bytes / 2 ** 30).toFixed(2)} GiB of weights exceed protobuf's 2 GiB limit (external data is not supported)`);
  }
  const g = new OnnxGraphBuilder(weights);
  const task = p.task;
  if (!task) {
    if (p.kind === 'llama') buildLlamaLm(g, p.config as LlamaConfig);
    else if (p.kind === 'gpt2') buildGptLm(g, p.config as GPTConfig);
    else buildBertMaskedLm(g, p.config as BertConfig);
  } else if (task instanceof SequenceClassifier) {
    if (task.kind === 'gpt2') {
      if (task.pooling !== 'last') throw new InteropError('UNSUPPORTED_ARCHITECTURE', `ONNX export: GPT-2 sequence classifiers pooled with '${task.pooling}' are not supported (only 'last', as transformers)`);
      buildGptSequenceClassifier(g, task.backbone.cfg as GPTConfig, task.labels.size);
    } else {
      buildBertSequenceClassifier(g, task.backbone.cfg as BertConfig, task.labels.size, task.pooling);
    }
  } else if (task.kind === 'bert' && task instanceof TokenClassifier) {
    buildBertTokenClassifier(g, task.backbone.cfg as BertConfig, task.labels.size);
  } else if (task.kind === 'bert' && task.architecture === 'BertForQuestionAnswering') {
    buildBertQuestionAnswering(g, task.backbone.cfg as BertConfig);
  } else {
    throw new InteropError('UNSUPPORTED_ARCHITECTURE', `ONNX export: ${p.architecture} is not supported (GPT-2 LM and sequence classification, BERT masked LM and task models are)`);
  }
  return g.encode(p.architecture, { architecture: p.architecture });
}

/** Writes the Transformers.js model directory (see the module comment); returns the files written. */
export function exportOnnx(p: Pretrained, outDir: string): string[] {
  const model = onnxModelBytes(p); // before writing anything: unsupported models leave no half directory
  return writeExportDir(outDir, (dir) => {
    const files = writeHfFiles(p, dir);
    mkdirSync(join(dir, 'onnx'));
    writeFileSync(join(dir, 'onnx', 'model.onnx'), model);
    return [...files, 'onnx/model.onnx'];
  });
}

/** `primer export --format onnx`: a Primer (or HF) model directory → a Transformers.js directory. */
export function exportOnnxDir(modelDir: string, outDir: string): string[] {
  return exportOnnx(loadPretrained(modelDir), outDir);
}
