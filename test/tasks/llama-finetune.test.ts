/**
 * `primer finetune` on Llama-family bodies (Llama, Qwen2): the task heads keep HF's layout
 * (LlamaForSequenceClassification = `model.*` + `score.weight`, last non-pad token), fine-tuning
 * learns a separable toy task in full and with LoRA (PEFT names), the saved checkpoint reloads with
 * identical logits, and embeddings mean-pool the body's hidden states.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPrimer } from '../helpers/cli.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { Llama, type LlamaConfig, type LlamaModel } from '../../src/models/llama.ts';
import { saveModelDir } from '../../src/models/load.ts';
import { LlamaForSequenceClassification } from '../../src/models/llama-heads.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier, createTaskModel, lastNonPadTokenIndices, type ModelInputs } from '../../src/models/heads.ts';
import { loadBackbone, loadTaskModelDir, saveTaskModelDir } from '../../src/models/model-dir.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { loadLoraAdapter } from '../../src/adapt/lora.ts';
import { loadTaskAdapter, loadTaskModelForInference } from '../../src/adapt/lora-task.ts';
import { collate, padTokenId } from '../../src/tasks/encode.ts';
import { freezeBackbone } from '../../src/tasks/finetune.ts';
import { embedTexts } from '../../src/tasks/embed.ts';
import { buildTaskModel, finetuneTask } from '../../src/tasks/task-run.ts';
import { classifyTexts } from '../../src/tasks/task-infer.ts';
import { syntheticReviews, POSITIVE, NEGATIVE } from './tiny-lm.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
const root = mkdtempSync(join(tmpdir(), 'primer-llama-finetune-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const reviews = syntheticReviews(160, 11);
const data = join(root, 'reviews.csv');
writeFileSync(data, 'text,label\n' + reviews.map((r) => `${r.text},${r.label}`).join('\n') + '\n');
const tokenizer = trainBpe(reviews.map((r) => r.text), { vocabSize: 300, specialTokens: ['<|endoftext|>'] });

/** A randomly initialised Llama (tied head) or Qwen2 (q/k/v biases, untied head, one KV head) directory with the reviews' tokenizer. */
function baseDir(kind: 'llama' | 'qwen2'): string {
  const config: LlamaConfig = {
    model_type: kind, vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: kind === 'llama' ? 2 : 1, max_position_embeddings: 64,
    tie_word_embeddings: kind === 'llama', bos_token_id: 0, eos_token_id: 0,
  };
  const dir = join(root, `${kind}-base`);
  if (!existsSync(dir)) saveModelDir(dir, new Llama(config, 5), config, tokenizer);
  return dir;
}

function logitsOf(model: SequenceClassifier | TokenClassifier, x: ModelInputs): Float32Array {
  model.eval();
  return noGrad(() => withScope(() => Float32Array.from(model.forward(x).logits.data)));
}

const batchOf = (texts: readonly string[]) => collate(texts.map((t) => tokenizer.encode(t, null, { maxLength: 32 })), padTokenId(tokenizer));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

const primer = runPrimer;

