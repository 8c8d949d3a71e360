/**
 * `primer lora merge` carries the base model's tokenizer into the merged directory whatever its layout
 * (a Hub GPT-2 has only vocab.json + merges.txt), and refuses PEFT adapters whose update is not plain
 * LoRA instead of merging them with the wrong scaling.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAnyModelDir } from '../../src/models/load.ts';
import { LoraModel, loraTargetModules } from '../../src/adapt/lora.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { primerInProcess } from '../helpers/cli.ts';
import { makeTinyModelDir } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-lora-merge-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** A tiny GPT base (prepared by `prepare`) and a fresh attention LoRA adapter for it. */
function baseAndAdapter(name: string, prepare: (base: string) => void = () => {}): { base: string; adapter: string } {
  const base = makeTinyModelDir(join(root, name));
  prepare(base);
  const loaded = loadAnyModelDir(base);
  const adapter = join(root, `${name}-adapter`);
  new LoraModel(loaded.model, loaded.kind, { r: 2, alpha: 4, targetModules: loraTargetModules(loaded.kind, 'attention') }).save(adapter);
  return { base, adapter };
}

test('lora merge keeps a vocab.json + merges.txt tokenizer of the base (no tokenizer.json)', async () => {
  const { base, adapter } = baseAndAdapter('legacy', (dir) => unlinkSync(join(dir, 'tokenizer.json')));
  const out = join(root, 'merged');
  const r = await primerInProcess(['lora', 'merge', '--base', base, '--adapter', adapter, '--out', out]);
  assert.equal(r.error, null);
  const text = 'What color is the snow? 今天';
  assert.deepEqual(loadTokenizer(out).encode(text).ids, loadTokenizer(base).encode(text).ids);
});

test('lora merge refuses rsLoRA, DoRA, rank/alpha patterns and trained biases, naming adapter_config.json', async () => {
  const { base, adapter } = baseAndAdapter('variants');
  const configPath = join(adapter, 'adapter_config.json');
  const plain = JSON.parse(readFileSync(configPath, 'utf8'));
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ use_rslora: true }, 'use_rslora (scaling alpha/√r)'],
    [{ use_dora: true }, 'use_dora (weight-decomposed LoRA)'],
    [{ rank_pattern: { c_attn: 4 } }, 'rank_pattern (per-layer ranks)'],
    [{ alpha_pattern: { c_attn: 16 } }, 'alpha_pattern (per-layer alphas)'],
    [{ bias: 'lora_only' }, 'bias "lora_only" (trained biases)'],
  ];
  for (const [fields, what] of cases) {
    writeFileSync(configPath, JSON.stringify({ ...plain, use_rslora: false, use_dora: false, rank_pattern: {}, alpha_pattern: {}, ...fields }));
    const out = join(root, `merged-${Object.keys(fields)[0]}`);
    const r = await primerInProcess(['lora', 'merge', '--base', base, '--adapter', adapter, '--out', out]);
    assert.equal(r.exitCode, 1, what);
    assert.equal(r.error, `primer: error: ${configPath}: ${what} is not supported; Primer applies plain LoRA (bias "none", one r and lora_alpha for every layer)`);
    assert.ok(!existsSync(out));
  }
  // PEFT writes the defaults (false, {}) into every config: those stay accepted.
  writeFileSync(configPath, JSON.stringify({ ...plain, use_rslora: false, use_dora: false, rank_pattern: {}, alpha_pattern: {} }));
  const r = await primerInProcess(['lora', 'merge', '--base', base, '--adapter', adapter, '--out', join(root, 'merged-defaults')]);
  assert.equal(r.error, null);
});

test('lora merge keeps the base tokenizer_config.json fields tokenizer.save does not write (model_max_length, padding_side, chat_template)', async () => {
  const template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";
  const { base, adapter } = baseAndAdapter('config-fields', (dir) => {
    const configPath = join(dir, 'tokenizer_config.json');
    writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), model_max_length: 48, padding_side: 'left', chat_template: template }));
  });
  const out = join(root, 'config-fields-merged');
  const r = await primerInProcess(['lora', 'merge', '--base', base, '--adapter', adapter, '--out', out]);
  assert.equal(r.error, null);
  const merged = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
  assert.equal(merged.model_max_length, 48);
  assert.equal(merged.padding_side, 'left');
  assert.equal(merged.chat_template, template);
});

test('lora merge keeps the base generation_config.json (its eos ids end generation in serve)', async () => {
  const generation = { bos_token_id: 0, eos_token_id: [0, 3], temperature: 0.6 };
  const { base, adapter } = baseAndAdapter('generation-config', (dir) => writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation)));
  const out = join(root, 'generation-config-merged');
  const r = await primerInProcess(['lora', 'merge', '--base', base, '--adapter', adapter, '--out', out]);
  assert.equal(r.error, null);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')), generation);
});
