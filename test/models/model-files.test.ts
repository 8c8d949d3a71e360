/**
 * Opening a model directory fails with what is wrong with it: a path that does not exist or is a file,
 * a config.json broken at a given line and column, a task model (classifier) where a language model
 * is needed (before its weights are read), and a sharded checkpoint where one model.safetensors is read.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAnyModelDir, loadModelDir, readAnyModelConfig } from '../../src/models/load.ts';
import { loadTaskModelDir, saveTaskModelDir } from '../../src/models/model-dir.ts';
import { SequenceClassifier } from '../../src/models/heads.ts';
import { GPT2Model } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';
import { Rng } from '../../src/util/random.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { writeShards } from '../interop/helpers.ts';
import { throwsExactly } from '../helpers/errors.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const gpt2Tiny = join(root, '..', 'shared', 'fixtures', 'gpt2-tiny');
const tmp = mkdtempSync(join(tmpdir(), 'primer-model-files-'));
after(() => rmSync(tmp, { recursive: true, force: true }));


test('a path that does not exist, or a file, is named as such by every entry point', () => {
  const missing = join(tmp, 'nope');
  for (const open of [loadAnyModelDir, loadModelDir, readAnyModelConfig, loadTaskModelDir]) {
    throwsExactly(() => open(missing), `model directory ${missing} does not exist`);
  }
  const file = join(tmp, 'notes.txt');
  writeFileSync(file, 'hello');
  throwsExactly(() => loadAnyModelDir(file), `${file} is a file, not a model directory`);
  // The usual slip, a file of the directory, gets the directory to pass instead.
  throwsExactly(() => loadAnyModelDir(join(gpt2Tiny, 'config.json')),
    `${join(gpt2Tiny, 'config.json')} is a file, not a model directory (pass the directory that holds it, ${gpt2Tiny})`);
  // An existing directory without config.json keeps its own message.
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  throwsExactly(() => loadAnyModelDir(empty), `${empty}: no config.json (expected a model directory in Hugging Face layout)`);
});

test('a config.json that is not JSON is placed by line and column', () => {
  const dir = join(tmp, 'bad-json');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), '{\n  "model_type": "gpt2",\n  "n_embd": 32\n  "n_layer": 2\n}\n');
  const expected = `${join(dir, 'config.json')}: not valid JSON at line 4, column 3: Expected ',' or '}' after property value`;
  throwsExactly(() => loadAnyModelDir(dir), expected);
  throwsExactly(() => loadTaskModelDir(dir), expected);
  writeFileSync(join(dir, 'config.json'), '{"model_type": "gpt2", "n_layer": two}');
  throwsExactly(() => readAnyModelConfig(dir), `${join(dir, 'config.json')}: not valid JSON at line 1, column 36: Unexpected token 'w'`);
});

/** A GPT2ForSequenceClassification directory as `primer finetune` writes it (no tokenizer: not needed to be refused). */
function classifierDir(): string {
  const dir = join(tmp, 'gpt-classifier');
  const cfg = gptPreset('tiny', { vocabSize: 64, layers: 1, dims: 16, heads: 2, context: 16, dropout: 0 });
  saveTaskModelDir(dir, new SequenceClassifier(new GPT2Model(cfg, new Rng(1)), ['neg', 'pos']));
  return dir;
}

test('a classifier directory is refused by its architecture before the weights are read, as a language model', () => {
  const dir = classifierDir();
  assert.equal(loadTaskModelDir(dir).architecture, 'GPT2ForSequenceClassification');
  const message = `${dir} holds a GPT2ForSequenceClassification (a classifier); this needs a language model (…LMHeadModel, …ForCausalLM or BertForPreTraining)`;
  throwsExactly(() => loadAnyModelDir(dir), message);
  rmSync(join(dir, 'model.safetensors'));
  throwsExactly(() => loadAnyModelDir(dir), message);
});

test('primer generate on a classifier directory says what it holds and what generate needs', () => {
  const dir = classifierDir();
  const r = spawnSync(process.execPath, [join(root, 'bin', 'primer.js'), 'generate', '--model', dir, '--max-tokens', '1'],
    { cwd: root, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(),
    `primer: error: ${dir} holds a GPT2ForSequenceClassification (a classifier); generate needs a causal LM (…ForCausalLM / …LMHeadModel)`);
});

test('a sharded checkpoint is named, with the command that converts it', () => {
  const dir = join(tmp, 'sharded');
  mkdirSync(dir);
  copyFileSync(join(gpt2Tiny, 'config.json'), join(dir, 'config.json'));
  const w = readSafetensors(join(gpt2Tiny, 'model.safetensors'));
  writeShards(dir, w.names.map((n) => ({ name: n, shape: w.info(n).shape, data: w.getFloat32(n) })), 3);
  assert.ok(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8').includes('model-00003-of-00003.safetensors'));
  throwsExactly(() => loadAnyModelDir(dir), `${dir}: no model.safetensors (it holds a sharded checkpoint, model.safetensors.index.json: `
    + `convert it with primer import ${dir} --out NEW_DIR)`);
});
