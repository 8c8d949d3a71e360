/**
 * LoRA on Llama-family models (llama-tiny: grouped-query attention, tied head; qwen2-tiny: q/k/v
 * biases, one key-value head, untied head): PEFT names and default targets (q_proj, v_proj), merge
 * equals base + s·B·A, `primer lora merge` writes a model with the adapted logits, and
 * `primer finetune --objective sft --lora-r` trains a Llama adapter that lowers the held-out loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { loadAnyModelDir, saveModelDir } from '../../src/models/load.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/util/random.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { LoraModel, loadLoraAdapter, loraTargetModules, resolveLoraTargets } from '../../src/adapt/lora.ts';
import { runPrimer } from '../helpers/cli.ts';
import { colorQa, writeJsonl } from './fixtures.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
const root = mkdtempSync(join(tmpdir(), 'primer-lora-llama-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const primer = runPrimer;

const ids = Int32Array.from({ length: 2 * 10 }, (_, i) => (i * 13 + 5) % 97);

function logits(model: Llama): Float32Array {
  model.eval();
  return noGrad(() => withScope(() => Float32Array.from(model.forward(ids, 2, 10).logits.data)));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** B starts at 0 (adapter = identity); random values make the adapter change the output. */
function randomizeB(lora: LoraModel, seed: number): void {
  const rng = new Rng(seed);
  for (const l of lora.layers.values()) for (let i = 0; i < l.B.size; i++) l.B.data[i] = rng.normal() * 0.3;
}

const loadFixture = (name: string) => loadAnyModelDir(join(fixtures, name)).model as Llama;

test('Llama LoRA: PEFT default targets q_proj, v_proj; PEFT tensor names and shapes; adapter_config.json', () => {
  assert.deepEqual(loraTargetModules('llama', 'attention'), ['q_proj', 'v_proj']);
  assert.deepEqual(resolveLoraTargets('llama', undefined), ['q_proj', 'v_proj']);
  assert.deepEqual(loraTargetModules('llama', 'all'), ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  const model = loadFixture('llama-tiny');
  const lora = new LoraModel(model, 'llama', { r: 4, alpha: 8, targetModules: resolveLoraTargets('llama', 'attention') });
  assert.deepEqual([...lora.layers.keys()], [0, 1].flatMap((i) => ['q', 'v'].map((m) => `model.layers.${i}.self_attn.${m}_proj`)));
  const shapes = Object.fromEntries(lora.namedParameters().map(([n, p]) => [n, [...p.shape]]));
  // hidden 32, 4 query heads × 8, 2 key/value heads × 8 = 16.
  assert.deepEqual(shapes['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'], [4, 32]);
  assert.deepEqual(shapes['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight'], [32, 4]);
  assert.deepEqual(shapes['base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'], [16, 4]);
  assert.equal(lora.numParameters(), 2 * (4 * (32 + 32) + 4 * (32 + 16)));
  assert.equal(lora.numParameters(), lora.expectedTrainableParameters());
  assert.ok(model.parameters().every((p) => !p.requiresGrad));
  const dir = join(root, 'adapter-names');
  lora.save(dir);
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([config.peft_type, config.task_type, config.target_modules, config.fan_in_fan_out, config.r, config.lora_alpha], ['LORA', 'CAUSAL_LM', ['q_proj', 'v_proj'], false, 4, 8]);
  assert.deepEqual([...readSafetensors(join(dir, 'adapter_model.safetensors')).names].sort(), Object.keys(shapes).sort());
});

for (const fixture of ['llama-tiny', 'qwen2-tiny'] as const) {
  test(`${fixture}: merged weights = W + B·A·(alpha/r); merged logits equal the LoRA model's within 1e-5; primer lora merge`, async () => {
    const model = loadFixture(fixture);
    const base = logits(model);
    const before = new Map(model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.data)]));
    const [r, alpha] = [4, 12];
    const lora = new LoraModel(model, 'llama', { r, alpha, targetModules: loraTargetModules('llama', 'all'), seed: 7 });
    assert.equal(lora.layers.size, 7 * 2);
    assert.equal(maxDiff(base, logits(model)), 0); // B = 0: the identity
    randomizeB(lora, 11);
    const adapted = logits(model);
    assert.ok(maxDiff(base, adapted) > 1e-2, 'the adapter changes the logits');
    const adapterDir = join(root, `${fixture}-adapter`);
    lora.save(adapterDir);
    // Expected merge, computed independently in float64 from the saved factors.
    const factors = readSafetensors(join(adapterDir, 'adapter_model.safetensors'));
    const want = new Map<string, Float64Array>();
    for (const path of lora.layers.keys()) {
      const A = factors.getFloat32(`base_model.model.${path}.lora_A.weight`);
      const B = factors.getFloat32(`base_model.model.${path}.lora_B.weight`);
      const W = before.get(`${path}.weight`)!;
      const inF = A.length / r;
      const outF = B.length / r;
      const merged = new Float64Array(W.length);
      for (let o = 0; o < outF; o++) {
        for (let i = 0; i < inF; i++) {
          let d = 0;
          for (let k = 0; k < r; k++) d += B[o * r + k]! * A[k * inF + i]!;
          merged[o * inF + i] = W[o * inF + i]! + (alpha / r) * d;
        }
      }
      want.set(`${path}.weight`, merged);
    }
    lora.merge();
    for (const [name, p] of model.namedParameters()) {
      const expected = want.get(name) ?? before.get(name)!;
      assert.ok(maxDiff(p.data, expected) < 1e-6, `${fixture} ${name}`);
      assert.ok(p.requiresGrad);
    }
    const merged = logits(model);
    assert.ok(maxDiff(merged, adapted) < 1e-5, `${fixture}: merged vs LoRA logits ${maxDiff(merged, adapted)}`);

    // The adapter reloads onto a fresh base (fingerprint matches) with the same logits, and the CLI merge writes them.
    const reloadedBase = loadFixture(fixture);
    loadLoraAdapter(reloadedBase, 'llama', adapterDir);
    assert.ok(maxDiff(logits(reloadedBase), adapted) < 1e-6);
    const out = join(root, `${fixture}-merged`);
    const stdout = await primer(['lora', 'merge', '--base', join(fixtures, fixture), '--adapter', adapterDir, '--out', out]);
    assert.match(stdout, /merged 14 LoRA layers/);
    const written = loadAnyModelDir(out);
    assert.deepEqual([written.kind, written.config.model_type], ['llama', fixture.split('-')[0]]);
    assert.ok(maxDiff(logits(written.model as Llama), adapted) < 1e-5);
    // A different base (another seed) is refused by fingerprint.
    assert.throws(() => loadLoraAdapter(new Llama((written.config as LlamaConfig), 3), 'llama', adapterDir), /trained on a different base model/);
  });
}

