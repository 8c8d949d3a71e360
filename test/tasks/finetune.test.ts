/** Fine-tuning through the shared trainer learns easy synthetic tasks on the bert-tiny body. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { QuestionAnswering, SequenceClassifier, TokenClassifier } from '../../src/models/heads.ts';
import { finetune, evaluateTask, evaluateQA, freezeBackbone, predictTags } from '../../src/tasks/finetune.ts';
import type { QAExample, TextExample, TokenExample } from '../../src/tasks/data.ts';
import type { ClassificationReport } from '../../src/tasks/metrics.ts';
import { Rng } from '../../src/util/random.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-finetune-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function bertBody() {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'bert-tiny');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as BertConfig;
  const weights = readSafetensors(join(dir, 'model.safetensors'));
  const bert = new Bert(config);
  bert.loadStateDict(new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const)));
  return bert.bert;
}

const NEUTRAL = ['the', 'film', 'food', 'was', 'really', 'quite', 'very', 'and', 'it', 'is'];
const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'good', 'great', 'bad', 'awful', 'how', '?', ...NEUTRAL];
const tokenizer = new WordPieceTokenizer({ vocab: VOCAB });

/** Sentences of neutral words with one sentiment word somewhere. */
function sentiment(n: number, seed: number): TextExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const words = Array.from({ length: 3 + rng.int(4) }, () => NEUTRAL[rng.int(NEUTRAL.length)]!);
    const pos = rng.next() < 0.5;
    words.splice(rng.int(words.length + 1), 0, (pos ? ['good', 'great'] : ['bad', 'awful'])[rng.int(2)]!);
    return { text: words.join(' '), label: pos ? 'pos' : 'neg' };
  });
}

test('sequence classification: fine-tuning reaches high validation accuracy and keeps the best epoch', async () => {
  const model = new SequenceClassifier(bertBody(), ['neg', 'pos'], { seed: 1 });
  const val = sentiment(40, 2);
  const before = evaluateTask(model, tokenizer, val).accuracy;
  const epochs: number[] = [];
  const r = await finetune({
    model, tokenizer, train: sentiment(64, 1), val, runDir: join(root, 'seq'), epochs: 8, batchSize: 16, lr: 5e-3, seed: 3,
    onEpoch: (e) => epochs.push((e.val as ClassificationReport).accuracy),
  });
  assert.equal(r.history.length, 8);
  assert.ok(r.bestMetric! >= 0.95, `best val accuracy ${r.bestMetric} (before: ${before}, per epoch ${epochs.join(', ')})`);
  assert.equal(r.bestMetric, Math.max(...epochs));
  assert.equal(evaluateTask(model, tokenizer, val).accuracy, r.bestMetric, 'the best epoch\'s weights are restored');
  assert.ok(existsSync(join(root, 'seq', 'metrics.jsonl')));
  assert.ok(r.history[7]!.trainLoss < 0.3, `final train loss ${r.history[7]!.trainLoss}`);
});

test('token classification with frozen embeddings and early stopping', async () => {
  const tagOf = (w: string) => (['good', 'great', 'bad', 'awful'].includes(w) ? 'ADJ' : ['the', 'it'].includes(w) ? 'DET' : 'OTHER');
  const tagged = (xs: TextExample[]): TokenExample[] => xs.map((x) => ({ tokens: x.text.split(' '), tags: x.text.split(' ').map(tagOf) }));
  const body = bertBody();
  const model = new TokenClassifier(body, ['ADJ', 'DET', 'OTHER'], { seed: 2 });
  const frozen = freezeBackbone(model, { embeddings: true, layers: 1 });
  assert.ok(frozen > 0);
  const embeddingsBefore = Float32Array.from(body.embeddings.word_embeddings.weight.data);
  const layer1Before = Float32Array.from(body.layers[1]!.intermediate.weight.data);
  const val = tagged(sentiment(20, 5));
  const r = await finetune({ model, tokenizer, train: tagged(sentiment(48, 4)), val, runDir: join(root, 'tok'), epochs: 6, batchSize: 16, lr: 3e-3, patience: 1, seed: 1 });
  assert.ok(r.bestMetric! >= 0.95, `best token accuracy ${r.bestMetric}`);
  assert.ok(r.history.length <= 6);
  if (r.stoppedEarly) assert.ok(r.history.length - r.bestEpoch >= 1);
  assert.deepEqual(body.embeddings.word_embeddings.weight.data, embeddingsBefore, 'frozen embeddings did not move');
  assert.notDeepEqual(body.layers[1]!.intermediate.weight.data, layer1Before, 'the unfrozen layer trained');
  const [tags] = predictTags(model, tokenizer, [['the', 'film', 'was', 'great']]);
  assert.deepEqual([...tags!].map((t) => model.labels.label(t)), ['DET', 'OTHER', 'OTHER', 'ADJ']);
});

