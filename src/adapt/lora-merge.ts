/**
 * `primer lora merge`: a LoRA adapter folded into its base model, saved as a plain model directory
 * with the tokenizer (the adapter's, else the base's, in any layout loadTokenizer reads) and the
 * base's tokenizer_config.json fields that tokenizer.save does not generate (model_max_length,
 * padding_side, chat_template, …) and generation_config.json, as save_pretrained keeps them.
 */
import { loadAnyModelDir, saveModelDir } from '../models/load.ts';
import { copyGenerationConfig } from '../models/model-files.ts';
import { loadTokenizerJson } from '../data/tokenizer.ts';
import { carryTokenizerConfig, hasTokenizerFiles } from '../tokenizers/index.ts';
import { refuseOutputOverInput } from '../io/paths.ts';
import { loadLoraAdapter } from './lora.ts';
import { readChatTemplate, writeChatTemplate } from './chat-template.ts';

export interface LoraMergeResult {
  /** Layers whose LoRA update was folded in. */
  layers: number;
  /** Where the tokenizer came from (null: neither directory has one; the merged model has none). */
  tokenizerFrom: string | null;
}

export function mergeLoraDir(o: { base: string; adapter: string; out: string }): LoraMergeResult {
  refuseOutputOverInput(o.out, { '--base': o.base, '--adapter': o.adapter });
  const loaded = loadAnyModelDir(o.base);
  const adapter = loadLoraAdapter(loaded.model, loaded.kind, o.adapter);
  const layers = adapter.layers.size; // merge() unwraps them
  adapter.merge();
  const tokDir = hasTokenizerFiles(o.adapter) ? o.adapter : hasTokenizerFiles(o.base) ? o.base : null;
  const tokenizer = tokDir ? loadTokenizerJson(tokDir) : undefined;
  saveModelDir(o.out, loaded.model, loaded.config, tokenizer);
  if (loaded.kind !== 'bert') copyGenerationConfig(o.base, o.out);
  if (tokDir) {
    carryTokenizerConfig(tokDir, o.out);
    if (loaded.kind !== 'bert') writeChatTemplate(o.out, readChatTemplate(tokDir));
  }
  return { layers, tokenizerFrom: tokDir };
}
