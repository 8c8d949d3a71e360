/**
 * The output directory of an export (hf, onnx, import --out), replaced as one (io/dir-swap.ts): a
 * failure part-way (a full disk, a bad tokenizer) leaves a new directory absent and an existing one
 * as it was, and a kill leaves the old or the new files, never a mix. The files an earlier export
 * wrote that this one does not (onnx/model.onnx, shards of another split, vocab.json + merges.txt of
 * another tokenizer, generation_config.json) are removed in the same step: transformers and
 * Transformers.js would read them as part of the new model. Other files (a README, the user's notes)
 * are left alone.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFilesTogether } from '../io/dir-swap.ts';
import { InteropError } from './errors.ts';

/** Names an export may write: a file of one of these names that the new export lacks is stale. */
const EXPORT_FILES = /^(config\.json|generation_config\.json|model\.safetensors|model\.safetensors\.index\.json|model-\d{5}-of-\d{5}\.safetensors|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|vocab\.json|merges\.txt|vocab\.txt|onnx\/model\.onnx)$/;

/**
 * Runs `write(dir)` into a staging folder (it returns the relative paths it wrote, e.g.
 * 'onnx/model.onnx') and then moves them into `outDir` as described above; returns `write`'s list.
 */
export function writeExportDir(outDir: string, write: (dir: string) => string[]): string[] {
  const existing = statSync(outDir, { throwIfNoEntry: false });
  if (existing && !existing.isDirectory()) {
    throw new InteropError('BAD_OUTPUT', `${outDir} exists and is not a directory; --out must be a directory`);
  }
  return replaceFilesTogether(outDir, write, { stale: (written) => staleExportFiles(outDir, written) });
}

function staleExportFiles(outDir: string, written: readonly string[]): string[] {
  const kept = new Set(written);
  return [...readdirSync(outDir), 'onnx/model.onnx']
    .filter((f) => EXPORT_FILES.test(f) && !kept.has(f) && statSync(join(outDir, f), { throwIfNoEntry: false })?.isFile());
}
