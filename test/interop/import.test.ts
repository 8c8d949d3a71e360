/**
 * loadPretrained: the fixtures and Hub re-packs of them (no prefix, gamma/beta, F16/BF16, shards)
 * import and verify against PyTorch's outputs; bad directories give InteropErrors naming the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained, InteropError } from '../../src/interop/import.ts';
import { exportHf } from '../../src/interop/export-hf.ts';
import { verifyModel } from '../../src/train/verify.ts';
import { readSafetensors, writeSafetensors, f32BitsToF16Bits } from '../../src/io/safetensors.ts';
import { fixtures, fixtureLogits, removeTempDirs, repack, tempDir } from './helpers.ts';

test.after(removeTempDirs);

/** Imports dir into Primer layout and runs `primer verify` with the fixture's inputs and expected tensors. */
function importAndVerify(dir: string, fixture: string, tol = 1e-4) {
  const out = tempDir('imported');
  exportHf(loadPretrained(dir), out);
  return verifyModel({ modelDir: out, inputs: join(fixtures, fixture, 'inputs.json'), expected: join(fixtures, fixture, 'expected.safetensors'), tol });
}

function assertCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InteropError, `expected an InteropError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('both fixtures import and verify (logits, losses and gradients within 1e-4 of PyTorch)', () => {
  for (const [name, arch, checked] of [['gpt2-tiny', 'GPT2LMHeadModel', 7], ['bert-tiny', 'BertForPreTraining', 13]] as const) {
    const p = loadPretrained(join(fixtures, name));
    assert.equal(p.architecture, arch);
    assert.deepEqual([p.dtypes, p.shards, p.newlyInitialized], [['F32'], 1, []]);
    const report = importAndVerify(join(fixtures, name), name);
    assert.ok(report.passed, `${name}: ${report.failed.join(', ')}`);
    assert.equal(report.checked, checked);
    assert.ok(report.worst!.maxRelError < 1e-4, `${name}: ${report.worst!.maxRelError}`);
  }
});

test('hub layout: GPT-2 without transformer. prefix plus mask buffers, BERT with gamma/beta and position_ids', () => {
  const gpt = repack('gpt2-tiny', {
    rename: (n) => n.replace(/^transformer\./, ''),
    extra: [
      { name: 'h.0.attn.bias', shape: [1, 1, 64, 64], data: new Float32Array(64 * 64).fill(1) },
      { name: 'h.1.attn.masked_bias', shape: [], data: Float32Array.of(-1e4) },
    ],
  });
  assert.ok(importAndVerify(gpt, 'gpt2-tiny').passed);
  const bert = repack('bert-tiny', {
    rename: (n) => n.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'),
    extra: [{ name: 'bert.embeddings.position_ids', shape: [1, 64], data: new BigInt64Array(64).map((_, i) => BigInt(i)) }],
  });
  const report = importAndVerify(bert, 'bert-tiny');
  assert.ok(report.passed, report.failed.join(', '));
  assert.equal(report.checked, 13);
});

test('F16 and BF16 weights import exactly as the fp32 logits of the rounded weights, and verify within 1e-2', () => {
  for (const name of ['gpt2-tiny', 'bert-tiny'] as const) {
    const half = loadPretrained(repack(name, { dtype: 'F16' }));
    assert.deepEqual(half.dtypes, ['F16']);
    // The same weights rounded to f16 by hand, stored as F32: the import must widen exactly.
    const rounded = repack(name);
    const w = readSafetensors(join(rounded, 'model.safetensors'));
    const f16 = new Float32Array(1);
    const bits = new Uint32Array(f16.buffer);
    const tensors = w.names.map((n) => {
      const data = Float32Array.from(w.getFloat32(n), (v) => {
        f16[0] = v;
        const h = f32BitsToF16Bits(bits[0]!);
        const e = (h >>> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
        return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
      });
      return { name: n, shape: w.info(n).shape, data };
    });
    writeSafetensors(join(rounded, 'model.safetensors'), tensors);
    assert.deepEqual(Array.from(fixtureLogits(half, name)), Array.from(fixtureLogits(loadPretrained(rounded), name)));
    const report = importAndVerify(repack(name, { dtype: 'F16' }), name, 1e-2);
    assert.ok(report.passed, `${name} F16: worst ${JSON.stringify(report.worst)}`);
    const bf16 = importAndVerify(repack(name, { dtype: 'BF16' }), name, 5e-2);
    assert.ok(bf16.passed, `${name} BF16: worst ${JSON.stringify(bf16.worst)}`);
  }
});

test('sharded checkpoints (model.safetensors.index.json, 3 shards) import and verify', () => {
  for (const name of ['gpt2-tiny', 'bert-tiny'] as const) {
    const dir = repack(name, { shards: 3 });
    assert.equal(loadPretrained(dir).shards, 3);
    const report = importAndVerify(dir, name);
    assert.ok(report.passed, `${name}: ${report.failed.join(', ')}`);
  }
});

test('a sharded index inconsistent with its shards is refused, naming the tensor or shard', () => {
  const index = (dir: string) => JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  const saveIndex = (dir: string, v: unknown) => writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(v));
  let dir = repack('gpt2-tiny', { shards: 2 });
  rmSync(join(dir, 'model-00002-of-00002.safetensors'));
  assertCode(() => loadPretrained(dir), 'NOT_FOUND', /shard "model-00002-of-00002\.safetensors" does not exist/);

  dir = repack('gpt2-tiny', { shards: 2 });
  let v = index(dir);
  v.weight_map['transformer.wte.weight'] = 'model-00002-of-00002.safetensors';
  saveIndex(dir, v);
  assertCode(() => loadPretrained(dir), 'BAD_INDEX', /absent from their shard: transformer\.wte\.weight/);

  dir = repack('gpt2-tiny', { shards: 2 });
  v = index(dir);
  delete v.weight_map['transformer.ln_f.bias'];
  saveIndex(dir, v);
  assertCode(() => loadPretrained(dir), 'BAD_INDEX', /not listed .*transformer\.ln_f\.bias/);

  v.weight_map['transformer.ln_f.bias'] = '../model-00002-of-00002.safetensors';
  saveIndex(dir, v);
  assertCode(() => loadPretrained(dir), 'BAD_INDEX', /must be a file name in the model directory/);
});

test('pickle-only checkpoints are refused without being opened', () => {
  const dir = repack('gpt2-tiny');
  renameSync(join(dir, 'model.safetensors'), join(dir, 'pytorch_model.bin'));
  assertCode(() => loadPretrained(dir), 'PICKLE_REFUSED', /Primer never executes pickle.*convert to safetensors with/s);
  rmSync(join(dir, 'pytorch_model.bin'));
  assertCode(() => loadPretrained(dir), 'NO_WEIGHTS', /no model\.safetensors/);
});

test('unsupported architectures, missing/extra tensors, shape and dtype mismatches are typed and named', () => {
  assertCode(() => loadPretrained(repack('gpt2-tiny', { config: { architectures: ['MistralForCausalLM'] } })), 'UNSUPPORTED_ARCHITECTURE', /"MistralForCausalLM" is not supported/);
  assertCode(() => loadPretrained(repack('gpt2-tiny', { config: { model_type: 't5', architectures: undefined } })), 'UNSUPPORTED_ARCHITECTURE', /"t5"/);
  assertCode(() => loadPretrained(repack('bert-tiny', { config: { architectures: ['GPT2LMHeadModel'] } })), 'BAD_CONFIG', /does not match model_type "bert"/);
  assertCode(() => loadPretrained(repack('gpt2-tiny', { config: { n_head: 5 } })), 'BAD_CONFIG', /n_head/);
  const renamed = repack('gpt2-tiny', { rename: (n) => (n === 'transformer.h.1.mlp.c_fc.bias' ? null : n === 'transformer.ln_f.bias' ? 'transformer.ln_final.bias' : n) });
  assertCode(() => loadPretrained(renamed), 'MISSING_TENSORS', /missing tensors: transformer\.h\.1\.mlp\.c_fc\.bias, transformer\.ln_f\.bias/);
  const extra = repack('gpt2-tiny', { extra: [{ name: 'transformer.h.9.ln_1.weight', shape: [64], data: new Float32Array(64) }] });
  assertCode(() => loadPretrained(extra), 'UNEXPECTED_TENSORS', /unexpected tensors: transformer\.h\.9\.ln_1\.weight/);
  assertCode(() => loadPretrained(repack('gpt2-tiny', { config: { n_positions: 32 } })), 'SHAPE_MISMATCH', /transformer\.wpe\.weight: \[64,64\] in the checkpoint, \[32,64\] in the config/);
  assertCode(() => loadPretrained(repack('gpt2-tiny', { config: { n_layer: 100000 } })), 'SHAPE_MISMATCH', /at least \d+ parameters/);
  const ints = repack('gpt2-tiny', { rename: (n) => (n === 'transformer.ln_f.bias' ? null : n), extra: [{ name: 'transformer.ln_f.bias', shape: [64], data: new Int32Array(64) }] });
  assertCode(() => loadPretrained(ints), 'UNSUPPORTED_DTYPE', /transformer\.ln_f\.bias \(I32\)/);
  const w = readSafetensors(join(fixtures, 'gpt2-tiny', 'model.safetensors'));
  const head = Float32Array.from(w.getFloat32('transformer.wte.weight'));
  head[7]! += 1;
  assertCode(() => loadPretrained(repack('gpt2-tiny', { extra: [{ name: 'lm_head.weight', shape: [512, 64], data: head }] })), 'TIED_MISMATCH', /"lm_head\.weight" differs/);
});
