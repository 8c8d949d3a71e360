/**
 * Task heads on the bert-tiny / gpt2-tiny fixtures behave as transformers' *ForTokenClassification,
 * *ForQuestionAnswering and *ForSequenceClassification: HF parameter names, logits = head(PyTorch's
 * hidden states), HF losses, and the label alignment / window / span mapping of run_ner.py and run_qa.py.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { GPT2Model, type GPTConfig } from '../../src/models/gpt.ts';
import { Rng } from '../../src/util/random.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { SequenceClassifier, TokenClassifier, QuestionAnswering, taskConfigJson, createTaskModel } from '../../src/models/heads.ts';
import { encodeTagged, encodeWords, alignLabels, wordPredictions, encodeTexts } from '../../src/tasks/encode.ts';
import { relError } from '../helpers/numeric.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
const TOL = 1e-4;

function bertFixture() {
  const dir = join(fixtures, 'bert-tiny');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as BertConfig;
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
  const weights = readSafetensors(join(dir, 'model.safetensors'));
  const expected = readSafetensors(join(dir, 'expected.safetensors'));
  const bert = new Bert(config);
  bert.loadStateDict(new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const)));
  const rows = inputs.input_ids as number[][];
  const batch = {
    inputIds: Int32Array.from(rows.flat()), batch: rows.length, length: rows[0]!.length,
    tokenTypeIds: Int32Array.from((inputs.token_type_ids as number[][]).flat()),
    attentionMask: Uint8Array.from((inputs.attention_mask as number[][]).flat()),
  };
  return { config, bert, batch, weights, hidden: expected.getFloat32('last_hidden_state'), pooled: expected.getFloat32('pooled_output') };
}

/** Fills a parameter with seeded values so the expected logits are not trivially zero. */
function fill(data: Float32Array | Float64Array, seed: number, scale = 0.3): void {
  const rng = new Rng(seed);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * scale;
}

/** y[r, o] = Σ_i x[r, i]·W[o, i] + b[o] in float64: torch.nn.Linear on PyTorch's own hidden states. */
function linearRef(x: ArrayLike<number>, rows: number, inDim: number, w: ArrayLike<number>, b: ArrayLike<number> | null, outDim: number): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * w[o * inDim + i]!;
      y[r * outDim + o] = s;
    }
  return y;
}

/** Mean cross-entropy over rows whose label is not `ignore`. */
function crossEntropyRef(logits: ArrayLike<number>, rows: number, v: number, labels: ArrayLike<number>, ignore = -100): number {
  let total = 0;
  let n = 0;
  for (let r = 0; r < rows; r++) {
    if (labels[r] === ignore) continue;
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, logits[r * v + j]!);
    let z = 0;
    for (let j = 0; j < v; j++) z += Math.exp(logits[r * v + j]! - m);
    total += m + Math.log(z) - logits[r * v + labels[r]!]!;
    n++;
  }
  return total / n;
}

test('BertForTokenClassification: HF names, logits = classifier(PyTorch hidden states), HF loss', () => {
  const { bert, batch, weights, hidden } = bertFixture();
  const tags = ['DET', 'NOUN', 'VERB', 'ADJ', 'X'];
  const model = new TokenClassifier(bert.bert, tags, { dropout: 0.1 });
  const names = model.namedParameters().map(([n]) => n);
  assert.ok(names.includes('bert.embeddings.word_embeddings.weight') && names.includes('classifier.weight') && names.includes('classifier.bias'));
  // A BertForPreTraining checkpoint loads into the body: only the head is new, only cls.* is left over.
  const { missing, unexpected } = model.loadStateDict(new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const)));
  assert.deepEqual(missing, ['classifier.weight', 'classifier.bias']);
  assert.ok(unexpected.length > 0 && unexpected.every((n) => n.startsWith('cls.')), unexpected.join());
  fill(model.classifier.weight.data, 1);
  fill(model.classifier.bias!.data, 2);
  model.eval();
  const [b, t, c, k] = [batch.batch, batch.length, 64, tags.length];
  const labels = new Int32Array(b * t).fill(-100).map((_, i) => (i % 3 === 0 ? i % k : -100));
  const out = noGrad(() => model.forward(batch, labels));
  assert.deepEqual(out.logits.shape, [b, t, k]);
  const expected = linearRef(hidden, b * t, c, model.classifier.weight.data, model.classifier.bias!.data, k);
  assert.ok(relError(out.logits.data, expected) <= TOL, `logits rel error ${relError(out.logits.data, expected)}`);
  const loss = crossEntropyRef(expected, b * t, k, labels);
  assert.ok(Math.abs(out.loss!.item() - loss) <= TOL * Math.abs(loss), `loss ${out.loss!.item()} vs ${loss}`);
  const cfg = taskConfigJson(model);
  assert.deepEqual(cfg.architectures, ['BertForTokenClassification']);
  assert.deepEqual(cfg.id2label, { 0: 'DET', 1: 'NOUN', 2: 'VERB', 3: 'ADJ', 4: 'X' });
  assert.equal((cfg.label2id as Record<string, number>).VERB, 2);
  const rebuilt = createTaskModel(cfg);
  assert.ok(rebuilt instanceof TokenClassifier && rebuilt.labels.labels.join() === tags.join());
  assert.deepEqual(rebuilt.namedParameters().map(([n]) => n), names);
});

