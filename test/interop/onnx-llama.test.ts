/**
 * `primer export --format onnx` of Llama-family models, loaded by Transformers.js (onnxruntime-node,
 * CPU) from the local directory: logits, a past-key-value step and greedy generation match Primer's
 * own forward pass (also on a left-padded batch), on llama-tiny (grouped-query attention 4/2, tied head) and qwen2-tiny (q/k/v
 * biases, multi-query attention 4/1, untied head, rope_theta 1e6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { AutoModelForCausalLM, DynamicCache, Tensor, env } from '@huggingface/transformers';
import { loadPretrained } from '../../src/interop/import.ts';
import { exportOnnx } from '../../src/interop/onnx.ts';
import { decodeOnnxModel } from '../../src/interop/onnx-proto.ts';
import { registerInteropCommands } from '../../src/cli/interop.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import type { Llama, LlamaConfig } from '../../src/models/llama.ts';
import { fixtures, removeTempDirs, tempDir } from './helpers.ts';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useFSCache = false;

test.after(removeTempDirs);

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
};
const int64 = (ids: readonly number[]) => new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);

for (const [fixture, kvHeads, headDim] of [['llama-tiny', 2, 8], ['qwen2-tiny', 1, 12]] as const) {
  test(`Transformers.js ${fixture}: logits, a past-key-value step and greedy generation match Primer within 1e-4`, async () => {
    const p = loadPretrained(join(fixtures, fixture));
    const model = p.model as Llama;
    const config = p.config as LlamaConfig;
    const layers = config.num_hidden_layers;
    const v = config.vocab_size;
    const dir = join(tempDir('onnx-llama'), 'out');
    exportOnnx(p, dir);
    const m = decodeOnnxModel(readFileSync(join(dir, 'onnx', 'model.onnx')));
    const kv = Array.from({ length: layers }, (_, i) => [`${i}.key`, `${i}.value`]).flat();
    assert.deepEqual(m.graph.input.map((x) => x.name), ['input_ids', 'attention_mask', 'position_ids', ...kv.map((n) => `past_key_values.${n}`)]);
    assert.deepEqual(m.graph.output.map((x) => x.name).sort(), ['logits', ...kv.map((n) => `present.${n}`)].sort());
    assert.deepEqual(m.graph.input[3]!.type.tensorType.shape.dim.map((d) => d.dimValue ?? d.dimParam), ['batch_size', kvHeads, 'past_sequence_length', headDim]);

    const inputs = JSON.parse(readFileSync(join(fixtures, fixture, 'inputs.json'), 'utf8')) as { input_ids: number[][] };
    const prompt = inputs.input_ids[0]!.slice(0, 8);
    const primerLogits = (ids: readonly number[]) => noGrad(() => Float32Array.from(model.forward(Int32Array.from(ids), 1, ids.length).logits.data));
    const tjs = await AutoModelForCausalLM.from_pretrained(dir, { dtype: 'fp32' });
    try {
      const first = await tjs({ input_ids: int64(prompt), attention_mask: int64(prompt.map(() => 1)) });
      const want = primerLogits(prompt);
      const d1 = maxDiff(first.logits.data as Float32Array, want);
      assert.ok(d1 < 1e-4, `${fixture} prompt logits: ${d1}`);
      // And PyTorch's logits for the fixture's first row (the same prefix: causal attention).
      const expected = readSafetensors(join(fixtures, fixture, 'expected.safetensors')).getFloat32('logits').subarray(0, prompt.length * v);
      assert.ok(maxDiff(first.logits.data as Float32Array, expected) < 1e-4);

      // A left-padded batch: Transformers.js derives position_ids from attention_mask, so the padded
      // row's real tokens get positions 0…5 and must see the same logits as the unpadded sequence.
      const short = inputs.input_ids[1]!.slice(0, 6);
      const batch = await tjs({
        input_ids: new Tensor('int64', BigInt64Array.from([...prompt, 0, 0, ...short], BigInt), [2, 8]),
        attention_mask: new Tensor('int64', BigInt64Array.from([...prompt.map(() => 1), 0, 0, ...short.map(() => 1)], BigInt), [2, 8]),
      });
      const rows = batch.logits.data as Float32Array;
      assert.ok(maxDiff(rows.subarray(0, 8 * v), want) < 1e-4);
      const dPad = maxDiff(rows.subarray((8 + 2) * v, 16 * v), primerLogits(short));
      assert.ok(dPad < 1e-4, `${fixture} left-padded row: ${dPad}`);

      // Step 2 feeds one token and the present tensors of step 1 as past_key_values, as generate() does.
      const next = argmax(want.subarray((prompt.length - 1) * v));
      const cache = new DynamicCache(Object.fromEntries(kv.map((n) => [`past_key_values.${n}`, first[`present.${n}`]])));
      assert.equal(cache.get_seq_length(), prompt.length);
      const second = await tjs({ input_ids: int64([next]), attention_mask: int64([...prompt, next].map(() => 1)), past_key_values: cache });
      assert.deepEqual(second[`present.${layers - 1}.key`].dims, [1, kvHeads, prompt.length + 1, headDim]);
      const d2 = maxDiff(second.logits.data as Float32Array, primerLogits([...prompt, next]).subarray(prompt.length * v));
      assert.ok(d2 < 1e-4, `${fixture} cached step logits: ${d2}`);

      // Greedy generation through the cache against Primer's full forward at every step (stopping at eos, as both do).
      const eos = config.eos_token_id as number;
      const generated = await tjs.generate({ input_ids: int64(prompt), attention_mask: int64(prompt.map(() => 1)), max_new_tokens: 10, do_sample: false });
      const tjsIds = Array.from((generated as Tensor).data as BigInt64Array, Number).slice(prompt.length);
      const primerIds: number[] = [];
      let margin = Infinity; // smallest gap between the chosen logit and the runner-up
      for (let k = 0; k < 10; k++) {
        const ids = [...prompt, ...primerIds];
        const row = primerLogits(ids).subarray((ids.length - 1) * v);
        const t = argmax(row);
        primerIds.push(t);
        margin = Math.min(margin, row[t]! - [...row].sort((a, b) => b - a)[1]!);
        if (t === eos) break;
      }
      assert.deepEqual(tjsIds, primerIds);
      assert.ok(primerIds.length >= 2, `${fixture}: ${primerIds}`);
      // Far above the 1e-4 agreement, so equal tokens are not luck at a near-tie.
      assert.ok(margin > 1e-3, `${fixture}: greedy margin ${margin}`);
    } finally {
      await tjs.dispose();
    }
  });
}

test('primer export --format onnx on an imported Llama writes config.json with head_dim and onnx/model.onnx', async () => {
  const out = join(tempDir('onnx-llama-cli'), 'out');
  const program = new Command().exitOverride();
  registerInteropCommands(program);
  const logs: string[] = [];
  const log = console.log;
  console.log = (s: string) => logs.push(s);
  try {
    await program.parseAsync(['node', 'primer', 'export', '--format', 'onnx', '--model', join(fixtures, 'qwen2-tiny'), '--out', out]);
  } finally {
    console.log = log;
  }
  const summary = JSON.parse(logs.join('\n'));
  assert.deepEqual([summary.architecture, summary.kind, summary.format], ['Qwen2ForCausalLM', 'llama', 'onnx']);
  assert.ok(summary.files.includes('onnx/model.onnx'));
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual([config.model_type, config.head_dim, config.num_key_value_heads, config.tie_word_embeddings], ['qwen2', 12, 1, false]);
  const m = decodeOnnxModel(readFileSync(join(out, 'onnx', 'model.onnx')));
  // The untied head and the q/k/v biases are initializers under their HF names; no o_proj bias (Qwen2 has none).
  const names = new Set(m.graph.initializer.map((t) => t.name));
  for (const n of ['lm_head.weight', 'model.layers.0.self_attn.q_proj.bias', 'model.layers.1.self_attn.v_proj.bias']) assert.ok(names.has(n), n);
  assert.ok(!names.has('model.layers.0.self_attn.o_proj.bias'));
});
