/**
 * Model directories in HF layout: the Hub variants load (GPT-2 without the `transformer.` prefix,
 * attention-mask buffers, tied lm_head present or not, BERT gamma/beta), mismatches are listed by
 * name, config errors name the field, and saveModelDir round-trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.ts';
import { loadModelDir, saveModelDir, ModelLoadError } from '../../src/models/load.ts';
import { verifyModel } from '../../src/train/verify.ts';
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');

/** A copy of a fixture whose weights are re-packed by `rename` (null drops a tensor) plus `extra` tensors. */
function variant(name: string, rename: (n: string) => string | null, extra: (f: ReturnType<typeof readSafetensors>) => TensorToWrite[] = () => [], configPatch: Record<string, unknown> = {}): string {
  const src = join(fixtures, name);
  const dir = mkdtempSync(join(tmpdir(), `primer-${name}-`));
  for (const f of ['inputs.json', 'expected.safetensors']) copyFileSync(join(src, f), join(dir, f));
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...configPatch }));
  const w = readSafetensors(join(src, 'model.safetensors'));
  const tensors: TensorToWrite[] = [];
  for (const n of w.names) {
    const to = rename(n);
    if (to !== null) tensors.push({ name: to, shape: w.info(n).shape, data: w.getFloat32(n) });
  }
  writeSafetensors(join(dir, 'model.safetensors'), [...tensors, ...extra(w)]);
  return dir;
}

test('GPT-2 saved without the transformer. prefix, with attn.bias/masked_bias buffers and a tied lm_head, loads and verifies', () => {
  const dir = variant('gpt2-tiny', (n) => n.replace(/^transformer\./, ''), (w) => [
    { name: 'h.0.attn.bias', shape: [1, 1, 64, 64], data: new Float32Array(64 * 64).fill(1) },
    { name: 'h.0.attn.masked_bias', shape: [], data: Float32Array.of(-1e4) },
    { name: 'lm_head.weight', shape: w.info('transformer.wte.weight').shape, data: w.getFloat32('transformer.wte.weight') },
  ]);
  const loaded = loadModelDir(dir);
  assert.equal(loaded.kind, 'gpt2');
  const report = verifyModel({ modelDir: dir });
  assert.ok(report.passed, JSON.stringify(report.failed));
  assert.equal(report.checked, 7);
  assert.ok(report.worst!.maxRelError < 1e-4);
});

test('an lm_head.weight that differs from wte is refused', () => {
  const dir = variant('gpt2-tiny', (n) => n, (w) => {
    const head = Float32Array.from(w.getFloat32('transformer.wte.weight'));
    head[3]! += 0.5;
    return [{ name: 'lm_head.weight', shape: w.info('transformer.wte.weight').shape, data: head }];
  });
  assert.throws(() => loadModelDir(dir), (e: Error) => e instanceof ModelLoadError && /"lm_head\.weight" differs from "transformer\.wte\.weight"/.test(e.message));
});

test('BERT with LayerNorm gamma/beta names and a tied decoder loads and verifies', () => {
  const dir = variant('bert-tiny', (n) => n.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'), (w) => [
    { name: 'cls.predictions.decoder.weight', shape: w.info('bert.embeddings.word_embeddings.weight').shape, data: w.getFloat32('bert.embeddings.word_embeddings.weight') },
    { name: 'bert.embeddings.position_ids', shape: [1, 64], data: Float32Array.from({ length: 64 }, (_, i) => i) },
  ]);
  const report = verifyModel({ modelDir: dir });
  assert.equal(report.kind, 'bert');
  assert.ok(report.passed, JSON.stringify(report.failed));
  assert.equal(report.checked, 13);
});

test('missing and unexpected tensors are listed by name', () => {
  const dir = variant('gpt2-tiny', (n) => (n === 'transformer.h.1.mlp.c_fc.bias' ? null : n === 'transformer.ln_f.bias' ? 'transformer.ln_final.bias' : n));
  assert.throws(() => loadModelDir(dir), (e: Error) => {
    assert.match(e.message, /missing tensors: transformer\.h\.1\.mlp\.c_fc\.bias, transformer\.ln_f\.bias/);
    assert.match(e.message, /unexpected tensors: transformer\.ln_final\.bias/);
    return true;
  });
});

