/** Shared helpers for the interop tests: fixture paths and re-packing the fixtures into Hub variants. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors, type SafetensorsDtype, type TensorToWrite } from '../../src/io/safetensors.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import type { Pretrained } from '../../src/interop/import.ts';
import type { GPT } from '../../src/models/gpt.ts';
import type { Bert } from '../../src/models/bert.ts';

export const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
/** This repository's own PyTorch fixtures (scripts/fixtures/*.py): bert-relative-tiny. */
export const ownFixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const fixtureNames = ['gpt2-tiny', 'bert-tiny'] as const;

const created: string[] = [];

/** A fresh temporary directory, removed by removeTempDirs (call it from test.after). */
export function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `primer-interop-${tag}-`));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function fixtureConfig(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(fixtures, name, 'config.json'), 'utf8'));
}

export interface RepackOptions {
  /** New name for each fixture tensor; null drops it. */
  rename?: (name: string) => string | null;
  extra?: TensorToWrite[];
  dtype?: SafetensorsDtype;
  /** Split into this many shards with a model.safetensors.index.json. */
  shards?: number;
  config?: Record<string, unknown>;
}

/** A copy of a fixture (with its inputs.json / expected.safetensors) whose weights are re-packed. */
export function repack(name: string, o: RepackOptions = {}): string {
  const src = join(fixtures, name);
  const dir = tempDir(name);
  for (const f of ['inputs.json', 'expected.safetensors']) copyFileSync(join(src, f), join(dir, f));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...fixtureConfig(name), ...o.config }));
  const w = readSafetensors(join(src, 'model.safetensors'));
  const tensors: TensorToWrite[] = [];
  for (const n of w.names) {
    const to = o.rename ? o.rename(n) : n;
    if (to !== null) tensors.push({ name: to, shape: w.info(n).shape, data: w.getFloat32(n), dtype: o.dtype });
  }
  tensors.push(...(o.extra ?? []));
  writeShards(dir, tensors, o.shards ?? 1);
  return dir;
}

/** Writes model.safetensors, or `count` shards named as transformers names them plus the index. */
export function writeShards(dir: string, tensors: TensorToWrite[], count: number): void {
  if (count <= 1) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return;
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(tensors.length / count);
  for (let s = 0; s < count; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const t of part) weightMap[t.name] = file;
    writeSafetensors(join(dir, file), part, { format: 'pt' });
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
}

/** Writes a directory with the given config and tensors (a single model.safetensors). */
export function writeModel(dir: string, config: Record<string, unknown>, tensors: TensorToWrite[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

/** The fixture's GPT-2 / BERT logits on its own inputs.json (eval mode, no grad). */
export function fixtureLogits(p: Pretrained, name: string): Float32Array {
  const inputs = JSON.parse(readFileSync(join(fixtures, name, 'inputs.json'), 'utf8')) as { input_ids: number[][]; token_type_ids?: number[][] };
  const [b, t] = [inputs.input_ids.length, inputs.input_ids[0]!.length];
  const ids = Int32Array.from(inputs.input_ids.flat());
  return noGrad(() => {
    if (p.kind === 'gpt2') return (p.model as GPT).forward(ids, b, t).logits.data as Float32Array;
    const tokenTypeIds = inputs.token_type_ids ? Int32Array.from(inputs.token_type_ids.flat()) : undefined;
    return (p.model as Bert).forward({ inputIds: ids, batch: b, length: t, tokenTypeIds }).predictionLogits.data as Float32Array;
  });
}
