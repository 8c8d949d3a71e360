import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT, type GPTConfig } from '../../src/models/gpt.ts';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { crossEntropy } from '../../src/tensor/nn-ops.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/util/random.ts';
import { AdamW } from '../../src/tensor/optim.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { LoraModel, loadLoraAdapter, loraTargetModules, matchesTarget } from '../../src/adapt/lora.ts';

const cfg: GPTConfig = { model_type: 'gpt2', vocab_size: 40, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 };
const ids = Int32Array.from({ length: 2 * 8 }, (_, i) => (i * 7 + 3) % 40);

function logits(model: GPT): Float32Array {
  model.eval();
  return noGrad(() => withScope(() => Float32Array.from(model.forward(ids, 2, 8).logits.data)));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** B starts at 0 (adapter = identity); give it values so the adapter actually changes the output. */
function randomizeB(lora: LoraModel, seed: number): void {
  const rng = new Rng(seed);
  for (const l of lora.layers.values()) for (let i = 0; i < l.B.size; i++) l.B.data[i] = rng.normal() * 0.2;
}

test('LoRA trainable parameter count is r·(in+out) per adapted layer, base frozen', () => {
  const gpt = new GPT(cfg, 1);
  const lora = new LoraModel(gpt, 'gpt2', { r: 4, alpha: 8, targetModules: loraTargetModules('gpt2', 'all') });
  const c = cfg.n_embd;
  const perBlock = 4 * (c + 3 * c) + 4 * (c + c) + 4 * (c + 4 * c) + 4 * (4 * c + c);
  assert.equal(lora.layers.size, 4 * cfg.n_layer);
  assert.equal(lora.numParameters(), perBlock * cfg.n_layer);
  assert.equal(lora.expectedTrainableParameters(), perBlock * cfg.n_layer);
  assert.ok(gpt.parameters().every((p) => !p.requiresGrad));
  const attnOnly = new LoraModel(new GPT(cfg, 1), 'gpt2', { r: 2, alpha: 2, targetModules: loraTargetModules('gpt2', 'attention') });
  assert.deepEqual([...attnOnly.layers.keys()], ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.1.attn.c_attn', 'transformer.h.1.attn.c_proj']);
  assert.equal(attnOnly.numParameters(), 2 * (2 * (c + 3 * c) + 2 * (c + c)));
});

test('LoRA starts as the identity (B = 0) and gradients reach only the adapters', () => {
  const gpt = new GPT(cfg, 1);
  const before = logits(gpt);
  const lora = new LoraModel(gpt, 'gpt2', { r: 4, alpha: 8, targetModules: ['c_attn', 'c_fc'] });
  assert.equal(maxDiff(before, logits(gpt)), 0);
  randomizeB(lora, 5);
  lora.train();
  withScope(() => {
    const labels = Int32Array.from(ids, (v) => (v + 1) % 40);
    crossEntropy(gpt.forward(ids, 2, 8).logits, labels).backward();
  });
  // No frozen parameter gets a gradient buffer: not the matmul weights, and not the LayerNorm or
  // embedding tables either (fused backward kernels write a frozen input's gradient to scratch).
  const linearParams = gpt.namedParameters().filter(([n]) => /\.(c_attn|c_proj|c_fc)\./.test(n));
  assert.equal(linearParams.length, 4 * 2 * cfg.n_layer);
  for (const [name, p] of gpt.namedParameters()) assert.equal(p.grad, null, `${name} got a gradient`);
  for (const [name, p] of lora.namedParameters()) {
    assert.ok(p.grad, `${name} has no gradient`);
    assert.ok(p.grad.data.some((g) => g !== 0), `${name} gradient is all zero`);
  }
  const baseBefore = gpt.namedParameters().map(([, p]) => Float32Array.from(p.data));
  const loraBefore = lora.parameters().map((p) => Float32Array.from(p.data));
  new AdamW(lora.parameters(), { lr: 1e-2 }).update();
  gpt.namedParameters().forEach(([name, p], i) => assert.deepEqual(p.data, baseBefore[i], `${name} changed`));
  assert.ok(lora.parameters().every((p, i) => maxDiff(p.data as Float32Array, loraBefore[i]!) > 0));
});

test('merged weights give the same logits as base + adapter (GPT Conv1D layout)', () => {
  const gpt = new GPT(cfg, 1);
  const lora = new LoraModel(gpt, 'gpt2', { r: 3, alpha: 6, targetModules: loraTargetModules('gpt2', 'all') });
  randomizeB(lora, 9);
  const adapted = logits(gpt);
  assert.ok(maxDiff(adapted, logits(new GPT(cfg, 1))) > 1e-3, 'the adapter should change the logits');
  lora.merge();
  assert.equal(gpt.transformer.h[0]!.attn.c_attn.forward.name.includes('bound'), true); // base forward restored
  assert.ok(maxDiff(adapted, logits(gpt)) <= 1e-5);
});

test('merge is correct for torch Linear layout (BERT query/key/value/dense)', () => {
  const bc: BertConfig = { model_type: 'bert', vocab_size: 30, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 16 };
  const bert = new Bert(bc, 2);
  const input = { inputIds: Int32Array.from({ length: 6 }, (_, i) => i + 2), batch: 1, length: 6 };
  const run = () => noGrad(() => withScope(() => Float32Array.from(bert.eval().forward(input).predictionLogits.data)));
  const lora = new LoraModel(bert, 'bert', { r: 2, alpha: 4, targetModules: loraTargetModules('bert', 'all') });
  assert.deepEqual([...lora.layers.keys()].map((k) => k.replace('bert.encoder.layer.0.', '')),
    ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'intermediate.dense', 'output.dense']);
  assert.equal(lora.config.fan_in_fan_out, false);
  randomizeB(lora, 3);
  const adapted = run();
  lora.merge();
  assert.ok(maxDiff(adapted, run()) <= 1e-5);
});

test('adapter saves in PEFT layout, reloads to the same logits, and refuses another base', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-lora-'));
  try {
    const gpt = new GPT(cfg, 1);
    const lora = new LoraModel(gpt, 'gpt2', { r: 4, alpha: 16, dropout: 0.1, targetModules: ['c_attn', 'attn.c_proj'], baseModelNameOrPath: 'tiny-base' });
    randomizeB(lora, 11);
    const adapted = logits(gpt);
    lora.save(dir);

    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 16);
    assert.equal(config.lora_dropout, 0.1);
    assert.equal(config.fan_in_fan_out, true);
    assert.equal(config.base_model_name_or_path, 'tiny-base');
    assert.deepEqual(config.target_modules, ['c_attn', 'attn.c_proj']);
    assert.match(config.primer_base_fingerprint, /^[0-9a-f]{64}$/);
    const file = readSafetensors(join(dir, 'adapter_model.safetensors'));
    assert.equal(file.names.length, 2 * 2 * cfg.n_layer);
    assert.deepEqual(file.info('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight').shape, [4, 16]);
    assert.deepEqual(file.info('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight').shape, [48, 4]);
    assert.deepEqual(file.info('base_model.model.transformer.h.1.attn.c_proj.lora_B.weight').shape, [16, 4]);
    assert.ok(file.names.every((n) => n.startsWith('base_model.model.transformer.h.') && /\.lora_[AB]\.weight$/.test(n)));

    const fresh = new GPT(cfg, 1);
    const reloaded = loadLoraAdapter(fresh, 'gpt2', dir);
    assert.equal(maxDiff(adapted, logits(fresh)), 0);
    assert.throws(() => loadLoraAdapter(fresh, 'gpt2', dir, { allowDifferentBase: true }), /already has an adapter/);
    reloaded.unload();
    assert.equal(maxDiff(logits(new GPT(cfg, 1)), logits(fresh)), 0);

    assert.throws(() => loadLoraAdapter(new GPT(cfg, 2), 'gpt2', dir), /trained on a different base model \(tiny-base\)/);
    const wider = new GPT({ ...cfg, n_embd: 32 }, 1);
    assert.throws(() => loadLoraAdapter(wider, 'gpt2', dir, { allowDifferentBase: true }), /has shape \[4, 16\] but this base model needs \[4, 32\]/);
    // A refused load leaves the base model untouched.
    const widerBefore = logits(wider);
    assert.equal(maxDiff(widerBefore, logits(wider)), 0);
    assert.equal(wider.transformer.h[0]!.attn.c_attn.weight.requiresGrad, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('target matching follows PEFT suffix rules', () => {
  assert.ok(matchesTarget('transformer.h.0.attn.c_proj', 'c_proj'));
  assert.ok(matchesTarget('transformer.h.0.attn.c_proj', 'attn.c_proj'));
  assert.ok(!matchesTarget('transformer.h.0.mlp.c_proj', 'attn.c_proj'));
  assert.ok(!matchesTarget('transformer.h.0.attn.xc_proj', 'c_proj'));
  assert.ok(matchesTarget('bert.encoder.layer.3.output.dense', 'layer.*.output.dense'));
  assert.ok(!matchesTarget('bert.encoder.layer.3.attention.output.dense', 'layer.*.output.dense'));
});
