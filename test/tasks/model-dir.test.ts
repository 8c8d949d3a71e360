/** Task-model directories round-trip, and Hub-style *For* checkpoints (HF names and variants) load. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { TokenClassifier, SequenceClassifier } from '../../src/models/heads.ts';
import { saveTaskModelDir, loadTaskModelDir } from '../../src/models/model-dir.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
const root = mkdtempSync(join(tmpdir(), 'primer-taskdir-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const bertConfig = JSON.parse(readFileSync(join(fixtures, 'bert-tiny', 'config.json'), 'utf8')) as BertConfig;
const bertWeights = readSafetensors(join(fixtures, 'bert-tiny', 'model.safetensors'));

test('a fine-tuned token classifier saves and loads with its labels and identical outputs', () => {
  const bert = new Bert(bertConfig);
  bert.loadStateDict(new Map(bertWeights.names.map((n) => [n, bertWeights.getFloat32(n)] as const)));
  const model = new TokenClassifier(bert.bert, ['B-PER', 'I-PER', 'O'], { seed: 4 }).eval();
  const dir = join(root, 'tok');
  saveTaskModelDir(dir, model);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual([config.architectures, config.id2label, config.label2id.O, config.model_type], [['BertForTokenClassification'], { 0: 'B-PER', 1: 'I-PER', 2: 'O' }, 2, 'bert']);
  const loaded = loadTaskModelDir(dir);
  assert.ok(loaded instanceof TokenClassifier);
  assert.deepEqual(loaded.labels.labels, ['B-PER', 'I-PER', 'O']);
  const x = { inputIds: Int32Array.from([2, 50, 60, 3]), batch: 1, length: 4 };
  const a = noGrad(() => model.forward(x)).logits.data;
  const b = noGrad(() => loaded.eval().forward(x)).logits.data;
  assert.deepEqual(Array.from(b), Array.from(a));
});

test('Hub variants load: LayerNorm gamma/beta, no pooler for token classification; a missing head is named', () => {
  const dir = join(root, 'hub-bert');
  mkdirSync(dir);
  const tensors = bertWeights.names
    .filter((n) => n.startsWith('bert.') && !n.startsWith('bert.pooler.'))
    .map((n) => ({ name: n.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'), shape: bertWeights.info(n).shape, data: bertWeights.getFloat32(n) }));
  const classifier = { name: 'classifier.weight', shape: [2, 64], data: Float32Array.from({ length: 128 }, (_, i) => i / 128) };
  writeSafetensors(join(dir, 'model.safetensors'), [...tensors, classifier, { name: 'classifier.bias', shape: [2], data: Float32Array.from([0.5, -0.5]) }], { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...bertConfig, architectures: ['BertForTokenClassification'], id2label: { 0: 'O', 1: 'X' }, label2id: { O: 0, X: 1 } }));
  const model = loadTaskModelDir(dir) as TokenClassifier;
  assert.deepEqual(Array.from(model.classifier.weight.data), Array.from(classifier.data));
  assert.deepEqual(Array.from(model.classifier.bias!.data), [0.5, -0.5]);
  const ln = new Map(model.namedParameters()).get('bert.embeddings.LayerNorm.weight')!;
  assert.deepEqual(Array.from(ln.data), Array.from(bertWeights.getFloat32('bert.embeddings.LayerNorm.weight')));
  // A sequence classifier needs its pooler and its classifier: both are named.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...bertConfig, architectures: ['BertForSequenceClassification'], id2label: { 0: 'a', 1: 'b' } }));
  assert.throws(() => loadTaskModelDir(dir), /missing tensors: bert\.pooler\.dense\.weight, bert\.pooler\.dense\.bias/);
});

test('GPT2ForSequenceClassification layout: transformer.* with mask buffers, and score.weight', () => {
  const gptConfig = JSON.parse(readFileSync(join(fixtures, 'gpt2-tiny', 'config.json'), 'utf8'));
  const gptWeights = readSafetensors(join(fixtures, 'gpt2-tiny', 'model.safetensors'));
  const dir = join(root, 'hub-gpt');
  mkdirSync(dir);
  const c = gptConfig.n_embd as number;
  const body = gptWeights.names.filter((n) => !n.startsWith('lm_head')).map((n) => ({ name: n, shape: gptWeights.info(n).shape, data: gptWeights.getFloat32(n) }));
  const buffer = { name: 'transformer.h.0.attn.bias', shape: [1, 1, 2, 2], data: Float32Array.from([1, 0, 1, 1]) };
  const score = { name: 'score.weight', shape: [3, c], data: Float32Array.from({ length: 3 * c }, (_, i) => Math.sin(i)) };
  writeSafetensors(join(dir, 'model.safetensors'), [...body, buffer, score], { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...gptConfig, architectures: ['GPT2ForSequenceClassification'], id2label: { 0: 'x', 1: 'y', 2: 'z' }, pad_token_id: 0 }));
  const model = loadTaskModelDir(dir) as SequenceClassifier;
  assert.equal(model.headName, 'score');
  assert.deepEqual(Array.from(model.head.weight.data), Array.from(score.data));
  assert.equal(model.pooling, 'last');
});
