/**
 * `primer serve` checks its model directories before it listens (describeModelDir): a path that does
 * not exist or is a file, broken JSON (by line and column), no weights. A sharded checkpoint
 * (model.safetensors.index.json + shards) is served, through the importer's loader, with the same
 * outputs as the single-file directory it was split from.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeModelDir, loadServeModel, runClassify, runEmbeddings } from '../../src/serve/engine.ts';
import { createServer } from '../../src/serve/server.ts';
import { ModelLoadError } from '../../src/models/load.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { buildFixtures } from './fixtures.ts';
import { writeShards } from '../interop/helpers.ts';
import { throwsExactly } from '../helpers/errors.ts';

const fx = buildFixtures();
const tmp = mkdtempSync(join(tmpdir(), 'primer-serve-dir-errors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));


/** A copy of `dir` without model.safetensors, its tensors split into `shards` files plus the index (0: no weights at all). */
function copyOf(dir: string, name: string, shards: number, source = dir): string {
  const out = join(tmp, name);
  mkdirSync(out);
  for (const f of readdirSync(dir)) if (f !== 'model.safetensors') copyFileSync(join(dir, f), join(out, f));
  if (shards > 0) {
    const w = readSafetensors(join(source, 'model.safetensors'));
    writeShards(out, w.names.map((n) => ({ name: n, shape: w.info(n).shape, data: w.getFloat32(n) })), shards);
  }
  return out;
}

test('a missing path, a file and broken JSON are refused before the server listens', async () => {
  const missing = join(tmp, 'nope');
  throwsExactly(() => describeModelDir(missing), `model directory ${missing} does not exist`);
  await assert.rejects(createServer({ models: [missing], workers: 1 }), /does not exist/);
  const file = join(fx.gpt, 'config.json');
  throwsExactly(() => describeModelDir(file), `${file} is a file, not a model directory (pass the directory that holds it, ${fx.gpt})`);

  const broken = copyOf(fx.gpt, 'broken-generation-config', 0);
  copyFileSync(join(fx.gpt, 'model.safetensors'), join(broken, 'model.safetensors'));
  writeFileSync(join(broken, 'generation_config.json'), '{\n  "eos_token_id": [1, 2,]\n}\n');
  throwsExactly(() => describeModelDir(broken), `${join(broken, 'generation_config.json')}: not valid JSON at line 2, column 25: Unexpected token ']'`);
});

test('a directory without weights is refused before the server listens', async () => {
  const dir = copyOf(fx.gpt, 'no-weights', 0);
  throwsExactly(() => describeModelDir(dir), `${dir}: no model.safetensors or model.safetensors.index.json`);
  await assert.rejects(createServer({ models: [dir], workers: 1 }), /no model\.safetensors or model\.safetensors\.index\.json/);
});

test('a sharded GPT-2 is served with the embeddings of the single-file model', () => {
  const dir = copyOf(fx.gpt, 'tiny-gpt-sharded', 3);
  const info = describeModelDir(dir);
  assert.deepEqual([info.kind, info.architecture], ['gpt2', 'GPT2LMHeadModel']);
  const texts = ['the cat sat on the mat .', 'a quick brown fox'];
  const sharded = runEmbeddings(loadServeModel(info), texts);
  const single = runEmbeddings(loadServeModel(describeModelDir(fx.gpt)), texts);
  assert.deepEqual(sharded, single);
});

test('a sharded BERT classifier is served with the scores of the single-file model', () => {
  const dir = copyOf(fx.classifier, 'tiny-sentiment-sharded', 2);
  const info = describeModelDir(dir);
  assert.deepEqual([info.kind, info.labels], ['classifier', ['negative', 'positive']]);
  const texts = ['what a wonderful day', 'the dog sat on the log'];
  assert.deepEqual(runClassify(loadServeModel(info), texts), runClassify(loadServeModel(describeModelDir(fx.classifier)), texts));
});

test('a sharded architecture the importer does not read is refused by name before the server listens', () => {
  const llama = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'llama-tiny');
  const dir = copyOf(llama, 'llama-classifier-sharded', 2);
  const config = JSON.parse(readFileSync(join(llama, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['LlamaForSequenceClassification'] }));
  assert.throws(() => describeModelDir(dir), (e: unknown) => e instanceof ModelLoadError
    && e.message.startsWith(`${dir} holds a sharded checkpoint (model.safetensors.index.json); serve loads a sharded LlamaForSequenceClassification only from one model.safetensors`));
});

