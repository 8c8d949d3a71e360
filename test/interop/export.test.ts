/**
 * exportHf: the files match what transformers' save_pretrained writes (checked against the fixtures'
 * own headers, which PyTorch/transformers wrote), and export → import reproduces logits bit for bit
 * for LM, pre-training and task models, tokenizers included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadPretrained, type Pretrained } from '../../src/interop/import.ts';
import { exportHf, TRANSFORMERS_VERSION } from '../../src/interop/export-hf.ts';
import { registerInteropCommands } from '../../src/cli/interop.ts';
import { readSafetensors, type TensorToWrite } from '../../src/io/safetensors.ts';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import type { SequenceClassifier, QuestionAnswering } from '../../src/models/heads.ts';
import { Rng } from '../../src/util/random.ts';
import { fixtureConfig, fixtureLogits, fixtures, removeTempDirs, tempDir, writeModel } from './helpers.ts';

test.after(removeTempDirs);

/** name → [dtype, shape] of a safetensors header, plus its metadata. */
function header(path: string): { tensors: Map<string, string>; metadata: unknown } {
  const f = readSafetensors(path);
  return { tensors: new Map(f.names.map((n) => [n, `${f.info(n).dtype} [${f.info(n).shape}]`])), metadata: f.metadata };
}

test('exported model.safetensors has the fixture headers: same names, F32 dtypes, shapes, tied weights absent, format pt', () => {
  for (const name of ['gpt2-tiny', 'bert-tiny']) {
    const out = tempDir('export');
    exportHf(loadPretrained(join(fixtures, name)), out);
    const got = header(join(out, 'model.safetensors'));
    const want = header(join(fixtures, name, 'model.safetensors'));
    assert.deepEqual([...got.tensors].sort(), [...want.tensors].sort());
    assert.deepEqual(got.metadata, { format: 'pt' });
    for (const tied of ['lm_head.weight', 'cls.predictions.decoder.weight', 'cls.predictions.decoder.bias']) assert.ok(!got.tensors.has(tied));
  }
});

test('export → import gives bit-identical logits, and exporting again gives byte-identical weights', () => {
  for (const name of ['gpt2-tiny', 'bert-tiny']) {
    const first = loadPretrained(join(fixtures, name));
    const out = tempDir('roundtrip');
    exportHf(first, out);
    const again = loadPretrained(out);
    assert.equal(again.architecture, first.architecture);
    assert.deepEqual(Array.from(fixtureLogits(again, name)), Array.from(fixtureLogits(first, name)));
    const out2 = tempDir('roundtrip2');
    exportHf(again, out2);
    assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(out2, 'model.safetensors'))));
  }
});

test('config.json, generation_config.json and tokenizer files follow transformers conventions', () => {
  const texts = Array.from({ length: 40 }, (_, i) => `the quick brown fox ${i} jumps over the lazy dog ${i * 7}`);
  const gpt = loadPretrained(join(fixtures, 'gpt2-tiny'));
  gpt.tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 300, texts, specialTokens: ['<|endoftext|>'] });
  const out = tempDir('gpt-files');
  const files = exportHf(gpt, out);
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt']) {
    assert.ok(files.includes(f) && existsSync(join(out, f)), f);
  }
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual([config.architectures, config.model_type, config.torch_dtype, config.transformers_version, config.n_embd, config.vocab_size],
    [['GPT2LMHeadModel'], 'gpt2', 'float32', TRANSFORMERS_VERSION, 64, 512]);
  const generation = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'));
  assert.deepEqual([generation.bos_token_id, generation.eos_token_id], [511, 511]);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'special_tokens_map.json'), 'utf8')), { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' });
  const text = 'the lazy fox 12 jumps';
  const back = loadPretrained(out);
  assert.deepEqual(back.tokenizer!.encode(text).ids, gpt.tokenizer.encode(text).ids);
  // Legacy files alone (no tokenizer.json) load to the same tokenizer.
  rmSync(join(out, 'tokenizer.json'));
  assert.deepEqual(loadPretrained(out).tokenizer!.encode(text).ids, gpt.tokenizer.encode(text).ids);

  const bert = loadPretrained(join(fixtures, 'bert-tiny'));
  bert.tokenizer = trainTokenizer({ type: 'wordpiece', vocabSize: 120, texts });
  const bertOut = tempDir('bert-files');
  exportHf(bert, bertOut);
  assert.ok(!existsSync(join(bertOut, 'generation_config.json')));
  assert.deepEqual(JSON.parse(readFileSync(join(bertOut, 'config.json'), 'utf8')).architectures, ['BertForPreTraining']);
  rmSync(join(bertOut, 'tokenizer.json'));
  assert.deepEqual(loadPretrained(bertOut).tokenizer!.encode('the quick dog').ids, bert.tokenizer.encode('the quick dog').ids);
});

