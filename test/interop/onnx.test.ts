/**
 * ONNX export, accepted by Transformers.js (onnxruntime-node, CPU) from a local directory:
 * GPT-2 logits, past-key-value steps and greedy generation, BERT fill-mask, and a fine-tuned BERT
 * classifier's text-classification labels all match Primer's own inference, as do the logits of
 * GPT-2 / BERT task heads on padded batches (a BERT with relative_key attention too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { AutoModel, AutoModelForCausalLM, AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, DynamicCache, Tensor, env, pipeline } from '@huggingface/transformers';
import { InteropError, loadPretrained } from '../../src/interop/import.ts';
import { exportOnnx, exportOnnxDir } from '../../src/interop/onnx.ts';
import { decodeOnnxModel } from '../../src/interop/onnx-proto.ts';
import { registerInteropCommands } from '../../src/cli/interop.ts';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { generateIds } from '../../src/infer/generate.ts';
import { fillMask } from '../../src/infer/fill-mask.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, type ModelInputs, type TaskModel } from '../../src/models/heads.ts';
import { loadBackbone, loadTaskModelDir, saveTaskModelDir } from '../../src/models/model-dir.ts';
import { predictClasses } from '../../src/tasks/finetune.ts';
import type { GPT, GPTConfig } from '../../src/models/gpt.ts';
import type { Bert } from '../../src/models/bert.ts';
import { fixtures, ownFixtures, removeTempDirs, tempDir } from './helpers.ts';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useBrowserCache = false;
env.useFSCache = false;

test.after(removeTempDirs);

const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'fox', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'quick', 'brown', 'lazy', 'dog', 'jumps', 'over', 'the'];
const texts = Array.from({ length: 200 }, (_, i) => Array.from({ length: 8 }, (_, j) => `${words[(i * 7 + j * 3) % words.length]}${(i + j) % 5 === 0 ? i % 37 : ''}`).join(' '));
const gptTokenizer = trainTokenizer({ type: 'bpe', vocabSize: 400, texts, specialTokens: ['<|endoftext|>'] });
const bertTokenizer = trainTokenizer({ type: 'wordpiece', vocabSize: 300, texts });

const root = tempDir('onnx');
const gpt = loadPretrained(join(fixtures, 'gpt2-tiny'));
gpt.tokenizer = gptTokenizer;
const gptDir = join(root, 'gpt');
const gptFiles = exportOnnx(gpt, gptDir);
const bert = loadPretrained(join(fixtures, 'bert-tiny'));
bert.tokenizer = bertTokenizer;
const bertDir = join(root, 'bert');
exportOnnx(bert, bertDir);

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const topK = (row: ArrayLike<number>, k: number) => Array.from(row, (v, i) => [v, i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, k).map(([, i]) => i);
const int64 = (ids: readonly number[]) => new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);

test('model.onnx decodes with protobufjs: opset 17, optimum input/output names, HF initializer names', () => {
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors', 'onnx/model.onnx']) {
    assert.ok(gptFiles.includes(f) && existsSync(join(gptDir, f)), f);
  }
  const m = decodeOnnxModel(readFileSync(join(gptDir, 'onnx', 'model.onnx')));
  assert.equal(m.irVersion, 8);
  assert.deepEqual(m.opsetImport.map((o) => [o.domain ?? '', o.version]), [['', 17]]);
  const kv = [0, 1].flatMap((i) => [`${i}.key`, `${i}.value`]);
  assert.deepEqual(m.graph.input.map((v) => v.name), ['input_ids', 'attention_mask', 'position_ids', ...kv.map((n) => `past_key_values.${n}`)]);
  assert.deepEqual(m.graph.output.map((v) => v.name).sort(), ['logits', ...kv.map((n) => `present.${n}`)].sort());
  const past = m.graph.input[3]!.type.tensorType.shape.dim;
  assert.deepEqual(past.map((d) => d.dimValue ?? d.dimParam), ['batch_size', 4, 'past_sequence_length', 16]);
  const wte = m.graph.initializer.find((t) => t.name === 'transformer.wte.weight')!;
  assert.deepEqual([wte.dims, wte.dataType, wte.rawData.length], [[512, 64], 1, 512 * 64 * 4]);
  assert.deepEqual(new Float32Array(Uint8Array.from(wte.rawData).buffer), (gpt.model as GPT).transformer.wte.weight.data);
  const b = decodeOnnxModel(readFileSync(join(bertDir, 'onnx', 'model.onnx')));
  assert.deepEqual(b.graph.input.map((v) => v.name), ['input_ids', 'attention_mask', 'token_type_ids']);
  assert.deepEqual(b.graph.output.map((v) => v.name), ['logits']);
});

test('Transformers.js GPT-2: logits, a past-key-value step and greedy generation match Primer', async () => {
  const model = gpt.model as GPT;
  const tokenizer = await AutoTokenizer.from_pretrained(gptDir);
  const text = 'the quick brown fox jumps over';
  const prompt = gptTokenizer.encode(text, null, { addSpecialTokens: false }).ids;
  assert.deepEqual(Array.from(tokenizer.encode(text, { add_special_tokens: false })), prompt);
  const tjs = await AutoModelForCausalLM.from_pretrained(gptDir, { dtype: 'fp32' });
  const primerLogits = (ids: readonly number[]) => noGrad(() => model.forward(Int32Array.from(ids), 1, ids.length).logits.data as Float32Array);
  const v = gpt.config.vocab_size as number;
  try {
    const first = await tjs({ input_ids: int64(prompt), attention_mask: int64(prompt.map(() => 1)) });
    const want = primerLogits(prompt);
    assert.ok(maxDiff(first.logits.data as Float32Array, want) < 1e-4);
    const last = want.subarray((prompt.length - 1) * v);
    assert.deepEqual(topK((first.logits.data as Float32Array).subarray((prompt.length - 1) * v), 5), topK(last, 5));
    // Step 2 feeds one token plus the present tensors of step 1 as past_key_values, as generate() does.
    const next = topK(last, 1)[0]!;
    const cache = new DynamicCache(Object.fromEntries([0, 1].flatMap((i) => ['key', 'value'].map((kv) => [`past_key_values.${i}.${kv}`, first[`present.${i}.${kv}`]]))));
    assert.deepEqual(cache.get_seq_length(), prompt.length);
    const second = await tjs({ input_ids: int64([next]), attention_mask: int64([...prompt, next].map(() => 1)), past_key_values: cache });
    const wantNext = primerLogits([...prompt, next]).subarray(prompt.length * v);
    assert.ok(maxDiff(second.logits.data as Float32Array, wantNext) < 1e-4);
    assert.deepEqual(second['present.1.key'].dims, [1, 4, prompt.length + 1, 16]);

    const generated = await tjs.generate({ input_ids: int64(prompt), attention_mask: int64(prompt.map(() => 1)), max_new_tokens: 5, do_sample: false });
    const tjsIds = Array.from((generated as Tensor).data as BigInt64Array, Number).slice(prompt.length);
    const primerIds = generateIds(model, prompt, { temperature: 0, maxTokens: 5, stopId: (gpt.config as GPTConfig).eos_token_id });
    assert.deepEqual(tjsIds, primerIds);
    assert.ok(primerIds.length >= 1);
    const textGeneration = await pipeline('text-generation', gptDir, { dtype: 'fp32' });
    try {
      const [completion] = (await textGeneration(text, { max_new_tokens: 5, do_sample: false })) as Array<{ generated_text: string }>;
      assert.equal(completion!.generated_text, text + gptTokenizer.decode(primerIds));
    } finally {
      await textGeneration.dispose();
    }
  } finally {
    await tjs.dispose();
  }
});

test('Transformers.js fill-mask pipeline: top-5 tokens and scores match Primer fillMask', async () => {
  const fill = await pipeline('fill-mask', bertDir, { dtype: 'fp32' });
  try {
    for (const text of ['the quick [MASK] fox jumps', 'alpha bravo [MASK] delta']) {
      const got = (await fill(text, { top_k: 5 })) as Array<{ score: number; token: number; token_str: string }>;
      const [want] = fillMask(bert.model as Bert, bertTokenizer, text, { topK: 5 });
      assert.deepEqual(got.map((g) => g.token), want!.predictions.map((p) => p.id));
      // The fixture's embedding has 512 rows, the test tokenizer fewer: compare strings of real tokens.
      const inVocab = (id: number) => id < bertTokenizer.vocabSize;
      assert.deepEqual(got.filter((g) => inVocab(g.token)).map((g) => g.token_str), want!.predictions.filter((p) => inVocab(p.id)).map((p) => p.token));
      assert.ok(maxDiff(got.map((g) => g.score), want!.predictions.map((p) => p.probability)) < 1e-4);
    }
  } finally {
    await fill.dispose();
  }
});

test('primer export --format onnx: a fine-tuned BERT classifier gives the same labels in Transformers.js', async () => {
  const sentences = ['the quick brown fox', 'alpha bravo charlie delta echo', 'lazy dog jumps over the fox', 'mike lima kilo', 'golf hotel india juliet 12'];
  const classifier = new SequenceClassifier(loadBackbone(join(fixtures, 'bert-tiny')), ['neg', 'pos'], { seed: 5 });
  // Stand-in for fine-tuning: a random head, spread out and biased so that the decision boundary
  // lies between the sentences (both labels occur, none within rounding of a tie).
  const w = classifier.head.weight.data;
  for (let i = 0; i < w.length; i++) w[i]! *= 40;
  const margins = sentences.map((text) => {
    const ids = bertTokenizer.encode(text).ids;
    const l = noGrad(() => classifier.eval().forward({ inputIds: Int32Array.from(ids), batch: 1, length: ids.length }).logits.data);
    return l[1]! - l[0]!;
  }).sort((a, b) => a - b);
  classifier.head.bias!.data[1]! -= (margins[2]! + margins[3]!) / 2;
  const saved = join(root, 'cls-primer');
  saveTaskModelDir(saved, classifier, bertTokenizer);
  const out = join(root, 'cls-onnx');
  const program = new Command().exitOverride();
  registerInteropCommands(program);
  const logs: string[] = [];
  const log = console.log;
  console.log = (s: string) => logs.push(s);
  try {
    await program.parseAsync(['node', 'primer', 'export', '--format', 'onnx', '--model', saved, '--out', out]);
  } finally {
    console.log = log;
  }
  const summary = JSON.parse(logs[0]!);
  assert.equal(summary.format, 'onnx');
  assert.ok(summary.files.includes('onnx/model.onnx'));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).id2label, { 0: 'neg', 1: 'pos' });

  const reloaded = loadTaskModelDir(saved) as SequenceClassifier;
  const primerLabels = Array.from(predictClasses(reloaded, bertTokenizer, sentences.map((text) => ({ text }))), (k) => reloaded.labels.labels[k]);
  const classify = await pipeline('text-classification', out, { dtype: 'fp32' });
  const raw = await AutoModelForSequenceClassification.from_pretrained(out, { dtype: 'fp32' });
  try {
    const got = [];
    for (const s of sentences) got.push(((await classify(s)) as Array<{ label: string }>)[0]!.label);
    assert.deepEqual(got, primerLabels);
    assert.ok(new Set(primerLabels).size === 2, `both labels occur: ${primerLabels}`);
    const enc = bertTokenizer.encode(sentences[1]!);
    const logits = (await raw({ input_ids: int64(enc.ids), attention_mask: int64(enc.ids.map(() => 1)), token_type_ids: int64(enc.ids.map(() => 0)) })).logits.data as Float32Array;
    const want = noGrad(() => reloaded.eval().forward({ inputIds: Int32Array.from(enc.ids), batch: 1, length: enc.ids.length }).logits.data);
    assert.ok(maxDiff(logits, want) < 1e-4);
  } finally {
    await classify.dispose();
    await raw.dispose();
  }
});

test('padded batches: GPT-2 sequence classifier, BERT token classifier and QA logits match Primer', async () => {
  // Right padding (row 0) exercises the attention mask and GPT-2's last-token pooling.
  const x: ModelInputs = {
    inputIds: Int32Array.from([5, 6, 7, 8, 0, 0, 1, 2, 3, 4, 9, 10]), batch: 2, length: 6,
    attentionMask: Uint8Array.from([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]),
  };
  const feeds = {
    input_ids: new Tensor('int64', BigInt64Array.from(x.inputIds, BigInt), [2, 6]),
    attention_mask: new Tensor('int64', BigInt64Array.from(x.attentionMask!, BigInt), [2, 6]),
    token_type_ids: new Tensor('int64', new BigInt64Array(12), [2, 6]),
  };
  // Transformers.js has no GPT2ForSequenceClassification class: AutoModel runs its graph as is.
  const cases: Array<[TaskModel, typeof AutoModel, string[]]> = [
    [new SequenceClassifier(loadBackbone(join(fixtures, 'gpt2-tiny')), ['a', 'b', 'c'], { seed: 2 }), AutoModel, ['logits']],
    [new TokenClassifier(loadBackbone(join(fixtures, 'bert-tiny')), ['O', 'B', 'I'], { seed: 3 }), AutoModelForTokenClassification, ['logits']],
    [new QuestionAnswering(loadBackbone(join(fixtures, 'bert-tiny')), { seed: 4 }), AutoModelForQuestionAnswering, ['start_logits', 'end_logits']],
    // relative_key attention (q_i · d_{i−j} in the scores, no absolute positions).
    [new TokenClassifier(loadBackbone(join(ownFixtures, 'bert-relative-tiny')), ['O', 'B', 'I'], { seed: 5 }), AutoModelForTokenClassification, ['logits']],
  ];
  for (const [task, Auto, outputs] of cases) {
    const saved = tempDir('task');
    saveTaskModelDir(saved, task);
    const out = join(saved, 'onnx-export');
    exportOnnxDir(saved, out);
    const model = await Auto.from_pretrained(out, { dtype: 'fp32' });
    try {
      const got = await model(task.kind === 'gpt2' ? { input_ids: feeds.input_ids, attention_mask: feeds.attention_mask } : feeds);
      const want = noGrad(() => {
        task.eval();
        if (task instanceof QuestionAnswering) {
          const o = task.forward(x);
          return [o.startLogits.data, o.endLogits.data];
        }
        return [(task as SequenceClassifier | TokenClassifier).forward(x).logits.data];
      });
      outputs.forEach((name, k) => {
        assert.ok(maxDiff(got[name].data as Float32Array, want[k]!) < 1e-4, `${task.architecture} ${name}`);
      });
    } finally {
      await model.dispose();
    }
  }
  const unsupported = tempDir('gpt-token');
  saveTaskModelDir(unsupported, new TokenClassifier(loadBackbone(join(fixtures, 'gpt2-tiny')), ['x', 'y']));
  const refused = join(unsupported, 'onnx-export');
  assert.throws(() => exportOnnxDir(unsupported, refused), (e: unknown) => e instanceof InteropError && e.code === 'UNSUPPORTED_ARCHITECTURE');
  assert.ok(!existsSync(refused));
});
