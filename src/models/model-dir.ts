/**
 * Task-model directories in Hugging Face layout (config.json with architectures/id2label/label2id +
 * model.safetensors + tokenizer files), readable by transformers' Auto*For* classes and back.
 *
 * Loading accepts what the Hub holds: body tensors with or without the `bert.`/`transformer.` prefix,
 * LayerNorm gamma/beta, GPT-2's attention-mask buffers (all via load.ts's canonicalTensorName), and a
 * BERT without a pooler (BertForTokenClassification / BertForQuestionAnswering are saved without one:
 * the pooler then keeps its initialisation and is unused by those heads).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { replaceFilesTogether } from '../io/dir-swap.ts';
import { canonicalTensorName, loadAnyModelDir, modelTensors, ModelLoadError } from './load.ts';
import { readConfigJson } from './model-files.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { createTaskModel, taskConfigJson, type Backbone, type TaskModel } from './heads.ts';

const HEAD = /^(classifier|qa_outputs|score)\./;

/** Writes (or replaces, all files together) a task model directory. */
export function saveTaskModelDir(dir: string, model: TaskModel, tokenizer?: Tokenizer): void {
  replaceFilesTogether(dir, (staging) => {
    writeSafetensors(join(staging, 'model.safetensors'), modelTensors(model), { format: 'pt' });
    writeJsonAtomic(join(staging, 'config.json'), taskConfigJson(model), { indent: 2 });
    tokenizer?.save(staging);
  });
}

export function loadTaskModelDir(dir: string): TaskModel {
  const config = readConfigJson(dir) as Record<string, unknown>;
  if (!existsSync(join(dir, 'model.safetensors'))) throw new ModelLoadError(`${dir}: no model.safetensors`);
  const model = createTaskModel(config);
  const file = readSafetensors(join(dir, 'model.safetensors'));
  const state = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const name of file.names) {
    const target = HEAD.test(name) ? name : canonicalTensorName(model.kind, name);
    if (target === null) continue;
    state.set(target, file.getFloat32(name));
    shapes.set(target, file.info(name).shape);
  }
  let result: { missing: string[]; unexpected: string[] };
  try {
    result = model.loadStateDict(state, shapes);
  } catch (e) {
    throw new ModelLoadError(`${file.source}: ${(e as Error).message}`, { cause: e });
  }
  const missing = result.missing.filter((n) => !/^bert\.pooler\./.test(n) || model.architecture === 'BertForSequenceClassification');
  // A pre-training head left in the file (cls.*, lm_head) is not an error: fine-tuning drops it.
  const unexpected = result.unexpected.filter((n) => !/^(cls\.|lm_head\.)/.test(n));
  if (missing.length || unexpected.length) {
    const parts = [missing.length ? `missing tensors: ${missing.join(', ')}` : '', unexpected.length ? `unexpected tensors: ${unexpected.join(', ')}` : ''].filter(Boolean);
    throw new ModelLoadError(`${file.source} does not match its ${String((config.architectures as string[] | undefined)?.[0])} config: ${parts.join('; ')}`);
  }
  return model;
}

/** The pre-trained body of a GPT-2, BERT, Llama or Qwen2 model directory (config.json + model.safetensors), for a new head. */
export function loadBackbone(dir: string): Backbone {
  const loaded = loadAnyModelDir(dir);
  return loaded.kind === 'gpt2' ? loaded.model.transformer : loaded.kind === 'llama' ? loaded.model.model : loaded.model.bert;
}