/** The BERT fixture's body under HF names (optionally without the pooler or the bert. prefix), plus a random head. */
function bertTaskDir(arch: string, head: Record<string, number[]>, o: { pooler?: boolean; prefix?: boolean; config?: Record<string, unknown> } = {}): string {
  const w = readSafetensors(join(fixtures, 'bert-tiny', 'model.safetensors'));
  const rng = new Rng(7);
  const tensors: TensorToWrite[] = [];
  for (const n of w.names) {
    if (!n.startsWith('bert.') || (o.pooler === false && n.startsWith('bert.pooler.'))) continue;
    tensors.push({ name: o.prefix === false ? n.slice(5) : n, shape: w.info(n).shape, data: w.getFloat32(n) });
  }
  for (const [n, shape] of Object.entries(head)) {
    tensors.push({ name: n, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * 0.5) });
  }
  return writeModel(tempDir(arch), { ...fixtureConfig('bert-tiny'), architectures: [arch], ...o.config }, tensors);
}

const x = { inputIds: Int32Array.from([2, 63, 178, 4, 325, 220, 3, 0]), batch: 2, length: 4, attentionMask: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 0]) };

function taskLogits(p: Pretrained): number[] {
  return noGrad(() => {
    const m = p.task!.eval();
    if (p.architecture.endsWith('QuestionAnswering')) {
      const o = (m as QuestionAnswering).forward(x);
      return [...o.startLogits.data, ...o.endLogits.data];
    }
    return Array.from((m as SequenceClassifier).forward(x).logits.data);
  });
}