test('BertForQuestionAnswering: qa_outputs → start/end logits [B, T] and the averaged HF loss', () => {
  const { bert, batch, hidden } = bertFixture();
  const model = new QuestionAnswering(bert.bert);
  assert.deepEqual(model.namedParameters().slice(-2).map(([n, p]) => [n, p.shape]), [['qa_outputs.weight', [2, 64]], ['qa_outputs.bias', [2]]]);
  fill(model.qa_outputs.weight.data, 3);
  fill(model.qa_outputs.bias!.data, 4);
  const [b, t] = [batch.batch, batch.length];
  const starts = Int32Array.from([3, 0, 40]); // 40 is past the window: clamped to T and ignored, as HF
  const ends = Int32Array.from([5, 0, 12]);
  const out = noGrad(() => model.forward(batch, starts, ends));
  assert.deepEqual(out.startLogits.shape, [b, t]);
  assert.deepEqual(out.endLogits.shape, [b, t]);
  const both = linearRef(hidden, b * t, 64, model.qa_outputs.weight.data, model.qa_outputs.bias!.data, 2);
  const start = both.filter((_, i) => i % 2 === 0);
  const end = both.filter((_, i) => i % 2 === 1);
  assert.ok(relError(out.startLogits.data, start) <= TOL && relError(out.endLogits.data, end) <= TOL);
  const loss = (crossEntropyRef(start, b, t, [3, 0, t], t) + crossEntropyRef(end, b, t, [5, 0, 12], t)) / 2;
  assert.ok(Math.abs(out.loss!.item() - loss) <= TOL * loss, `loss ${out.loss!.item()} vs ${loss}`);
  assert.deepEqual(taskConfigJson(model).architectures, ['BertForQuestionAnswering']);
});

test('BertForSequenceClassification: classifier on the pooled [CLS]; gradients reach the body', () => {
  const { bert, batch, pooled } = bertFixture();
  const model = new SequenceClassifier(bert.bert, ['neg', 'pos'], { dropout: 0 });
  assert.equal(model.headName, 'classifier');
  fill(model.head.weight.data, 5);
  const out = model.forward(batch, Int32Array.from([0, 1, 1]));
  assert.deepEqual(out.logits.shape, [3, 2]);
  const expected = linearRef(pooled, 3, 64, model.head.weight.data, model.head.bias!.data, 2);
  assert.ok(relError(out.logits.data, expected) <= TOL);
  out.loss!.backward();
  const g = bert.bert.embeddings.word_embeddings.weight.grad;
  assert.ok(g && g.data.some((v) => v !== 0), 'no gradient in the embeddings');
  assert.equal(taskConfigJson(model).problem_type, 'single_label_classification');
});

