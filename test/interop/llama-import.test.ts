/**
 * `primer import` / `primer export --format hf` for Llama-family checkpoints (LlamaForCausalLM with a
 * tied head and grouped-query attention, Qwen2ForCausalLM with q/k/v biases and an untied lm_head):
 * single-file, sharded (model.safetensors.index.json) and BF16 copies of ../shared/fixtures import,
 * and the imported model's logits match PyTorch's expected ones; export writes fp32 (BF16 on request),
 * one file or save_pretrained-style shards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadPretrained, InteropError } from '../../src/interop/import.ts';
import { exportHf } from '../../src/interop/export-hf.ts';
import { registerInteropCommands } from '../../src/cli/interop.ts';
import { loadAnyModelDir } from '../../src/models/load.ts';
import type { Llama } from '../../src/models/llama.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { verifyModel } from '../../src/train/verify.ts';
import { fixtures, removeTempDirs, repack, tempDir } from './helpers.ts';

test.after(removeTempDirs);

const FIXTURES = [['llama-tiny', 'LlamaForCausalLM', true], ['qwen2-tiny', 'Qwen2ForCausalLM', false]] as const;

async function cli(args: string[]): Promise<Record<string, unknown>> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} }); // usage errors are asserted, not printed
  registerInteropCommands(program);
  const logs: string[] = [];
  const log = console.log;
  console.log = (s: string) => logs.push(s);
  try {
    await program.parseAsync(['node', 'primer', ...args]);
  } finally {
    console.log = log;
  }
  return JSON.parse(logs.join('\n'));
}

/** Logits of a Primer model directory on the fixture's inputs.json. */
function logitsOf(dir: string, fixture: string): Float32Array {
  const inputs = JSON.parse(readFileSync(join(fixtures, fixture, 'inputs.json'), 'utf8')) as { input_ids: number[][] };
  const loaded = loadAnyModelDir(dir);
  assert.equal(loaded.kind, 'llama');
  const [b, t] = [inputs.input_ids.length, inputs.input_ids[0]!.length];
  return noGrad(() => (loaded.model as Llama).forward(Int32Array.from(inputs.input_ids.flat()), b, t).logits.data as Float32Array);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** fp32 → bf16 → fp32, round to nearest even (as torch's .to(torch.bfloat16)). */
function roundBf16(v: Float32Array): Float32Array {
  const out = Float32Array.from(v);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i]! + 0x7fff + ((bits[i]! >>> 16) & 1)) & 0xffff0000) >>> 0;
  return out;
}