test('task models (sequence/token classification, QA) and BertModel/BertForMaskedLM import, and round-trip exactly', () => {
  const labels = { id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' }, label2id: { negative: 0, neutral: 1, positive: 2 } };
  const cases = [
    bertTaskDir('BertForSequenceClassification', { 'classifier.weight': [3, 64], 'classifier.bias': [3] }, { config: labels }),
    bertTaskDir('BertForTokenClassification', { 'classifier.weight': [2, 64], 'classifier.bias': [2] }, { pooler: false }),
    bertTaskDir('BertForQuestionAnswering', { 'qa_outputs.weight': [2, 64], 'qa_outputs.bias': [2] }, { pooler: false }),
  ];
  for (const dir of cases) {
    const p = loadPretrained(dir);
    assert.ok(p.task);
    const out = tempDir('task-out');
    exportHf(p, out);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.architectures[0], p.architecture);
    const names = readSafetensors(join(out, 'model.safetensors')).names;
    assert.equal(names.some((n) => n.startsWith('bert.pooler.')), p.architecture === 'BertForSequenceClassification');
    assert.deepEqual(taskLogits(loadPretrained(out)), taskLogits(p));
  }
  // GPT2ForSequenceClassification: transformer.* + score.weight (no bias), pooled at the last real token.
  const g = readSafetensors(join(fixtures, 'gpt2-tiny', 'model.safetensors'));
  const gptTensors: TensorToWrite[] = g.names.map((n) => ({ name: n, shape: g.info(n).shape, data: g.getFloat32(n) }));
  gptTensors.push({ name: 'score.weight', shape: [2, 64], data: Float32Array.from({ length: 128 }, (_, i) => Math.sin(i)) });
  const gptSeq = loadPretrained(writeModel(tempDir('gpt-seq'), { ...fixtureConfig('gpt2-tiny'), architectures: ['GPT2ForSequenceClassification'], pad_token_id: 511 }, gptTensors));
  assert.equal(gptSeq.architecture, 'GPT2ForSequenceClassification');
  const gptOut = tempDir('gpt-seq-out');
  exportHf(gptSeq, gptOut);
  assert.deepEqual(readSafetensors(join(gptOut, 'model.safetensors')).names.filter((n) => !n.startsWith('transformer.')), ['score.weight']);
  assert.deepEqual(taskLogits(loadPretrained(gptOut)), taskLogits(gptSeq));

  const seq = loadPretrained(cases[0]!);
  assert.deepEqual((seq.task as SequenceClassifier).labels.labels, ['negative', 'neutral', 'positive']);
  assert.deepEqual(JSON.parse(readFileSync(join(cases[0]!, 'config.json'), 'utf8')).label2id, labels.label2id);
  assert.deepEqual(loadPretrained(cases[1]!).newlyInitialized, ['bert.pooler.dense.weight', 'bert.pooler.dense.bias']);

  const bare = loadPretrained(bertTaskDir('BertModel', {}, { prefix: false }));
  assert.equal(bare.kind, 'bert');
  assert.ok(bare.newlyInitialized.length > 0 && bare.newlyInitialized.every((n) => n.startsWith('cls.')));
  const mlm = loadPretrained(bertTaskDir('BertForMaskedLM', {
    'cls.predictions.transform.dense.weight': [64, 64], 'cls.predictions.transform.dense.bias': [64],
    'cls.predictions.transform.LayerNorm.weight': [64], 'cls.predictions.transform.LayerNorm.bias': [64], 'cls.predictions.bias': [512],
  }, { pooler: false }));
  assert.deepEqual(mlm.newlyInitialized.sort(), ['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'cls.seq_relationship.bias', 'cls.seq_relationship.weight']);
});

test('primer import --out and primer export --format hf', async () => {
  const program = new Command().exitOverride();
  registerInteropCommands(program);
  const out = tempDir('cli-import');
  const exported = tempDir('cli-export');
  const logs: string[] = [];
  const warnings: string[] = [];
  const log = console.log, error = console.error;
  console.log = (s: string) => logs.push(s);
  console.error = (s: string) => warnings.push(s);
  try {
    await program.parseAsync(['node', 'primer', 'import', join(fixtures, 'gpt2-tiny'), '--out', out]);
    await program.parseAsync(['node', 'primer', 'export', '--format', 'hf', '--model', out, '--out', exported]);
  } finally {
    console.log = log;
    console.error = error;
  }
  // The fixture has weights and config only: both commands say what its users will miss.
  assert.deepEqual(warnings, [
    `warning: ${join(fixtures, 'gpt2-tiny')} has no tokenizer (tokenizer.json, vocab.json + merges.txt or vocab.txt): generate, serve, fill-mask and fine-tuning need one; copy it into the model directory`,
    `warning: ${out} has no tokenizer (tokenizer.json, vocab.json + merges.txt or vocab.txt): transformers' AutoTokenizer will not find one in the export`,
  ]);
  const [summary, exportSummary] = logs.map((l) => JSON.parse(l));
  const w = readSafetensors(join(fixtures, 'gpt2-tiny', 'model.safetensors'));
  const fixtureParameters = w.names.reduce((n, name) => n + w.getFloat32(name).length, 0);
  assert.deepEqual([summary.architecture, summary.dtypes, summary.parameters, summary.out], ['GPT2LMHeadModel', ['F32'], fixtureParameters, out]);
  assert.equal(exportSummary.format, 'hf');
  assert.ok(readFileSync(join(exported, 'model.safetensors')).equals(readFileSync(join(out, 'model.safetensors'))));
});