test('config.json errors name the field', () => {
  const bad = variant('gpt2-tiny', (n) => n, undefined, { n_head: 'four', n_embd: -64 });
  assert.throws(() => loadModelDir(bad), (e: Error) => /field "n_embd"/.test(e.message) && /field "n_head"/.test(e.message));
  const unknown = variant('gpt2-tiny', (n) => n, undefined, { model_type: 'llama' });
  assert.throws(() => loadModelDir(unknown), /field "model_type" is "llama"; supported: "gpt2", "bert"/);
  const notDivisible = variant('gpt2-tiny', (n) => n, undefined, { n_head: 3 });
  assert.throws(() => loadModelDir(notDivisible), /field "n_head": n_embd must be divisible by n_head/);
});

test('saveModelDir writes an HF directory that loads back identically, replacing files atomically', () => {
  const config = gptPreset('tiny', { vocabSize: 50, layers: 1, dims: 16, heads: 2, context: 8 });
  const model = new GPT(config, 9);
  const dir = join(mkdtempSync(join(tmpdir(), 'primer-save-')), 'model');
  saveModelDir(dir, model, config);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['GPT2LMHeadModel']);
  assert.equal(cfg.n_embd, 16);
  const back = loadModelDir(dir);
  const orig = new Map(model.namedParameters());
  for (const [n, p] of back.model.namedParameters()) assert.deepEqual(p.data, orig.get(n)!.data, n);
  const model2 = new GPT(config, 10);
  saveModelDir(dir, model2, config); // existing directory: files replaced
  assert.deepEqual(loadModelDir(dir).model.namedParameters()[0]![1].data, model2.namedParameters()[0]![1].data);
  assert.ok(!existsSync(join(dir, 'tokenizer.json')));
});

// A save over an existing model, killed (SIGKILL) part-way: the next open sees the old model whole or
// the new one whole, never one's config.json beside the other's weights.
test('a model save killed between its renames or before its commit leaves one whole model', () => {
  const root = mkdtempSync(join(tmpdir(), 'primer-swap-'));
  const src = (p: string) => JSON.stringify(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', p));
  const script = join(root, 'save.ts');
  // Saves model A (1 layer), then model B (2 layers) over it, killing itself at the `killAt`-th rename
  // into the model directory (1 = after config.json or the weights moved, before the rest) or, with
  // killAt 0, while B's files are still being written (before the commit marker).
  writeFileSync(script, `
    import fs from 'node:fs';
    import { syncBuiltinESMExports } from 'node:module';
    import { saveModelDir } from ${src('models/load.ts')};
    import { GPT } from ${src('models/gpt.ts')};
    import { gptPreset } from ${src('models/presets.ts')};
    const [dir, killAt] = [process.argv[2], Number(process.argv[3])];
    const config = (layers) => gptPreset('tiny', { vocabSize: 50, layers, dims: 16, heads: 2, context: 8 });
    saveModelDir(dir, new GPT(config(1), 1), config(1));
    const rename = fs.renameSync, write = fs.writeFileSync;
    let renames = 0;
    fs.renameSync = (from, to) => {
      rename(from, to);
      if (killAt > 0 && !String(to).includes('.primer-staging') && ++renames === killAt) process.kill(process.pid, 'SIGKILL');
    };
    if (killAt === 0) fs.writeSync = () => process.kill(process.pid, 'SIGKILL');
    syncBuiltinESMExports();
    saveModelDir(dir, new GPT(config(2), 2), config(2));
  `);
  for (const [killAt, layers] of [[0, 1], [1, 2]] as const) {
    const dir = join(root, `model-${killAt}`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, dir, String(killAt)], { encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    assert.ok(existsSync(join(dir, '.primer-staging')), 'the kill left the staging folder');
    const loaded = loadModelDir(dir); // finishes (killAt 1) or discards (killAt 0) the cut-short save
    assert.equal((loaded.config as { n_layer?: number }).n_layer, layers);
    assert.deepEqual(loaded.model.namedParameters().map(([n]) => n), new GPT(gptPreset('tiny', { vocabSize: 50, layers, dims: 16, heads: 2, context: 8 }), 0).namedParameters().map(([n]) => n));
    assert.ok(!existsSync(join(dir, '.primer-staging')));
  }
});
