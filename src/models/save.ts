/**
 * Writing model directories in Hugging Face layout: config.json with the keys transformers expects,
 * model.safetensors with HF names, the tokenizer files; an existing directory has its model files
 * replaced together (io/dir-swap.ts), so a kill never leaves one model's config beside another's weights.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Module } from '../nn/module.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { replaceFilesTogether } from '../io/dir-swap.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { ModelLoadError } from './model-files.ts';
import type { AnyModelConfig } from './load.ts';

/** HF config.json content: our config plus the keys transformers expects to find. */
export function configJson(config: AnyModelConfig): Record<string, unknown> {
  const architectures = config.model_type === 'gpt2' ? ['GPT2LMHeadModel'] : config.model_type === 'bert' ? ['BertForPreTraining']
    : config.model_type === 'qwen2' ? ['Qwen2ForCausalLM'] : ['LlamaForCausalLM'];
  return { architectures, ...config, torch_dtype: 'float32' };
}

/** The model's parameters as safetensors entries (HF names, fp32). */
export function modelTensors(model: Module): Array<{ name: string; shape: number[]; data: Float32Array }> {
  return model.namedParameters().map(([name, p]) => ({
    name, shape: [...p.shape], data: p.data instanceof Float32Array ? p.data : new Float32Array(p.data),
  }));
}

/** Writes model.safetensors, config.json and (optionally) the tokenizer files into dir. */
export function writeModelFiles(dir: string, model: Module, config: AnyModelConfig, tokenizer?: Tokenizer, durable = true): void {
  // As one: a kill part-way leaves the previous model whole, never its config beside new weights.
  replaceFilesTogether(dir, (staging) => {
    writeSafetensors(join(staging, 'model.safetensors'), modelTensors(model), { format: 'pt' }, { durable });
    writeJsonAtomic(join(staging, 'config.json'), configJson(config), { durable });
    tokenizer?.save(staging);
  }, { durable });
}

/**
 * Saves a model directory. A new directory appears complete or not at all (written beside it, then
 * renamed); an existing one has its model files replaced together (writeModelFiles).
 */
export function saveModelDir(dir: string, model: Module, config: AnyModelConfig, tokenizer?: Tokenizer): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new ModelLoadError(`saveModelDir: ${dir} exists and is not a directory`);
    writeModelFiles(dir, model, config, tokenizer);
    return;
  }
  const temp = join(dirname(dir), `.${basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeModelFiles(temp, model, config, tokenizer, false);
    renameSync(temp, dir);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