test('GPT2ForSequenceClassification: score (no bias) on the last non-padding token; mean pooling', () => {
  const config = JSON.parse(readFileSync(join(fixtures, 'gpt2-tiny', 'config.json'), 'utf8')) as GPTConfig;
  const body = new GPT2Model(config, new Rng(0));
  const model = new SequenceClassifier(body, ['a', 'b', 'c'], { seed: 1 });
  assert.deepEqual(model.namedParameters().at(-1)!.map((v, i) => (i === 0 ? v : (v as { shape: number[] }).shape)), ['score.weight', [3, config.n_embd]]);
  assert.equal(model.head.bias, null);
  const [b, t, c] = [2, 6, config.n_embd];
  const ids = Int32Array.from([5, 9, 13, 2, 7, 11, 4, 8, 15, 16, 0, 0]);
  const attentionMask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  const x = { inputIds: ids, batch: b, length: t, attentionMask };
  const hidden = noGrad(() => body.forward(ids, b, t)).data;
  const rowAt = (r: number, pos: number) => hidden.slice((r * t + pos) * c, (r * t + pos + 1) * c);
  const last = new Float64Array([...rowAt(0, 5), ...rowAt(1, 3)]); // row 1 ends at position 3
  const logits = noGrad(() => model.forward(x)).logits;
  assert.ok(relError(logits.data, linearRef(last, 2, c, model.head.weight.data, null, 3)) <= TOL);
  const mean = new SequenceClassifier(body, ['a', 'b', 'c'], { pooling: 'mean', seed: 1 });
  const avg = new Float64Array(2 * c);
  for (let r = 0; r < 2; r++) for (let p = 0; p < (r ? 4 : 6); p++) rowAt(r, p).forEach((v, i) => (avg[r * c + i]! += v / (r ? 4 : 6)));
  assert.ok(relError(noGrad(() => mean.forward(x)).logits.data, linearRef(avg, 2, c, mean.head.weight.data, null, 3)) <= TOL);
  assert.throws(() => new SequenceClassifier(body, ['a'], { pooling: 'pooler' }), /needs a BERT backbone/);
  const cfg = taskConfigJson(model);
  assert.deepEqual([cfg.architectures, cfg.primer_pooling, cfg.model_type], [['GPT2ForSequenceClassification'], 'last', 'gpt2']);
});

/** A vocabulary in which "unbelievable" and "playing" split into several WordPieces. */
const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'un', '##bel', '##ie', '##vable', 'play', '##ing', '.', 'is', 'dog', 'sat', 'on', 'mat', 'ran', 'to', 'park', 'a', 'bird', 'sang', 'in', 'tree', 'where', 'did', 'run', '?', ','];
const tokenizer = new WordPieceTokenizer({ vocab: VOCAB });

test('token classification labels the first subword of each word and -100 the rest (HF run_ner)', () => {
  const words = ['The', 'unbelievable', 'cat', 'is', 'playing', '.'];
  const { encoding, wordIds } = encodeWords(tokenizer, words);
  assert.deepEqual(encoding.tokens, ['[CLS]', 'the', 'un', '##bel', '##ie', '##vable', 'cat', 'is', 'play', '##ing', '.', '[SEP]']);
  assert.deepEqual(wordIds, [null, 0, 1, 1, 1, 1, 2, 3, 4, 4, 5, null]);
  const tags = [0, 3, 1, 2, 2, 4]; // DET ADJ NOUN VERB VERB X
  assert.deepEqual([...alignLabels(wordIds, tags)], [-100, 0, 3, -100, -100, -100, 1, 2, 2, -100, 4, -100]);
  // A batch of two sentences (padded), through the bert-tiny body.
  const { bert } = bertFixture();
  const model = new TokenClassifier(bert.bert, ['DET', 'NOUN', 'VERB', 'ADJ', 'X']).eval();
  const batch = encodeTagged(tokenizer, [{ tokens: words, tagIds: tags }, { tokens: ['the', 'dog', 'ran'], tagIds: [0, 1, 2] }], 32);
  assert.deepEqual([batch.batch, batch.length], [2, 12]);
  assert.deepEqual([...batch.labels.subarray(12)], [-100, 0, 1, 2, -100, -100, -100, -100, -100, -100, -100, -100]);
  assert.deepEqual([...batch.attentionMask.subarray(12)], [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  const logits = noGrad(() => model.forward(batch)).logits;
  assert.deepEqual(logits.shape, [2, 12, 5]);
  const argmax = Array.from({ length: 24 }, (_, i) => {
    const row = logits.data.subarray(i * 5, i * 5 + 5);
    return row.indexOf(Math.max(...row));
  });
  const perWord = wordPredictions(batch.wordIds[0]!, argmax.slice(0, 12), words.length);
  assert.deepEqual([...perWord], [1, 2, 6, 7, 8, 10].map((k) => argmax[k]!), 'each word reads its first subword');
  // Truncation drops the last words' labels; their predictions are -1 (scored as wrong, not skipped).
  const cut = encodeWords(tokenizer, words, 7);
  assert.deepEqual(cut.wordIds, [null, 0, 1, 1, 1, 1, null]);
  assert.deepEqual([...wordPredictions(cut.wordIds, [9, 9, 9, 9, 9, 9, 9], words.length)], [9, 9, -1, -1, -1, -1]);
  // Pairs: token types 0 / 1.
  const pair = encodeTexts(tokenizer, [{ text: 'the cat', textPair: 'a dog' }], 16);
  assert.deepEqual([...pair.tokenTypeIds], [0, 0, 0, 0, 1, 1, 1]);
});