for (const [fixture, architecture, tied] of FIXTURES) {
  test(`${fixture}: primer import of a 3-shard copy → logits within 1e-4 of PyTorch, verify passes, export --format hf round-trips`, async () => {
    const sharded = repack(fixture, { shards: 3 });
    assert.ok(existsSync(join(sharded, 'model.safetensors.index.json')) && existsSync(join(sharded, 'model-00003-of-00003.safetensors')));
    const out = join(tempDir('llama-imported'), 'model');
    const summary = await cli(['import', sharded, '--out', out]);
    assert.deepEqual([summary.architecture, summary.kind, summary.dtypes, summary.shards, summary.newlyInitialized], [architecture, 'llama', ['F32'], 3, []]);
    const expected = readSafetensors(join(fixtures, fixture, 'expected.safetensors')).getFloat32('logits');
    const diff = maxAbsDiff(logitsOf(out, fixture), expected);
    assert.ok(diff < 1e-4, `${fixture}: max |Δlogit| ${diff}`);
    const report = verifyModel({ modelDir: out, inputs: join(fixtures, fixture, 'inputs.json'), expected: join(fixtures, fixture, 'expected.safetensors'), tol: 1e-4 });
    assert.ok(report.passed, report.failed.join(', '));

    // HF layout as save_pretrained writes it: lm_head.weight only when untied, tie_word_embeddings explicit.
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual([config.architectures, config.model_type, config.tie_word_embeddings, config.torch_dtype], [[architecture], fixture.split('-')[0], tied, 'float32']);
    const written = readSafetensors(join(out, 'model.safetensors'));
    assert.equal(written.names.includes('lm_head.weight'), !tied);
    assert.ok(existsSync(join(out, 'generation_config.json')));

    // export --format hf of the imported model: the same tensors, bit for bit.
    const exported = join(tempDir('llama-exported'), 'hf');
    const ex = await cli(['export', '--format', 'hf', '--model', out, '--out', exported]);
    assert.equal(ex.dtype, 'F32');
    const again = readSafetensors(join(exported, 'model.safetensors'));
    const source = readSafetensors(join(fixtures, fixture, 'model.safetensors'));
    assert.deepEqual([...again.names].sort(), [...source.names].sort());
    for (const n of source.names) assert.deepEqual(again.getFloat32(n), source.getFloat32(n), n);
  });

  test(`${fixture}: BF16 weights widen exactly to fp32 on import; logits within 5e-2 of PyTorch's fp32 ones; export --dtype BF16`, async () => {
    const bf16 = repack(fixture, { dtype: 'BF16' });
    const p = loadPretrained(bf16);
    assert.deepEqual([p.kind, p.dtypes], ['llama', ['BF16']]);
    // Exact: every imported parameter equals the fixture's fp32 weight rounded to bf16.
    const source = readSafetensors(join(fixtures, fixture, 'model.safetensors'));
    const params = new Map(p.model.namedParameters());
    for (const n of source.names) assert.deepEqual(params.get(n)!.data, roundBf16(source.getFloat32(n)), n);
    const out = join(tempDir('llama-bf16'), 'model');
    const summary = await cli(['import', bf16, '--out', out]);
    assert.deepEqual(summary.dtypes, ['BF16']);
    // The bound is not 1e-4 because the weights themselves changed: bf16 keeps 8 significant bits
    // (relative rounding ≤ 2^-9 ≈ 2e-3 per weight), and each logit (|logit| ≤ 1.9 here) sums hundreds of
    // rounded products through two layers; measured 1.1e-2 (llama-tiny) and 1.9e-2 (qwen2-tiny). A wrong
    // conversion (truncating the wrong half, byte order) moves them by O(1), far beyond 5e-2.
    const expected = readSafetensors(join(fixtures, fixture, 'expected.safetensors')).getFloat32('logits');
    const diff = maxAbsDiff(logitsOf(out, fixture), expected);
    assert.ok(diff < 5e-2 && diff > 0, `${fixture} BF16: max |Δlogit| ${diff}`);

    // Export keeps fp32 unless asked: --dtype BF16 stores bf16 and says so in config.json.
    const exported = join(tempDir('llama-bf16-export'), 'hf');
    exportHf(loadPretrained(out), exported, { dtype: 'BF16' });
    const w = readSafetensors(join(exported, 'model.safetensors'));
    assert.deepEqual(new Set(w.names.map((n) => w.info(n).dtype)), new Set(['BF16']));
    assert.equal(JSON.parse(readFileSync(join(exported, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    for (const n of source.names) assert.deepEqual(w.getFloat32(n), params.get(n)!.data, n);
  });
}

test('Llama-family import errors: a differing tied head, a missing layer tensor, a wrong head size or layer count are named', () => {
  const src = readSafetensors(join(fixtures, 'llama-tiny', 'model.safetensors'));
  const head = Float32Array.from(src.getFloat32('model.embed_tokens.weight'));
  head[3]! += 1;
  const code = (fn: () => unknown, c: string, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof InteropError && e.code === c && re.test(e.message));
  code(() => loadPretrained(repack('llama-tiny', { extra: [{ name: 'lm_head.weight', shape: [97, 32], data: head }] })), 'TIED_MISMATCH', /"lm_head\.weight" differs from "model\.embed_tokens\.weight"/);
  // A stored copy equal to the embedding is accepted (older checkpoints save the tied head too).
  assert.equal(loadPretrained(repack('llama-tiny', { extra: [{ name: 'lm_head.weight', shape: [97, 32], data: src.getFloat32('model.embed_tokens.weight') }] })).kind, 'llama');
  code(() => loadPretrained(repack('qwen2-tiny', { rename: (n) => (n === 'model.layers.1.self_attn.k_proj.bias' ? null : n) })), 'MISSING_TENSORS', /missing tensors: model\.layers\.1\.self_attn\.k_proj\.bias/);
  code(() => loadPretrained(repack('llama-tiny', { config: { head_dim: 4 } })), 'SHAPE_MISMATCH', /q_proj\.weight: \[32,32\] in the checkpoint, \[16,32\] in the config/);
  code(() => loadPretrained(repack('llama-tiny', { config: { num_hidden_layers: 1000 } })), 'SHAPE_MISMATCH', /at least \d+ parameters/);
  code(() => loadPretrained(repack('llama-tiny', { config: { architectures: ['Qwen2ForCausalLM'] } })), 'BAD_CONFIG', /does not match model_type "llama"/);
});

test('export --format hf --max-shard-size writes save_pretrained-style shards + index that import back bit for bit', async () => {
  const out = join(tempDir('llama-shards'), 'hf');
  const summary = await cli(['export', '--format', 'hf', '--model', join(fixtures, 'qwen2-tiny'), '--out', out, '--max-shard-size', '40KB']);
  const files = summary.files as string[];
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.ok(shards.length >= 5 && files.includes('model.safetensors.index.json') && !existsSync(join(out, 'model.safetensors')), files.join(', '));
  assert.equal(shards.at(-1), `model-${String(shards.length).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
  const source = readSafetensors(join(fixtures, 'qwen2-tiny', 'model.safetensors'));
  let total = 0;
  for (const n of source.names) total += 4 * source.info(n).shape.reduce((a, d) => a * d, 1);
  assert.equal(index.metadata.total_size, total);
  for (const shard of shards) {
    const f = readSafetensors(join(out, shard));
    const bytes = f.names.reduce((a, n) => a + 4 * f.info(n).shape.reduce((x, d) => x * d, 1), 0);
    assert.ok(bytes <= 40_000, `${shard}: ${bytes} bytes`);
  }
  const p = loadPretrained(out);
  assert.equal(p.shards, shards.length);
  const params = new Map(p.model.namedParameters());
  for (const n of source.names) assert.deepEqual(params.get(n)!.data, source.getFloat32(n), n);
  // Exporting again without a limit into the same folder leaves one layout only (the index would otherwise be stale).
  exportHf(p, out);
  assert.ok(existsSync(join(out, 'model.safetensors')) && !existsSync(join(out, 'model.safetensors.index.json')));
  await assert.rejects(cli(['export', '--model', join(fixtures, 'qwen2-tiny'), '--out', join(out, 'x'), '--max-shard-size', '2 parsecs']), /expected a size such as 2GB/);
});
