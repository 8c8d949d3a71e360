/**
 * Defect 3 of issue 19 and the config part of the fuzz set: config.json is untrusted input.
 * `n_layer: 1000000` used to build a 3 GB model before comparing it with the weights, and sizes of
 * 10^9 failed with "Invalid typed array length" naming neither file nor field. Every bad value must
 * be refused with a ModelLoadError naming config.json and the field, and memory must stay under
 * 500 MB throughout. Also: non-finite weights load with a warning (defect 8).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelLoadError, createModel, loadModelDir, parameterCount, parseModelConfig } from '../../src/models/load.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { tempDir } from '../train/helpers.ts';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../..', '../shared/fixtures');
const MB = 2 ** 20;

function copyModel(name: 'gpt2-tiny' | 'bert-tiny'): { dir: string; config: Record<string, unknown> } {
  const dir = tempDir(`cfg-${name}`);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixtures, name, f), join(dir, f));
  return { dir, config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) };
}

function refusedNaming(dir: string, config: Record<string, unknown>, field: string): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  assert.throws(() => loadModelDir(dir), (e: unknown) => {
    assert.ok(e instanceof ModelLoadError, `${field}=${JSON.stringify(config[field])}: ${(e as Error).stack}`);
    assert.ok(e.message.includes(join(dir, 'config.json')), e.message);
    assert.ok(e.message.includes(`"${field}"`), `${field}: ${e.message}`);
    return true;
  });
}

test('issue 19 defect 3: absurd sizes in config.json are refused by field before the model is built', () => {
  const rss0 = process.memoryUsage().rss;
  const gpt = copyModel('gpt2-tiny');
  for (const [field, value] of [['n_layer', 1_000_000], ['n_embd', 1e9], ['vocab_size', 1e9], ['n_positions', 1e9], ['n_layer', 3], ['n_inner', 1e9]] as const) {
    refusedNaming(gpt.dir, { ...gpt.config, [field]: value }, field);
  }
  const bert = copyModel('bert-tiny');
  for (const [field, value] of [['num_hidden_layers', 1_000_000], ['hidden_size', 1e9], ['intermediate_size', 1e9], ['max_position_embeddings', 1e9], ['type_vocab_size', 1e6]] as const) {
    refusedNaming(bert.dir, { ...bert.config, [field]: value }, field);
  }
  assert.ok(process.memoryUsage().rss - rss0 < 500 * MB, `RSS grew by ${((process.memoryUsage().rss - rss0) / MB).toFixed(0)} MB`);
});

test('issue 19 defect 3: createModel refuses a config larger than memory before allocating', () => {
  const config = parseModelConfig({ ...JSON.parse(readFileSync(join(fixtures, 'gpt2-tiny', 'config.json'), 'utf8')), n_layer: 1_000_000, n_embd: 4096, n_head: 32 });
  assert.throws(() => createModel(config, 0, 'my/config.json'), (e: unknown) => e instanceof ModelLoadError
    && /^my\/config\.json describes a model of 2\.01e\+14 parameters/.test(e.message) && /n_layer 1000000/.test(e.message));
});

test('parameterCount is exact for GPT-2 and BERT (it sizes the refusals and the memory estimate)', () => {
  for (const name of ['gpt2-tiny', 'bert-tiny']) {
    const config = parseModelConfig(JSON.parse(readFileSync(join(fixtures, name, 'config.json'), 'utf8')));
    assert.equal(parameterCount(config), createModel(config).model.numParameters(), name);
    assert.equal(parameterCount({ ...config, ...(config.model_type === 'gpt2' ? { n_inner: 100 } : { intermediate_size: 100 }) } as typeof config),
      createModel({ ...config, ...(config.model_type === 'gpt2' ? { n_inner: 100 } : { intermediate_size: 100 }) } as typeof config).model.numParameters());
  }
});

test('fuzz: config values at type and size extremes are refused with the field named, memory under 500 MB', () => {
  const rss0 = process.memoryUsage().rss;
  const random = seededRandom(19);
  const EXTREMES: unknown[] = [0, -1, 1.5, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 64, 1e308, -0.5, '64', '', null, true, [], {}, [64], 1e-300];
  for (const name of ['gpt2-tiny', 'bert-tiny'] as const) {
    const { dir, config } = copyModel(name);
    const fields = Object.keys(config).filter((k) => typeof config[k] === 'number' || config[k] === null);
    for (let trial = 0; trial < 60; trial++) {
      const field = fields[Math.floor(random() * fields.length)]!;
      const value = EXTREMES[Math.floor(random() * EXTREMES.length)];
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, [field]: value }));
      try {
        loadModelDir(dir, { warn: () => {} });
      } catch (e) {
        assert.ok(e instanceof ModelLoadError, `${name} ${field}=${JSON.stringify(value)}: ${(e as Error).stack}`);
        assert.ok(e.message.includes(`"${field}"`) || e.message.includes(field), `${name} ${field}=${JSON.stringify(value)}: ${e.message}`);
      }
    }
  }
  assert.ok(process.memoryUsage().rss - rss0 < 500 * MB, `RSS grew by ${((process.memoryUsage().rss - rss0) / MB).toFixed(0)} MB`);
});

test('issue 19 defect 8: weights with NaN or Infinity load with a warning naming the file and tensors', () => {
  const { dir } = copyModel('gpt2-tiny');
  const w = readSafetensors(join(dir, 'model.safetensors'));
  writeSafetensors(join(dir, 'model.safetensors'), w.names.map((n) => {
    const data = Float32Array.from(w.getFloat32(n));
    if (n === 'transformer.h.1.attn.c_proj.weight') data[3] = NaN;
    if (n === 'transformer.ln_f.bias') data[0] = -Infinity;
    return { name: n, shape: w.info(n).shape, data };
  }), { format: 'pt' });
  const warnings: string[] = [];
  loadModelDir(dir, { warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /model\.safetensors: 2 tensor\(s\) hold NaN or infinite values \(transformer\.h\.1\.attn\.c_proj\.weight, transformer\.ln_f\.bias\)/);
  const clean = copyModel('gpt2-tiny');
  loadModelDir(clean.dir, { warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1, 'finite weights load silently');
});
