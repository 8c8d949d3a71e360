// The layering of src/: every folder is a layer, and a module may import only from its own layer or
// from layers below it. An upward import (a model importing from data/, the backend from tensor/…)
// fails here with the file, the line and both layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';

/** Bottom to top. */
const LAYERS = [
  'util', // seeded RNG: below everything that draws random numbers, the backend's dropout included
  'io', // errors, atomic writes, safetensors
  'backend', // kernels: reference TypeScript and native C behind one interface
  'tensor', // tensors, autograd, ops, optimizers
  'nn', // Module, Linear, LayerNorm, Embedding
  'tokenizers',
  'models', // GPT, BERT, their task heads, model directories
  'data', // corpora, tokenized streams, batches
  'infer', // sampling and decoding
  'train', // the training loop, checkpoints, pre-training
  'tasks', // fine-tuning for classification, tagging, QA; embeddings, retrieval
  'adapt', // LoRA, SFT, chat
  'interop', // Hugging Face and ONNX export/import
  'serve', // HTTP server and web UI
  'cli', // the `primer` command
  'index.ts', // the public API
] as const;

const src = resolve(import.meta.dirname, '..', '..', 'src');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string): string => relative(src, file).split(sep)[0]!;

/** Relative module specifiers of static imports, re-exports and dynamic imports, with their line numbers. */
export function importsOf(text: string): Array<{ spec: string; line: number }> {
  const out: Array<{ spec: string; line: number }> = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ spec: m[1]!, line: text.slice(0, m.index).split('\n').length });
  return out;
}

test('importsOf finds static, type-only, re-export, side-effect and dynamic imports', () => {
  const text = "import { a } from './a.ts';\nimport type { B } from '../b/b.ts';\nexport { c } from './c.ts';\n"
    + "import './d.ts';\nconst e = await import('../e/e.ts');\nimport x from 'node:fs';\nexport {\n  f,\n} from '../f/f.ts';\n";
  assert.deepEqual(importsOf(text), [
    { spec: './a.ts', line: 1 }, { spec: '../b/b.ts', line: 2 }, { spec: './c.ts', line: 3 },
    { spec: './d.ts', line: 4 }, { spec: '../e/e.ts', line: 5 }, { spec: '../f/f.ts', line: 9 },
  ]);
});

test('no module in src/ imports from a layer above its own', () => {
  const files = walk(src);
  const unknown = [...new Set(files.map(layerOf))].filter((l) => !(LAYERS as readonly string[]).includes(l));
  assert.deepEqual(unknown, [], `folders of src/ missing from LAYERS (give each its place): ${unknown.join(', ')}`);
  const upward: string[] = [];
  let arrows = 0;
  for (const file of files) {
    const from = layerOf(file);
    for (const { spec, line } of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(src + sep)) continue;
      const to = layerOf(target);
      arrows++;
      if (LAYERS.indexOf(to as never) > LAYERS.indexOf(from as never)) {
        upward.push(`${relative(src, file)}:${line} (${from}) imports ${spec} (${to})`);
      }
    }
  }
  assert.ok(arrows > 300, `only ${arrows} imports found: the scan is broken`);
  assert.deepEqual(upward, [], `upward imports:\n  ${upward.join('\n  ')}`);
});
