/**
 * `exportHf(model, outDir)`: writes a directory that transformers' from_pretrained loads as is:
 *
 *   config.json             architectures, model_type, torch_dtype "float32" (or "bfloat16" / "float16"
 *                           with `dtype`), transformers_version, id2label/label2id for classifiers
 *   model.safetensors       fp32 unless `dtype` asks for BF16/F16, HF tensor names, {"format": "pt"}
 *                           metadata, and tied weights dropped as save_pretrained drops them (GPT-2 and
 *                           tied Llama/Qwen2: no lm_head.weight; BERT: no cls.predictions.decoder.{weight,bias});
 *                           BertForTokenClassification and BertForQuestionAnswering are built without a
 *                           pooler, so none is written
 *   generation_config.json  GPT-2 and Llama-family LMs: the imported one unchanged (eos ids, sampling defaults),
 *                           else bos/eos ids as transformers derives them from the config
 *   tokenizer.json, tokenizer_config.json, special_tokens_map.json and the legacy vocab files
 *
 * Tensors are written in the safetensors library's canonical order, as save_pretrained does. With
 * `maxShardBytes`, weights larger than that are split as save_pretrained splits them: shards
 * model-0000i-of-0000n.safetensors filled in parameter order (a tensor larger than the limit gets a
 * shard of its own) plus model.safetensors.index.json ({metadata: {total_size}, weight_map}).
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX } from './weights.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { configJson, isLlamaConfig, modelTensors } from '../models/load.ts';
import type { SafetensorsDtype } from '../io/safetensors.ts';
import { taskConfigJson } from '../models/heads.ts';
import { headDimOf } from '../models/llama.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { keepTokenizerConfigFields } from '../tokenizers/index.ts';
import { loadPretrained, type Pretrained } from './import.ts';
import { writeExportDir } from './export-dir.ts';

/** The transformers release whose conventions the export follows (written into the JSON files). */
export const TRANSFORMERS_VERSION = '4.46.0';

/** Names save_pretrained never writes: tied copies and modules the HF class does not have. */
function droppedByHf(p: Pretrained, name: string): boolean {
  // An untied head is a parameter of its own (a tied one never is: the model has no lm_head then).
  if (name === 'lm_head.weight') return p.kind === 'bert';
  if ( name === 'cls.predictions.decoder.weight' || name === 'cls.predictions.decoder.bias') return true;
  const noPooler = p.task && (p.task.architecture === 'BertForTokenClassification' || p.task.architecture === 'BertForQuestionAnswering');
  return Boolean(noPooler && name.startsWith('bert.pooler.'));
}

/** config.json content for the exported model. */
export function hfConfig(p: Pretrained): Record<string, unknown> {
  const base = p.task ? taskConfigJson(p.task) : configJson(p.config);
  const out: Record<string, unknown> = { ...base, model_type: p.config.model_type, torch_dtype: 'float32', transformers_version: TRANSFORMERS_VERSION };
  if (isLlamaConfig(p.config)) {
    // LlamaConfig's default is tie_word_embeddings false, so it is always written out.
    out.tie_word_embeddings = p.config.tie_word_embeddings ?? false;
    // Explicit, because Transformers.js sizes the past key values from head_dim.
    out.head_dim = headDimOf(p.config);
    return out;
  }
  if (!p.task) out.architectures = [p.kind === 'gpt2' ? 'GPT2LMHeadModel' : 'BertForPreTraining'];
  // Tied output embeddings are transformers' default; a GPT-2 may be untied (BERT always is tied here).
  out.tie_word_embeddings = p.kind === 'gpt2' ? (p.config as { tie_word_embeddings?: boolean }).tie_word_embeddings !== false : true;
  return out;
}

/**
 * The tokenizer files, with the imported tokenizer_config.json's own fields kept (keepTokenizerConfigFields);
 * special_tokens_map.json likewise keeps additional_special_tokens.
 */
function writeTokenizer(dir: string, p: Pretrained & { tokenizer: Tokenizer }): void {
  p.tokenizer.save(dir);
  if (p.tokenizerConfig) keepTokenizerConfigFields(dir, p.tokenizerConfig);
  const map: Record<string, unknown> = { ...p.specialTokensMap };
  for (const [role, token] of Object.entries(p.tokenizer.specialTokens)) if (typeof token === 'string') map[`${role}_token`] = token;
  writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify(map, null, 2) + '\n');
}

/** Stored weight dtypes of an export, with the torch_dtype config.json names for them. */
export const EXPORT_DTYPES = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' } as const satisfies Partial<Record<SafetensorsDtype, string>>;
export type ExportDtype = keyof typeof EXPORT_DTYPES;