test('extractive QA: windows with a stride during training, SQuAD F1 on validation', async () => {
  // The answer is the opinion word; contexts are longer than one window, so the stride matters.
  const qa = (n: number, seed: number): QAExample[] => sentiment(n, seed).map((x, i) => {
    const context = `${x.text} and the food was very ${x.text.split(' ').find((w) => ['good', 'great', 'bad', 'awful'].includes(w))} really`;
    const answer = context.split(' ').find((w) => ['good', 'great', 'bad', 'awful'].includes(w))!;
    return { id: `q${seed}-${i}`, context, question: 'how ?', answers: [{ text: answer, start: context.indexOf(answer) }] };
  });
  const model = new QuestionAnswering(bertBody(), { seed: 5 });
  const val = qa(20, 7);
  const before = evaluateQA(model, tokenizer, val, { maxLength: 12, stride: 3, maxAnswerLength: 3 });
  const r = await finetune({ model, tokenizer, train: qa(48, 6), val, runDir: join(root, 'qa'), epochs: 5, batchSize: 16, lr: 5e-3, maxLength: 12, stride: 3, seed: 2 });
  const after = evaluateQA(model, tokenizer, val, { maxLength: 12, stride: 3, maxAnswerLength: 3 });
  assert.ok(after.f1 >= 0.9 && after.exactMatch >= 0.9, `F1 ${before.f1} → ${after.f1}, EM ${after.exactMatch}`);
  assert.ok(after.f1 > before.f1);
  assert.equal(r.bestMetric, Math.max(...r.history.map((h) => (h.val as { f1: number }).f1)));
  assert.equal(after.predictions.get(val[0]!.id), val[0]!.answers[0]!.text);
});

test('stop ends training between two steps; without validation data the last finished epoch is restored', async () => {
  const model = new SequenceClassifier(bertBody(), ['neg', 'pos'], { seed: 1 });
  const stop = new AbortController();
  // 32 examples in batches of 16: two steps per epoch, so the fifth forward pass is the first step of epoch 3.
  let forwards = 0;
  const forward = model.forward.bind(model);
  model.forward = ((...a: Parameters<typeof forward>) => {
    if (++forwards === 5) stop.abort();
    return forward(...a);
  }) as typeof model.forward;
  let epoch2: Float32Array[] = [];
  const runDir = join(root, 'stop');
  const r = await finetune({
    model, tokenizer, train: sentiment(32, 1), runDir, epochs: 10, batchSize: 16, lr: 5e-3, seed: 3, stop: stop.signal,
    onEpoch: (e) => { if (e.epoch === 2) epoch2 = model.parameters().map((p) => Float32Array.from(p.data)); },
  });
  assert.equal(r.interrupted, true);
  assert.equal(forwards, 5, 'the step under way finished, no other began');
  assert.deepEqual(r.history.map((h) => h.epoch), [1, 2]);
  assert.equal(r.bestEpoch, 2);
  assert.equal(r.bestMetric, null);
  const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step as number);
  assert.equal(Math.max(...steps), 5, 'epoch 3 had taken a step before the weights were rolled back');
  model.parameters().forEach((p, i) => assert.deepEqual(p.data, epoch2[i], 'the weights are those at the end of epoch 2'));
});