test('primer finetune --objective sft --lora-r on a Llama: PEFT adapter, held-out loss falls, --merge-lora model loads', async () => {
  const texts = colorQa(200, 99).map((r) => `System: be brief\nUser: ${r.prompt}\nAssistant: ${r.response}`);
  const tokenizer = trainBpe(texts, { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
  const config: LlamaConfig = {
    model_type: 'llama', vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
  };
  const base = join(root, 'llama-base');
  saveModelDir(base, new Llama(config, 3), config, tokenizer);
  const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(40, 2));
  const out = join(root, 'llama-sft');
  const stdout = await primer(['finetune', '--objective', 'sft', '--model', base, '--data', data, '--out', out,
    '--steps', '12', '--lora-r', '4', '--lr', '1e-2', '--merge-lora']);
  const m = /held-out response perplexity: ([\d.]+) → ([\d.]+)/.exec(stdout);
  assert.ok(m, stdout);
  assert.ok(Number(m[2]) < Number(m[1]), `perplexity ${m[1]} → ${m[2]}`);
  assert.match(stdout, /LoRA r=4 on 2 layers, 448 trainable parameters/); // q_proj 4·(32+32) + v_proj 4·(32+16)
  const adapter = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([adapter.target_modules, adapter.task_type], [['q_proj', 'v_proj'], 'CAUSAL_LM']);
  assert.ok(readSafetensors(join(out, 'adapter_model.safetensors')).names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
  // The merged model equals base + adapter.
  const merged = loadAnyModelDir(join(out, 'merged'));
  assert.equal(merged.kind, 'llama');
  const again = loadAnyModelDir(base).model as Llama;
  const q = 'model.layers.0.self_attn.q_proj.weight';
  const baseQ = Float32Array.from(new Map(again.namedParameters()).get(q)!.data);
  loadLoraAdapter(again, 'llama', out);
  const want = logits(again);
  assert.ok(maxDiff(logits(merged.model as Llama), want) < 1e-5);
  assert.ok(maxDiff(new Map(merged.model.namedParameters()).get(q)!.data, baseQ) > 0, 'training moved the merged q_proj');
  assert.ok(existsSync(join(out, 'merged', 'tokenizer.json')));
});