export interface ExportHfOptions {
  /** Stored dtype of the weights (default F32: Primer computes in fp32, so nothing is rounded unless asked). */
  dtype?: ExportDtype;
  /** Split the weights into shards of at most this many bytes each (default: one model.safetensors). */
  maxShardBytes?: number;
}

const BYTES_PER_ELEMENT: Record<ExportDtype, number> = { F32: 4, BF16: 2, F16: 2 };

/** Writes model.safetensors, or shards + index when the weights exceed maxShardBytes; returns the file names. */
function writeWeights(outDir: string, tensors: Array<TensorToWrite & { dtype: ExportDtype }>, maxShardBytes?: number): string[] {
  const size = (t: TensorToWrite & { dtype: ExportDtype }) => t.shape.reduce((a, d) => a * d, 1) * BYTES_PER_ELEMENT[t.dtype];
  const total = tensors.reduce((n, t) => n + size(t), 0);
  if (maxShardBytes === undefined || total <= maxShardBytes) {
    writeSafetensors(join(outDir, SAFETENSORS_FILE), tensors, { format: 'pt' });
    return [SAFETENSORS_FILE];
  }
  if (!(Number.isSafeInteger(maxShardBytes) && maxShardBytes > 0)) throw new RangeError(`exportHf: maxShardBytes must be a positive integer, got ${maxShardBytes}`);
  const shards: Array<typeof tensors> = [[]];
  let used = 0;
  for (const t of tensors) {
    if (used > 0 && used + size(t) > maxShardBytes) {
      shards.push([]);
      used = 0;
    }
    shards[shards.length - 1]!.push(t);
    used += size(t);
  }
  const name = (i: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
  const weightMap: Record<string, string> = {};
  shards.forEach((part, i) => {
    writeSafetensors(join(outDir, name(i)), part, { format: 'pt' });
    for (const t of part) weightMap[t.name] = name(i);
  });
  // The index last: a reader that finds it finds every shard it names.
  writeJsonAtomic(join(outDir, SAFETENSORS_INDEX), { metadata: { total_size: total }, weight_map: weightMap }, { indent: 2 });
  return [...shards.map((_, i) => name(i)), SAFETENSORS_INDEX];
}

/**
 * Writes the HF directory for an imported/loaded model (see the module comment), as one: a failure
 * leaves `outDir` as it was, and files of an earlier export the new one lacks are removed (export-dir.ts).
 */
export function exportHf(p: Pretrained, outDir: string, o: ExportHfOptions = {}): string[] {
  return writeExportDir(outDir, (dir) => writeHfFiles(p, dir, o));
}

/** The files of exportHf written into an empty directory `outDir`; returns their names. */
export function writeHfFiles(p: Pretrained, outDir: string, o: ExportHfOptions = {}): string[] {
  const dtype = o.dtype ?? 'F32';
  if (!Object.hasOwn(EXPORT_DTYPES, dtype)) throw new RangeError(`exportHf: dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(EXPORT_DTYPES).join(', ')}`);
  const tensors = modelTensors(p.model).filter((t) => !droppedByHf(p, t.name)).map((t) => ({ ...t, dtype }));
  const weightFiles = writeWeights(outDir, tensors, o.maxShardBytes);
  writeJsonAtomic(join(outDir, 'config.json'), { ...hfConfig(p), torch_dtype: EXPORT_DTYPES[dtype] }, { indent: 2 });
  const written = ['config.json', ...weightFiles];
  if ((p.kind === 'gpt2' || p.kind === 'llama') && !p.task) {
    const c = p.config as { bos_token_id?: number | null; eos_token_id?: number | number[] | null };
    const generation: Record<string, unknown> = { _from_model_config: true, transformers_version: TRANSFORMERS_VERSION };
    if (c.bos_token_id != null) generation.bos_token_id = c.bos_token_id;
    if (c.eos_token_id != null) generation.eos_token_id = c.eos_token_id;
    writeJsonAtomic(join(outDir, 'generation_config.json'), p.generationConfig ?? generation, { indent: 2 });
    written.push('generation_config.json');
  }
  if (p.tokenizer) {
    writeTokenizer(outDir, p as Pretrained & { tokenizer: Tokenizer });
    // What save wrote, not what its type suggests: a SentencePiece-style BPE (Llama 2) has no vocab.json + merges.txt.
    const order = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt'];
    const rest = readdirSync(outDir).filter((f) => !written.includes(f) && !order.includes(f)).sort();
    written.push(...order.filter((f) => existsSync(join(outDir, f))), ...rest);
  }
  return written;
}

/** `primer export --format hf`: a Primer (or HF) model directory → an HF directory. */
export function exportHfDir(modelDir: string, outDir: string, o: ExportHfOptions = {}): string[] {
  return exportHf(loadPretrained(modelDir), outDir, o);
}
