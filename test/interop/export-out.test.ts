/**
 * The --out directory of export/import: the tokenizer's own tokenizer_config.json fields (chat_template,
 * model_max_length) survive, a re-export into the same directory leaves no file of the previous model
 * that transformers or Transformers.js would read, and a failed export leaves nothing half-written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained } from '../../src/interop/import.ts';
import { exportHf } from '../../src/interop/export-hf.ts';
import { exportOnnx } from '../../src/interop/onnx.ts';
import { tokenizerFromJSON, trainTokenizer } from '../../src/tokenizers/index.ts';
import { llama2Json } from '../tokenizers/llama-fixtures.ts';
import { primerInProcess } from '../helpers/cli.ts';
import { fixtures, removeTempDirs, tempDir } from './helpers.ts';

test.after(removeTempDirs);

const TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}";

/** gpt2-tiny with a trained BPE tokenizer and a hand-written tokenizer_config.json / special_tokens_map.json. */
function gptWithTokenizer(): string {
  const dir = tempDir('gpt-tok');
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixtures, 'gpt2-tiny', f), join(dir, f));
  const texts = Array.from({ length: 40 }, (_, i) => `the quick brown fox ${i} 今天天气很好 ${i * 7}`);
  trainTokenizer({ type: 'bpe', vocabSize: 300, texts, specialTokens: ['<|endoftext|>'] }).save(dir);
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: TEMPLATE, model_max_length: 64, padding_side: 'left' }));
  writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ eos_token: '<|endoftext|>', additional_special_tokens: ['<|endoftext|>'] }));
  return dir;
}

test('import --out and export keep tokenizer_config.json fields (chat_template, model_max_length) and special_tokens_map.json extras', async () => {
  const src = gptWithTokenizer();
  const imported = tempDir('imported');
  const r = await primerInProcess(['import', src, '--out', imported]);
  assert.equal(r.error, null);
  const exported = tempDir('exported');
  exportHf(loadPretrained(imported), exported);
  for (const dir of [imported, exported]) {
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.chat_template, TEMPLATE, dir);
    assert.equal(config.model_max_length, 64);
    assert.equal(config.padding_side, 'left');
    assert.equal(config.tokenizer_class, 'GPT2TokenizerFast');
    assert.equal(config.eos_token, '<|endoftext|>');
    const map = JSON.parse(readFileSync(join(dir, 'special_tokens_map.json'), 'utf8'));
    assert.deepEqual(map, { eos_token: '<|endoftext|>', bos_token: '<|endoftext|>', additional_special_tokens: ['<|endoftext|>'] });
  }
});

test('import --out and export keep the checkpoint\'s generation_config.json (an eos list longer than config.json\'s, sampling defaults)', async () => {
  const src = gptWithTokenizer();
  // Qwen2.5-Instruct's layout: config.json names one eos id, generation_config.json two (serve stops at both).
  const generation = { bos_token_id: 0, eos_token_id: [0, 7], temperature: 0.7, top_p: 0.8, transformers_version: '4.45.0' };
  writeFileSync(join(src, 'generation_config.json'), JSON.stringify(generation));
  const imported = tempDir('imported-gen');
  const r = await primerInProcess(['import', src, '--out', imported]);
  assert.equal(r.error, null);
  const exported = tempDir('exported-gen');
  exportHf(loadPretrained(imported), exported);
  for (const dir of [imported, exported]) {
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')), generation, dir);
  }
});

test('exporting into a directory that holds an earlier export leaves none of its files (onnx graph, shards, legacy vocab, generation config)', () => {
  const out = tempDir('reexport');
  const gpt = loadPretrained(gptWithTokenizer());
  exportOnnx(gpt, out);
  exportHf(gpt, out, { maxShardBytes: 100_000 });
  assert.ok(existsSync(join(out, 'model.safetensors.index.json')));
  assert.ok(!existsSync(join(out, 'onnx', 'model.onnx')), 'a GPT-2 graph beside the hf export would be loaded by Transformers.js');
  writeFileSync(join(out, 'README.md'), 'notes\n'); // not an export file: kept
  const bert = loadPretrained(join(fixtures, 'bert-tiny'));
  const files = exportHf(bert, out);
  assert.deepEqual(readdirSync(out).sort(), [...files, 'README.md'].sort());
  assert.deepEqual(files, ['config.json', 'model.safetensors']);
  assert.equal(loadPretrained(out).architecture, 'BertForPreTraining');
});

test('a failed export leaves a new --out absent and an existing one unchanged', () => {
  const gpt = loadPretrained(gptWithTokenizer());
  const real = gpt.tokenizer!;
  gpt.tokenizer = Object.create(real, { save: { value: () => { throw new Error('disk full'); } } });
  const fresh = join(tempDir('failed'), 'out');
  assert.throws(() => exportHf(gpt, fresh), /disk full/);
  assert.ok(!existsSync(fresh), 'no half-written directory');

  const existing = tempDir('failed-existing');
  const bert = loadPretrained(join(fixtures, 'bert-tiny'));
  exportHf(bert, existing);
  const before = new Map(readdirSync(existing).map((f) => [f, readFileSync(join(existing, f))]));
  assert.throws(() => exportHf(gpt, existing), /disk full/);
  assert.deepEqual(readdirSync(existing).sort(), [...before.keys()].sort());
  for (const [f, bytes] of before) assert.ok(readFileSync(join(existing, f)).equals(bytes), f);
});

test('export --out naming a file is one line naming it, not a mkdir error', async () => {
  const file = join(tempDir('out-file'), 'model.bin');
  writeFileSync(file, 'x');
  const r = await primerInProcess(['export', '--model', join(fixtures, 'gpt2-tiny'), '--out', file]);
  assert.equal(r.exitCode, 1);
  assert.equal(r.error, `primer: error: ${file} exists and is not a directory; --out must be a directory`);
  assert.equal(readFileSync(file, 'utf8'), 'x');
});

test('a SentencePiece-style BPE tokenizer (Llama 2) exports tokenizer.json without legacy files, and the file list says so', () => {
  const p = loadPretrained(join(fixtures, 'llama-tiny'));
  p.tokenizer = tokenizerFromJSON(llama2Json());
  const out = tempDir('sp-bpe');
  const files = exportHf(p, out);
  assert.deepEqual(files, ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
  assert.deepEqual(readdirSync(out).sort(), [...files].sort());
  assert.equal(JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')).tokenizer_class, 'LlamaTokenizerFast');
});
