/**
 * `primer import DIR [--out DIR]` and `primer export --format hf --model DIR --out DIR`.
 *
 * Import checks a Hugging Face directory (any supported architecture, sharded or not, F32/F16/BF16)
 * and, with --out, writes it in Primer's canonical layout (fp32, one model.safetensors), which every
 * other command loads. Export writes what transformers' from_pretrained loads, and with --format onnx
 * also onnx/model.onnx, so the directory is a complete Transformers.js model.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { loadPretrained, tokenizerMismatches, type Pretrained } from '../interop/import.ts';
import { EXPORT_DTYPES, exportHf, type ExportDtype } from '../interop/export-hf.ts';
import { exportOnnx } from '../interop/onnx.ts';
import { action, choiceArg } from './options.ts';
import { refuseOutputOverInput } from '../io/paths.ts';

/** "2GB", "500MB", "64KB" or plain bytes → bytes (decimal units, as transformers' max_shard_size). */
function sizeArg(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(value.trim());
  const bytes = m ? Math.floor(Number(m[1]) * { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] ?? 'B').toUpperCase() as 'B']) : NaN;
  if (!(bytes >= 1)) throw new InvalidArgumentError(`expected a size such as 2GB, 500MB or 65536, got "${value}"`);
  return bytes;
}

function summary(p: Pretrained, dir: string): Record<string, unknown> {
  return {
    model: dir, architecture: p.architecture, kind: p.kind, dtypes: p.dtypes, shards: p.shards,
    parameters: p.model.namedParameters().reduce((n, [, t]) => n + t.size, 0),
    tokenizer: p.tokenizer ? { type: p.tokenizer.type, vocabSize: p.tokenizer.vocabSize } : null,
    newlyInitialized: p.newlyInitialized,
  };
}

/** Said on stderr when a converted model has no tokenizer, or one that disagrees with it: the conversion works, its use does not. */
function warnNoTokenizer(p: Pretrained, dir: string, consequence: string): void {
  if (!p.tokenizer) console.error(`warning: ${dir} has no tokenizer (tokenizer.json, vocab.json + merges.txt or vocab.txt): ${consequence}`);
  for (const m of tokenizerMismatches(p)) console.error(`warning: ${dir}: ${m}`);
}

export function registerInteropCommands(program: Command): void {
  program
    .command('import')
    .description('check a Hugging Face model directory (GPT-2, BERT, Llama, Qwen2; safetensors, sharded or not, F32/F16/BF16) and optionally convert it to Primer layout')
    .argument('<dir>', 'directory with config.json + model.safetensors (or model.safetensors.index.json) + tokenizer files')
    .option('--out <dir>', 'write the model in Primer layout (fp32, one model.safetensors) to this directory')
    .action(action((dir: string, o: { out?: string }) => {
      if (o.out) refuseOutputOverInput(o.out, { 'model': dir });
      const p = loadPretrained(dir);
      warnNoTokenizer(p, dir, 'generate, serve, fill-mask and fine-tuning need one; copy it into the model directory');
      const files = o.out ? exportHf(p, o.out) : [];
      console.log(JSON.stringify({ ...summary(p, dir), ...(o.out ? { out: o.out, files } : {}) }, null, 2));
    }));
  program
    .command('export')
    .description('export a model directory for other frameworks (hf: transformers from_pretrained; onnx: the hf files plus onnx/model.onnx, for Transformers.js / onnxruntime)')
    .requiredOption('--model <dir>', 'model directory (Primer or Hugging Face layout)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--format <format>', 'output format', choiceArg(['hf', 'onnx'] as const), 'hf')
    .option('--dtype <dtype>', 'stored dtype of the hf weights (F32 keeps every bit; BF16/F16 halve the size, rounding to nearest even)', choiceArg(Object.keys(EXPORT_DTYPES) as ExportDtype[]), 'F32')
    .option('--max-shard-size <size>', 'hf: split weights larger than this into model-0000i-of-0000n.safetensors + index (e.g. 2GB, 500MB)', sizeArg)
    .action(action((o: { model: string; out: string; format: 'hf' | 'onnx'; dtype: ExportDtype; maxShardSize?: number }) => {
      refuseOutputOverInput(o.out, { '--model': o.model });
      if (o.format === 'onnx' && o.dtype !== 'F32') throw new RangeError('--dtype applies to --format hf; the ONNX graph is fp32');
      const p = loadPretrained(o.model);
      warnNoTokenizer(p, o.model, o.format === 'onnx' ? 'Transformers.js needs tokenizer.json beside the ONNX model' : 'transformers\' AutoTokenizer will not find one in the export');
      const files = o.format === 'onnx' ? exportOnnx(p, o.out) : exportHf(p, o.out, { dtype: o.dtype, maxShardBytes: o.maxShardSize });
      console.log(JSON.stringify({ ...summary(p, o.model), format: o.format, ...(o.format === 'hf' ? { dtype: o.dtype } : {}), out: o.out, files }, null, 2));
    }));
}
