/**
 * LoRA for task fine-tuning (classification, tagging, QA): adapters on the backbone's chosen Linear
 * layers, the backbone frozen, and the new head (`score` / `classifier` / `qa_outputs`) trained in full
 * as PEFT's `modules_to_save`. Trainable parameters = Σ r·(in + out) over adapted layers + |head|.
 *
 * Saved in the PEFT layout (adapter_config.json with task_type SEQ_CLS / TOKEN_CLS / QUESTION_ANS and
 * modules_to_save; adapter_model.safetensors with base_model.model.* names, head included) plus the
 * tokenizer files. PEFT re-creates the head from num_labels given by the user; Primer records the
 * head's config.json fields (architectures, id2label, pooling) as `primer_task_head` in
 * adapter_config.json so `primer classify --model BASE --adapter DIR` needs nothing else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { backbonePrefix, createTaskModel, QuestionAnswering, SequenceClassifier, type TaskModel } from '../models/heads.ts';
import { loadBackbone, loadTaskModelDir } from '../models/model-dir.ts';
import type { TaskAdapter } from '../tasks/task-run.ts';
import { LoraError, LoraModel, loadLoraAdapter, readAdapterConfig, resolveLoraTargets, type LoraSettings } from './lora.ts';
import { readJsonFile } from '../io/json.ts';

/** PEFT's task_type for each kind of head. */
export function peftTaskType(model: TaskModel): 'SEQ_CLS' | 'TOKEN_CLS' | 'QUESTION_ANS' {
  return model instanceof SequenceClassifier ? 'SEQ_CLS' : model instanceof QuestionAnswering ? 'QUESTION_ANS' : 'TOKEN_CLS';
}

/** The head modules (top-level children that are not the backbone): trained in full, saved with the adapter. */
export function headModules(model: TaskModel): string[] {
  const body = backbonePrefix(model.kind);
  return model.namedModules().map(([path]) => path).filter((path) => !path.includes('.') && path !== body);
}

/** Wraps a task model with LoRA adapters on its backbone; the head stays trainable. */
export function addTaskLora(model: TaskModel, settings: LoraSettings, o: { seed?: number; baseModel?: string } = {}): LoraModel {
  return new LoraModel(model, model.kind, {
    r: settings.r, alpha: settings.alpha, dropout: settings.dropout, targetModules: resolveLoraTargets(model.kind, settings.targets),
    modulesToSave: headModules(model), taskType: peftTaskType(model), seed: o.seed, baseModelNameOrPath: o.baseModel ? resolve(o.baseModel) : undefined,
  });
}

/** Writes the adapter (PEFT layout, head included), the head's config fields and the tokenizer into dir. */
export function saveTaskAdapter(dir: string, lora: LoraModel, model: TaskModel, tokenizer?: Tokenizer): void {
  lora.save(dir);
  const path = join(dir, 'adapter_config.json');
  const config = readJsonFile(path, (message, cause) => new LoraError(message, { cause })) as Record<string, unknown>;
  writeJsonAtomic(path, { ...config, primer_task_head: model.headConfig() });
  tokenizer?.save(dir);
}

/**
 * Base model directory + task adapter → the task model with the adapter merged into the backbone
 * and the trained head loaded. The base defaults to the adapter's base_model_name_or_path.
 */
export function loadTaskAdapter(adapterDir: string, baseDir?: string): TaskModel {
  const config = readAdapterConfig(adapterDir);
  // readAdapterConfig above has validated the file, JSON included.
  const raw = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as { primer_task_head?: Record<string, unknown> };
  const head = raw.primer_task_head;
  if (!head || typeof head !== 'object') {
    throw new LoraError(`${adapterDir}: adapter_config.json has no "primer_task_head" (architectures, id2label); it is not a Primer task adapter (for a GPT SFT adapter use primer chat --adapter)`);
  }
  const base = baseDir ?? config.base_model_name_or_path;
  if (!base) throw new LoraError(`${adapterDir}: adapter_config.json names no base model; give the base model directory`);
  const backbone = loadBackbone(base);
  // A fresh task model of the recorded architecture around a copy of the base weights; the head comes from the adapter.
  const model = createTaskModel({ ...backbone.cfg, ...head });
  const { missing } = model.backbone.loadStateDict(new Map(backbone.namedParameters().map(([n, p]) => [n, p.data] as const)));
  if (missing.length) throw new LoraError(`${base}: the base model lacks ${missing.slice(0, 4).join(', ')} needed by the adapter's ${String((head.architectures as string[] | undefined)?.[0])}`);
  loadLoraAdapter(model, model.kind, adapterDir).merge();
  return model;
}

/** LoRA for finetuneTask (src/tasks/task-run.ts): adapters on the body, the head trained in full, saved in the PEFT layout. */
export function taskLoraAdapter(settings: LoraSettings, o: { seed?: number; baseModel?: string } = {}): TaskAdapter {
  let lora: LoraModel | null = null;
  return {
    attach: (model) => (lora = addTaskLora(model, settings, o)),
    describe: () => `LoRA r=${settings.r} on ${lora!.layers.size} layers + head ${[...lora!.savedModules.keys()].join(', ')}: ${lora!.numParameters().toLocaleString('en-US')} trainable parameters`,
    save: (dir, model, tokenizer) => saveTaskAdapter(dir, lora!, model, tokenizer),
  };
}

/**
 * A fine-tuned task model and its tokenizer for inference: a task model directory, a LoRA task
 * adapter directory, or a base model directory plus `adapter`. `kind` is the head expected
 * (`what` names it in the error when the directory holds another).
 */
export function loadTaskModelForInference<T extends TaskModel>(dir: string, kind: new (...a: never[]) => T, what: string, adapter?: string): { model: T; tokenizer: Tokenizer } {
  const adapterDir = adapter ?? (existsSync(join(dir, 'adapter_config.json')) ? dir : undefined);
  const model = adapterDir ? loadTaskAdapter(adapterDir, adapter ? dir : undefined) : loadTaskModelDir(dir);
  if (!(model instanceof kind)) throw new RangeError(`${adapterDir ?? dir} holds a ${model.architecture}, not a ${what} model`);
  const tokDir = adapterDir && ['tokenizer.json', 'vocab.txt'].some((f) => existsSync(join(adapterDir, f))) ? adapterDir : dir;
  return { model, tokenizer: loadTokenizer(tokDir) };
}
