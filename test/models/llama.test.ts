/**
 * Llama-family decoders (LlamaForCausalLM, Qwen2ForCausalLM) reproduce PyTorch/transformers on
 * ../shared/fixtures/llama-tiny (grouped-query attention 4/2, tied head) and qwen2-tiny (q/k/v
 * biases, one key-value head, untied lm_head), on both backends; `primer verify` accepts them and
 * catches a perturbed weight; llama3 rope scaling, explicit head_dim and tied/untied heads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend, type BackendName } from '../../src/backend/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { Llama, ropeInvFreq, type LlamaConfig } from '../../src/models/llama.ts';
import { loadAnyModelDir, parameterCount, parseAnyModelConfig, parseModelConfig } from '../../src/models/load.ts';
import { verifyModel } from '../../src/train/verify.ts';
import { pretrain } from '../../src/train/pretrain.ts';
import { generateText } from '../../src/infer/generate.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { gptPreset, llamaPreset, PRESET_NAMES } from '../../src/models/presets.ts';
import { setDefaultDtype, type Tensor } from '../../src/tensor/tensor.ts';
import { numericGrads, relError } from '../helpers/numeric.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
const TOL = 1e-4;

function runFixture(name: string) {
  const dir = join(fixtures, name);
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as { input_ids: number[][]; labels: number[][] };
  const expected = readSafetensors(join(dir, 'expected.safetensors'));
  const loaded = loadAnyModelDir(dir);
  assert.equal(loaded.kind, 'llama');
  const model = loaded.model as Llama;
  const [b, t] = [inputs.input_ids.length, inputs.input_ids[0]!.length];
  const { logits, loss } = model.forward(Int32Array.from(inputs.input_ids.flat()), b, t, Int32Array.from(inputs.labels.flat()));
  loss!.backward();
  return { model, logits, loss: loss!, expected };
}

for (const backendName of ['native', 'reference'] as BackendName[]) {
  for (const [fixture, grads] of [['llama-tiny', 6], ['qwen2-tiny', 8]] as const) {
    test(`${fixture} reproduces PyTorch logits, loss and gradients (${backendName})`, () => {
      setBackend(backendName);
      const { model, logits, loss, expected } = runFixture(fixture);
      const check = (label: string, actual: ArrayLike<number>, want: Float32Array) => {
        const err = relError(actual, want);
        assert.ok(err <= TOL, `${backendName} ${fixture} ${label}: relative error ${err.toExponential(3)} > ${TOL}`);
      };
      check('logits', logits.data, expected.getFloat32('logits'));
      check('loss', loss.data, expected.getFloat32('loss'));
      const params = new Map<string, Tensor>(model.namedParameters());
      const names = expected.names.filter((n) => n.startsWith('grad.'));
      assert.equal(names.length, grads);
      for (const name of names) {
        const p = params.get(name.slice(5));
        assert.ok(p?.grad, `${name}: no such parameter or no gradient`);
        check(name, p.grad.data, expected.getFloat32(name));
      }
    });
  }
}

test('primer verify passes llama-tiny and qwen2-tiny, and fails when one weight is perturbed', () => {
  setBackend('native');
  for (const fixture of ['llama-tiny', 'qwen2-tiny']) {
    const report = verifyModel({ modelDir: join(fixtures, fixture) });
    assert.equal(report.kind, 'llama');
    assert.ok(report.passed, `${fixture}: ${report.failed.join(', ')}`);
    assert.equal(report.checked, fixture === 'llama-tiny' ? 8 : 10);
  }
  const dir = mkdtempSync(join(tmpdir(), 'primer-llama-'));
  try {
    const src = join(fixtures, 'llama-tiny');
    for (const f of ['config.json', 'inputs.json', 'expected.safetensors']) copyFileSync(join(src, f), join(dir, f));
    const weights = readSafetensors(join(src, 'model.safetensors'));
    const tensors = weights.names.map((name) => ({ name, shape: [...weights.info(name).shape], data: weights.getFloat32(name).slice() }));
    tensors.find((x) => x.name === 'model.layers.1.mlp.up_proj.weight')!.data[5]! += 0.05;
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    const report = verifyModel({ modelDir: dir });
    assert.equal(report.passed, false);
    assert.ok(report.failed.includes('logits'), `failed: ${report.failed.join(', ')}`);
    assert.ok(report.worst!.maxRelError > 1e-3, `worst error ${report.worst!.maxRelError}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const tinyConfig = (extra: Partial<LlamaConfig> = {}): LlamaConfig => ({
  model_type: 'llama', vocab_size: 23, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32, rms_norm_eps: 1e-6, ...extra,
});

test('llama3 rope_scaling: inverse frequencies as Hugging Face computes them', () => {
  // head_dim 8, rope_theta 5e5: inv_freq = 5e5^(−i/4) = 1, 0.0376060…, 0.00141421…, 5.31830e-5 with
  // wavelengths 2π/f = 6.28, 167.1, 4442.9, 118142.8. original 8192, low 1, high 4 → wavelengths above
  // 8192/1 are divided by factor 8, those below 8192/4 = 2048 kept, and 4442.9 lies between:
  // smooth = (8192/4442.88 − 1)/(4 − 1) = 0.281286, f' = (1 − smooth)·f/8 + smooth·f = 5.248462e-4.
  const scaling = { rope_type: 'llama3' as const, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const config = parseAnyModelConfig({ ...tinyConfig({ hidden_size: 16, num_attention_heads: 2, head_dim: 8, rope_theta: 500000 }), rope_scaling: scaling });
  const got = ropeInvFreq(config as LlamaConfig);
  const want = [1, 0.03760603093086393, 0.0005248461609929547, 6.647869871181236e-6];
  assert.equal(got.length, 4);
  want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) <= 1e-12 * w, `inv_freq[${i}] = ${got[i]}, expected ${w}`));
  // Without scaling the same config keeps 5e5^(−i/4).
  const plain = ropeInvFreq({ ...(config as LlamaConfig), rope_scaling: null });
  assert.ok(Math.abs(plain[3]! - 5.318295896944989e-5) < 1e-18);
  assert.throws(() => parseAnyModelConfig({ ...tinyConfig(), rope_scaling: { rope_type: 'yarn', factor: 4 } }), /rope_scaling/);
});

test('explicit head_dim, grouped-query attention and llama3 rope: backward equals finite differences', () => {
  setBackend('reference');
  setDefaultDtype('float64');
  try {
    const config = tinyConfig({
      head_dim: 6, attention_bias: true, tie_word_embeddings: true, rope_theta: 100,
      rope_scaling: { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 2, original_max_position_embeddings: 16 },
    });
    const model = new Llama(config, 3);
    const params = new Map(model.namedParameters());
    for (const p of params.values()) p.data = Float64Array.from(p.data); // float64, so that finite differences are exact enough
    assert.deepEqual(params.get('model.layers.0.self_attn.q_proj.weight')!.shape, [24, 16]);
    assert.deepEqual(params.get('model.layers.0.self_attn.k_proj.weight')!.shape, [12, 16]);
    assert.deepEqual(params.get('model.layers.0.self_attn.o_proj.weight')!.shape, [16, 24]);
    assert.equal(model.numParameters(), parameterCount(config));
    // Non-trivial norm weights and biases, so that their gradients are tested too.
    for (const [name, p] of params) if (/norm|bias/.test(name)) p.data.forEach((_, i) => { p.data[i] = 1 + 0.1 * Math.sin(i + name.length); });
    const ids = Int32Array.from([3, 7, 1, 22, 9, 4, 0, 15, 8, 2]);
    const labels = ids.slice();
    labels[4] = -100;
    const loss = () => model.forward(ids, 2, 5, labels).loss!;
    const l = loss();
    l.backward();
    const checked = ['model.layers.0.self_attn.k_proj.weight', 'model.layers.1.self_attn.q_proj.bias', 'model.layers.0.input_layernorm.weight', 'model.layers.1.mlp.gate_proj.weight', 'model.norm.weight'];
    for (const name of checked) {
      const p = params.get(name)!;
      const [numeric] = numericGrads([p], () => loss().data[0]!, 1e-3);
      const err = relError(p.grad!.data, numeric!);
      assert.ok(err < 1e-5, `${name}: relative error ${err.toExponential(3)} against finite differences`);
    }
  } finally {
    setDefaultDtype('float32');
    setBackend('native');
  }
});

test('tied and untied heads: parameters, checkpoint names and a differing tied copy', () => {
  setBackend('native');
  const tied = new Llama(tinyConfig({ tie_word_embeddings: true }));
  const untied = new Llama(tinyConfig({ tie_word_embeddings: false }));
  const names = (m: Llama) => m.namedParameters().map(([n]) => n);
  assert.ok(!names(tied).includes('lm_head.weight'));
  assert.ok(names(untied).includes('lm_head.weight'));
  assert.equal(untied.numParameters() - tied.numParameters(), 23 * 16);
  // Tied: logits = hidden · embed_tokensᵀ, so scaling the embedding rows of one token moves only its logit column.
  const ids = Int32Array.from([1, 2, 3]);
  const before = tied.forward(ids, 1, 3).logits.data.slice();
  tied.model.embed_tokens.weight.data.subarray(20 * 16, 21 * 16).fill(0);
  const after = tied.forward(ids, 1, 3).logits.data;
  for (let i = 0; i < before.length; i++) assert.equal(after[i], i % 23 === 20 ? 0 : before[i], `logit ${i}`);

  // A tied checkpoint that also stores lm_head.weight loads when it equals the embedding and is refused otherwise.
  const dir = mkdtempSync(join(tmpdir(), 'primer-llama-tied-'));
  try {
    const src = join(fixtures, 'llama-tiny');
    copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
    const weights = readSafetensors(join(src, 'model.safetensors'));
    const tensors = weights.names.map((name) => ({ name, shape: [...weights.info(name).shape], data: weights.getFloat32(name).slice() }));
    const embed = tensors.find((x) => x.name === 'model.embed_tokens.weight')!;
    writeSafetensors(join(dir, 'model.safetensors'), [...tensors, { ...embed, name: 'lm_head.weight' }], { format: 'pt' });
    assert.equal(loadAnyModelDir(dir).kind, 'llama');
    const other = embed.data.slice();
    other[0]! += 1;
    writeSafetensors(join(dir, 'model.safetensors'), [...tensors, { ...embed, name: 'lm_head.weight', data: other }], { format: 'pt' });
    assert.throws(() => loadAnyModelDir(dir), /lm_head\.weight" differs from "model\.embed_tokens\.weight/);
    // The untied qwen2-tiny's parameter count matches its config; without lm_head in the file it is named missing.
    const qwen = JSON.parse(readFileSync(join(fixtures, 'qwen2-tiny', 'config.json'), 'utf8'));
    assert.equal(loadAnyModelDir(join(fixtures, 'qwen2-tiny')).model.numParameters(), parameterCount(parseAnyModelConfig(qwen)));
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, tie_word_embeddings: false }));
    assert.throws(() => loadAnyModelDir(dir), /missing tensors: lm_head\.weight/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commands that do not take Llama models yet refuse them by name', () => {
  const cfg = JSON.parse(readFileSync(join(fixtures, 'qwen2-tiny', 'config.json'), 'utf8'));
  assert.throws(() => parseModelConfig(cfg, 'x/config.json'), /x\/config\.json: field "model_type" is "qwen2"; supported: "gpt2", "bert" \(Llama-family models/);
  assert.throws(() => parseAnyModelConfig({ ...cfg, num_key_value_heads: 3 }), /num_key_value_heads/);
  assert.throws(() => parseAnyModelConfig({ ...cfg, hidden_act: 'gelu' }), /hidden_act/);
  assert.throws(() => parseAnyModelConfig({ ...cfg, use_sliding_window: true }), /use_sliding_window/);
});

test('Llama presets have GPT\'s sizes: same layers, width, heads and context, parameters within 3%', () => {
  for (const name of PRESET_NAMES) {
    const [g, l] = [gptPreset(name), llamaPreset(name)];
    assert.deepEqual([l.num_hidden_layers, l.hidden_size, l.num_attention_heads, l.max_position_embeddings], [g.n_layer, g.n_embd, g.n_head, g.n_positions]);
    const ratio = parameterCount(l) / parameterCount(g);
    assert.ok(ratio > 0.97 && ratio < 1.03, `${name}: Llama ${parameterCount(l)} vs GPT ${parameterCount(g)} parameters`);
  }
  assert.equal(llamaPreset('mini').intermediate_size, 704); // ⌈8·256/3 / 32⌉·32
});

test('pretrain --arch llama: 20 steps learn, save a loadable Llama directory, and resume', async () => {
  setBackend('native');
  const root = mkdtempSync(join(tmpdir(), 'primer-llama-pretrain-'));
  try {
    const corpus = join(root, 'corpus');
    mkdirSync(corpus);
    const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'far', 'away'];
    for (let d = 0; d < 4; d++) {
      const lines = Array.from({ length: 80 }, (_, i) => `${words[(i + d) % 10]} ${words[(2 * i + d) % 10]} ${words[(3 * i) % 10]} ${words[(i * i + d) % 10]}.`);
      writeFileSync(join(corpus, `doc${d}.txt`), lines.join('\n') + '\n');
    }
    const out = join(root, 'run');
    const common = {
      arch: 'llama' as const, corpus: [corpus], preset: 'tiny' as const, layers: 1, dims: 32, heads: 2, vocabSize: 300, blockSize: 32, batchSize: 8,
      lr: 5e-3, minLr: 5e-4, warmupSteps: 2, evalEvery: 0, checkpointEvery: 10, keepCheckpoints: 2, valFraction: 0.1, seed: 3,
      samplePrompts: [], log: () => {}, progress: false as const,
    };
    const run = await pretrain({ ...common, steps: 20, out });
    assert.equal(run.training.status, 'completed');
    assert.equal(run.training.step, 20);
    assert.equal(run.modelConfig.model_type, 'llama');
    // From ln(vocab) ≈ 5.6 at the start, the repetitive corpus is learned quickly.
    assert.ok(run.training.trainLoss < 4.5, `train loss ${run.training.trainLoss}`);
    const loaded = loadAnyModelDir(out);
    assert.equal(loaded.kind, 'llama');
    assert.equal(loaded.model.numParameters(), run.parameters);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).architectures, ['LlamaForCausalLM']);
    const resumed = await pretrain({ ...common, steps: 25, resume: out, samplePrompts: ['the cat'], sampleTokens: 6 });
    assert.equal(resumed.training.step, 25);
    assert.equal(resumed.modelConfig.model_type, 'llama');
    // Sample continuations come from the KV-cache decoder, as for a GPT: the same as generating from the saved model.
    const saved = loadAnyModelDir(out);
    assert.equal(saved.kind, 'llama');
    const expected = generateText(saved.model as Llama, loadTokenizer(out), 'the cat', { maxTokens: 6, temperature: 0.8, topK: 40, seed: 3 });
    assert.deepEqual(resumed.samples, [{ prompt: 'the cat', text: expected }]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