for (const fixture of ['llama-tiny', 'qwen2-tiny']) {
  test(`${fixture}: the classifier reads PyTorch's hidden state of the last non-pad token (score = LM-head rows → HF's LM logits)`, () => {
    const dir = join(fixtures, fixture);
    const body = loadBackbone(dir) as LlamaModel;
    const clf = new SequenceClassifier(body, ['a', 'b', 'c'], { padTokenId: 0, seed: 3 });
    assert.equal(clf.architecture, fixture === 'llama-tiny' ? 'LlamaForSequenceClassification' : 'Qwen2ForSequenceClassification');
    const names = clf.namedParameters().map(([n]) => n);
    assert.equal(names[0], 'model.embed_tokens.weight');
    assert.deepEqual(names.filter((n) => !n.startsWith('model.')), ['score.weight']);
    // score.weight = three rows of the LM head: the class logits are the LM logits of tokens 5, 7, 11.
    const cols = [5, 7, 11];
    const weights = readSafetensors(join(dir, 'model.safetensors'));
    const head = weights.getFloat32(weights.names.includes('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight');
    const c = body.cfg.hidden_size;
    cols.forEach((v, k) => clf.head.weight.data.set(head.subarray(v * c, (v + 1) * c), k * c));
    const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as { input_ids: number[][] };
    const expected = readSafetensors(join(dir, 'expected.safetensors')).getFloat32('logits'); // [2, 12, V]
    const [t, v] = [inputs.input_ids[0]!.length, body.cfg.vocab_size];
    // Row 0 whole, row 1 cut to 7 tokens, right-padded with 0 to 15 columns (causal: a prefix's logits are the full row's).
    const rows = [inputs.input_ids[0]!, inputs.input_ids[1]!.slice(0, 7)];
    const x = collate(rows.map((ids) => ({ ids, typeIds: ids.map(() => 0) })), 0, 15);
    const got = logitsOf(clf, x);
    const want = [[0, t - 1], [1, 6]].flatMap(([r, pos]) => cols.map((col) => expected[(r! * t + pos!) * v + col]!));
    assert.ok(maxAbsDiff(got, want) < 1e-4, `${fixture}: ${Array.from(got)} vs ${want}`);
    // The same weights in llama-heads.ts's LlamaForSequenceClassification give the same logits (one layout, one rule).
    const hf = new LlamaForSequenceClassification({ ...body.cfg, num_labels: 3, pad_token_id: 0 });
    const { missing, unexpected } = hf.loadStateDict(new Map(clf.namedParameters().map(([n, p]) => [n, p.data as Float32Array])));
    assert.deepEqual([missing, unexpected], [[], []]);
    const hfLogits = noGrad(() => withScope(() => Float32Array.from(hf.eval().forward(x.inputIds, 2, 15).logits.data)));
    assert.ok(maxAbsDiff(got, hfLogits) < 1e-6);
    assert.deepEqual(clf.headConfig().pad_token_id, 0);
    assert.throws(() => new SequenceClassifier(body, ['a'], { pooling: 'cls' }), /pooling 'cls' needs a BERT backbone; (Llama|Qwen2) \(a decoder\) pools 'last' or 'mean'/);
  });
}

test("last non-pad token: HF's rule among the real tokens (a trailing pad id inside the text is skipped, as HF does)", () => {
  const x: ModelInputs = {
    inputIds: Int32Array.from([5, 9, 3, 7, 0, 0, 5, 0, 4, 0, 0, 0, 6, 8, 0, 9]), batch: 4, length: 4,
    attentionMask: Uint8Array.from([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0]),
  };
  assert.deepEqual(Array.from(lastNonPadTokenIndices(x, 0)), [3, 0, 0, 1]);
  assert.deepEqual(Array.from(lastNonPadTokenIndices(x, null)), [3, 1, 2, 1]);
});

test('finetuneTask on a Llama directory: the loss falls, test accuracy is above chance, the HF checkpoint reloads with identical logits', async () => {
  const base = baseDir('llama');
  const out = join(root, 'llama-clf');
  const lines: string[] = [];
  const r = await finetuneTask({ model: base, data, out, epochs: 4, lr: 3e-3, batchSize: 16, seed: 1, log: (m) => lines.push(m) });
  assert.match(lines[0]!, /^fine-tuning LlamaForSequenceClassification \(.*\) on .*reviews\.csv: 128 training examples, 16 validation, 16 test$/);
  const losses = r.training.history.map((h) => h.trainLoss);
  assert.equal(losses.length, 4);
  assert.ok(losses[3]! < 0.5 * losses[0]!, `train loss ${losses.join(' → ')}`);
  assert.ok(r.test && 'accuracy' in r.test && r.test.accuracy >= 0.75, JSON.stringify(r.test));

  // A transformers LlamaForSequenceClassification checkpoint: HF config keys and tensor names, no LM head.
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(
    [config.architectures, config.model_type, config.id2label, config.label2id, config.pad_token_id, config.problem_type],
    [['LlamaForSequenceClassification'], 'llama', { 0: 'negative', 1: 'positive' }, { negative: 0, positive: 1 }, padTokenId(tokenizer), 'single_label_classification'],
  );
  const names = readSafetensors(join(out, 'model.safetensors')).names;
  assert.equal(names.length, r.model.namedParameters().length);
  assert.deepEqual(names.filter((n) => !n.startsWith('model.')), ['score.weight']);
  assert.ok(names.includes('model.layers.1.self_attn.k_proj.weight') && names.includes('model.norm.weight'));

  const { model, tokenizer: tok } = loadTaskModelForInference(out, SequenceClassifier, 'sequence classification');
  const texts = ['the food was good', 'very awful service and it was quite poor', 'lovely'];
  const x = batchOf(texts);
  assert.deepEqual(logitsOf(model, x), logitsOf(r.model as SequenceClassifier, x));
  const predicted = classifyTexts(model, tok, texts).map((c) => c.label);
  const logits = logitsOf(model, x);
  assert.deepEqual(predicted, [0, 1, 2].map((i) => (logits[2 * i + 1]! > logits[2 * i]! ? 'positive' : 'negative')));
});

test('primer finetune --lora-r on a Qwen2 directory: PEFT adapter names, classify --adapter; merged = base + adapter', async () => {
  const base = baseDir('qwen2');
  const out = join(root, 'qwen2-lora');
  const log = await primer(['finetune', '--model', base, '--data', data, '--out', out, '--epochs', '5', '--lr', '1e-2', '--lora-r', '4', '--lora-dropout', '0', '--seed', '1']);
  assert.match(log, /fine-tuning Qwen2ForSequenceClassification/);
  // Per layer q_proj 4·(32+32) + v_proj 4·(32+8) (one KV head of 8), and the 2×32 score head.
  assert.match(log, /LoRA r=4 on 4 layers \+ head score: 896 trainable parameters/);
  const losses = [...log.matchAll(/epoch \d+: train loss ([\d.]+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 5);
  assert.ok(losses[4]! < losses[0]!, losses.join(' → '));
  const results = JSON.parse(readFileSync(join(out, 'eval_results.json'), 'utf8')) as { test: { accuracy: number } };
  assert.ok(results.test.accuracy > 0.6, `test accuracy ${results.test.accuracy}`);

  const adapter = readSafetensors(join(out, 'adapter_model.safetensors')).names;
  const expectedNames = [0, 1].flatMap((l) => ['q_proj', 'v_proj'].flatMap((p) => ['A', 'B'].map((ab) => `base_model.model.model.layers.${l}.self_attn.${p}.lora_${ab}.weight`)));
  assert.deepEqual([...adapter].sort(), [...expectedNames, 'base_model.model.score.weight'].sort());
  const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([cfg.task_type, cfg.target_modules, cfg.modules_to_save, cfg.fan_in_fan_out], ['SEQ_CLS', ['q_proj', 'v_proj'], ['score'], false]);
  assert.deepEqual([cfg.primer_task_head.architectures, cfg.primer_task_head.pad_token_id], [['Qwen2ForSequenceClassification'], padTokenId(tokenizer)]);

  const texts = ['it was good', 'the film was bad'];
  const printed = (await primer(['classify', '--model', base, '--adapter', out, '--json', '--text', ...texts])).split('\n').map((l) => JSON.parse(l) as { label: string; scores: Record<string, number> });
  const merged = loadTaskAdapter(out, base) as SequenceClassifier;
  const mergedLogits = logitsOf(merged, batchOf(texts));
  printed.forEach((p, i) => {
    const [a, b] = [mergedLogits[2 * i]!, mergedLogits[2 * i + 1]!];
    assert.ok(Math.abs(p.scores.positive! - 1 / (1 + Math.exp(a - b))) < 1e-6);
  });
  // Unmerged: base weights + LoRA layers computing B·A·x beside them; merging folds them in.
  const unmerged = createTaskModel({ ...loadBackbone(base).cfg, ...cfg.primer_task_head }) as SequenceClassifier;
  unmerged.backbone.loadStateDict(new Map(loadBackbone(base).namedParameters().map(([n, p]) => [n, p.data as Float32Array])));
  const lora = loadLoraAdapter(unmerged, 'llama', out);
  lora.eval();
  const unmergedLogits = noGrad(() => withScope(() => Float32Array.from((lora.base as SequenceClassifier).forward(batchOf(texts)).logits.data)));
  assert.ok(maxAbsDiff(mergedLogits, unmergedLogits) < 1e-5, `${mergedLogits} vs ${unmergedLogits}`);
  // Without the adapters (base + trained head only) the logits move: the adapters carry part of what was learnt.
  const headOnly = lora.unload() as SequenceClassifier;
  assert.ok(maxAbsDiff(mergedLogits, logitsOf(headOnly, batchOf(texts))) > 1e-4);
});

test('Llama token tagging: LlamaForTokenClassification names (score with bias), save/reload; QA refused by name; freezing', () => {
  const body = loadBackbone(join(fixtures, 'llama-tiny'));
  const tagger = new TokenClassifier(body, ['O', 'B', 'I'], { seed: 2 });
  assert.equal(tagger.architecture, 'LlamaForTokenClassification');
  assert.equal(tagger.dropout, 0.1);
  assert.deepEqual(tagger.namedParameters().map(([n]) => n).filter((n) => !n.startsWith('model.')), ['score.weight', 'score.bias']);
  const dir = join(root, 'llama-tagger');
  saveTaskModelDir(dir, tagger);
  const back = loadTaskModelDir(dir);
  assert.ok(back instanceof TokenClassifier && back.architecture === 'LlamaForTokenClassification');
  const x: ModelInputs = { inputIds: Int32Array.from([1, 23, 5, 61, 9, 2]), batch: 1, length: 6 };
  assert.deepEqual(logitsOf(back, x), logitsOf(tagger, x));

  assert.throws(() => new QuestionAnswering(body), /LlamaForQuestionAnswering is not supported: extractive QA needs a GPT-2 or BERT model/);
  const qa = { type: 'qa' as const, train: [{ id: 'q', question: 'who?', context: 'me', answers: [] }], val: [], test: [], name: 'squad.json' };
  assert.throws(() => buildTaskModel(qa, body, { seed: 0 }), /LlamaForQuestionAnswering is not supported/);

  const clf = new SequenceClassifier(body, ['a', 'b']);
  const frozen = freezeBackbone(clf, { embeddings: true, layers: 1 });
  const size = (prefix: string) => clf.namedParameters().filter(([n]) => n.startsWith(prefix)).reduce((s, [, p]) => s + p.size, 0);
  assert.equal(frozen, size('model.embed_tokens.') + size('model.layers.0.'));
  assert.ok(clf.namedParameters().every(([n, p]) => p.requiresGrad === !(n.startsWith('model.embed_tokens.') || n.startsWith('model.layers.0.'))));
});

test('finetuneTask tags the words of a CoNLL file with a Llama body: token accuracy above the majority tag', async () => {
  const opinion = new Set([...POSITIVE, ...NEGATIVE]);
  const conll = join(root, 'opinions.conll');
  writeFileSync(conll, reviews.map((r) => r.text.split(' ').map((w) => `${w} ${opinion.has(w) ? 'OP' : 'O'}`).join('\n')).join('\n\n') + '\n');
  const r = await finetuneTask({ model: baseDir('llama'), data: conll, out: join(root, 'llama-tagger-run'), epochs: 3, lr: 3e-3, batchSize: 16, seed: 1, log: () => {} });
  assert.equal(r.model.architecture, 'LlamaForTokenClassification');
  const losses = r.training.history.map((h) => h.trainLoss);
  assert.ok(losses[2]! < losses[0]!, losses.join(' → '));
  // "O" is about three words in four; the tag is the word's own, so the head learns it exactly.
  assert.ok(r.test && 'accuracy' in r.test && r.test.accuracy > 0.9, JSON.stringify(r.test));
  const saved = JSON.parse(readFileSync(join(root, 'llama-tagger-run', 'config.json'), 'utf8'));
  assert.deepEqual(saved.architectures, ['LlamaForTokenClassification']);
});

test('embed: a Llama body mean-pools its hidden states over the real tokens, L2-normalised; padding changes nothing', () => {
  const base = baseDir('llama');
  const body = loadBackbone(base) as LlamaModel;
  const tok = loadTokenizer(base);
  const texts = ['the food was good', 'awful', 'the service was very quite lovely and it was good'];
  const batched = embedTexts(body, tok, texts, { batchSize: 3 });
  assert.deepEqual([batched.count, batched.dim], [3, 32]);
  texts.forEach((text, i) => {
    const ids = Int32Array.from(tok.encode(text, null).ids);
    const hidden = noGrad(() => withScope(() => Float32Array.from(body.forward(ids, 1, ids.length).data)));
    const mean = Array.from({ length: 32 }, (_, j) => ids.reduce((s, _id, t) => s + hidden[t * 32 + j]!, 0) / ids.length);
    const norm = Math.hypot(...mean);
    assert.ok(maxAbsDiff(batched.vectors.subarray(32 * i, 32 * i + 32), mean.map((m) => m / norm)) < 1e-5, text);
  });
  assert.ok(maxAbsDiff(embedTexts(body, tok, texts, { batchSize: 1 }).vectors, batched.vectors) < 1e-5);
  assert.deepEqual(Array.from(embedTexts(body, tok, texts, { pooling: 'last', batchSize: 3 }).vectors).length, 96);
  assert.throws(() => embedTexts(body, tok, texts, { pooling: 'cls' }), /pooling 'cls' needs a BERT model; a decoder \(llama\) pools 'mean' or 'last'/);
});
