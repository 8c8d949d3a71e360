/** LoRA for classification fine-tuning: adapters on the body + a fully trained head, PEFT layout, classify with base + adapter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/util/random.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { SequenceClassifier } from '../../src/models/heads.ts';
import { loadBackbone } from '../../src/models/model-dir.ts';
import { collate, padTokenId } from '../../src/tasks/encode.ts';
import { finetune } from '../../src/tasks/finetune.ts';
import type { LoraModel } from '../../src/adapt/lora.ts';
import { addTaskLora, loadTaskAdapter, saveTaskAdapter } from '../../src/adapt/lora-task.ts';
import { makeTinyModelDir } from './fixtures.ts';
import { syntheticReviews } from '../tasks/tiny-lm.ts';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', '..', 'bin', 'primer.js');
const root = mkdtempSync(join(tmpdir(), 'primer-lora-task-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const baseDir = makeTinyModelDir(root);
const tokenizer = loadTokenizer(baseDir);
const C = 32; // n_embd of the tiny model

function batchOf(texts: string[]) {
  return collate(texts.map((t) => tokenizer.encode(t, null, { maxLength: 32 })), padTokenId(tokenizer));
}

function logits(model: SequenceClassifier, texts: string[]): Float32Array {
  model.eval();
  return noGrad(() => withScope(() => Float32Array.from(model.forward(batchOf(texts)).logits.data)));
}

function randomizeB(lora: LoraModel, seed: number): void {
  const rng = new Rng(seed);
  for (const l of lora.layers.values()) for (let i = 0; i < l.B.size; i++) l.B.data[i] = rng.normal() * 0.2;
}

const texts = ['the food was good', 'it was awful', 'quite lovely service'];

test('trainable parameters = r·(in+out) per adapted layer + the whole head; GPT head "score", BERT head "classifier"', () => {
  const model = new SequenceClassifier(loadBackbone(baseDir), ['negative', 'positive'], { seed: 1 });
  const lora = addTaskLora(model, { r: 2, alpha: 4, targets: 'all' });
  const adapters = 2 * (C + 3 * C) + 2 * (C + C) + 2 * (C + 4 * C) + 2 * (4 * C + C);
  assert.equal(lora.expectedTrainableParameters(), adapters);
  assert.equal(lora.numParameters(), adapters + C * 2); // GPT2ForSequenceClassification's score has no bias
  assert.deepEqual([...lora.savedModules.keys()], ['score']);
  assert.equal(lora.config.task_type, 'SEQ_CLS');
  assert.deepEqual(lora.config.modules_to_save, ['score']);
  assert.ok(model.backbone.parameters().every((p) => !p.requiresGrad));
  assert.ok(model.head.parameters().every((p) => p.requiresGrad));

  const cfg: BertConfig = { model_type: 'bert', vocab_size: 30, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 32 };
  const bertCls = new SequenceClassifier(new Bert(cfg, 2).bert, ['a', 'b', 'c'], { seed: 1 });
  const bertLora = addTaskLora(bertCls, { r: 4, alpha: 8 }); // attention: query, key, value, attention.output.dense
  assert.equal(bertLora.layers.size, 4 * 2);
  assert.equal(bertLora.numParameters(), 4 * 2 * 4 * (16 + 16) + (16 * 3 + 3));
  assert.deepEqual(bertLora.namedParameters().slice(-2).map(([n]) => n), ['base_model.model.classifier.weight', 'base_model.model.classifier.bias']);
});

test('gradients reach only the adapters and the head', () => {
  const model = new SequenceClassifier(loadBackbone(baseDir), ['negative', 'positive'], { seed: 1 });
  const lora = addTaskLora(model, { r: 2, alpha: 4, targets: 'all' });
  randomizeB(lora, 3);
  lora.train();
  withScope(() => model.forward(batchOf(texts), Int32Array.of(1, 0, 1)).loss!.backward());
  const frozenLinears = model.namedParameters().filter(([n]) => /\.(c_attn|c_proj|c_fc)\./.test(n));
  assert.equal(frozenLinears.length, 8);
  for (const [name, p] of model.backbone.namedParameters()) assert.equal(p.grad, null, `${name} got a gradient`);
  for (const [name, p] of lora.namedParameters()) {
    assert.ok(p.grad && p.grad.data.some((g) => g !== 0), `${name} has no gradient`);
  }
});

test('fine-tuning with LoRA changes only adapters + head; save → reload gives the same logits (PEFT layout)', async () => {
  const model = new SequenceClassifier(loadBackbone(baseDir), ['negative', 'positive'], { seed: 1 });
  const lora = addTaskLora(model, { r: 4, alpha: 8, dropout: 0.1, targets: 'all' }, { seed: 5, baseModel: baseDir });
  const bodyBefore = model.backbone.parameters().map((p) => Float32Array.from(p.data));
  const headBefore = Float32Array.from(model.head.weight.data);
  await finetune({
    model, tokenizer, train: syntheticReviews(64, 1), val: syntheticReviews(16, 2), runDir: join(root, 'ft-run'),
    epochs: 2, batchSize: 16, lr: 1e-2, seed: 1, trainable: lora,
  });
  model.backbone.parameters().forEach((p, i) => assert.deepEqual(p.data, bodyBefore[i], 'a frozen body weight changed'));
  assert.ok(model.head.weight.data.some((v, i) => v !== headBefore[i]), 'the head did not train');
  assert.ok([...lora.layers.values()].some((l) => l.B.data.some((v) => v !== 0)), 'the adapters did not train');
  const expected = logits(model, texts);

  const dir = join(root, 'adapter');
  saveTaskAdapter(dir, lora, model, tokenizer);
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(config.peft_type, 'LORA');
  assert.equal(config.task_type, 'SEQ_CLS');
  assert.deepEqual(config.modules_to_save, ['score']);
  assert.equal(config.primer_task_head.architectures[0], 'GPT2ForSequenceClassification');
  assert.deepEqual(config.primer_task_head.id2label, { 0: 'negative', 1: 'positive' });
  const names = readSafetensors(join(dir, 'adapter_model.safetensors')).names;
  assert.ok(names.includes('base_model.model.score.weight'));
  assert.ok(names.includes('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'));
  assert.ok(names.includes('base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight'));
  assert.ok(names.every((n) => n.startsWith('base_model.model.')));

  const reloaded = loadTaskAdapter(dir, baseDir);
  assert.ok(reloaded instanceof SequenceClassifier);
  const got = logits(reloaded, texts);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - expected[i]!) < 1e-5, `logit ${i}: ${got[i]} vs ${expected[i]}`);
  // The base directory is what the adapter recorded: it loads without naming the base too.
  const fromRecordedBase = loadTaskAdapter(dir);
  assert.ok(fromRecordedBase instanceof SequenceClassifier);
  assert.deepEqual(logits(fromRecordedBase, texts), got);
});

test('primer finetune --lora-r, then primer classify with base + adapter', async () => {
  const csv = join(root, 'reviews.csv');
  writeFileSync(csv, 'text,label\n' + syntheticReviews(80, 4).map((r) => `${r.text},${r.label}`).join('\n') + '\n');
  const out = join(root, 'cls-lora');
  const ft = await run(process.execPath, [bin, 'finetune', '--model', baseDir, '--data', csv, '--out', out, '--epochs', '1', '--batch-size', '16',
    '--lr', '1e-2', '--lora-r', '4', '--lora-targets', 'all']);
  assert.match(ft.stdout, /LoRA r=4 on 4 layers \+ head score: [\d,]+ trainable parameters/);
  assert.match(ft.stdout, /model saved to/);
  const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.equal(config.task_type, 'SEQ_CLS');
  const a = await run(process.execPath, [bin, 'classify', '--model', baseDir, '--adapter', out, '--json', '--text', 'the food was good']);
  const b = await run(process.execPath, [bin, 'classify', '--model', out, '--json', '--text', 'the food was good']);
  const ra = JSON.parse(a.stdout);
  assert.ok(['negative', 'positive'].includes(ra.label));
  assert.ok(Math.abs(ra.scores.negative + ra.scores.positive - 1) < 1e-6);
  assert.deepEqual(JSON.parse(b.stdout), ra);
});
