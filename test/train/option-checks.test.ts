// The library's option objects as a consumer passes them (through the public index, as plain
// objects a .mjs caller or an `as` cast could build): misspelt keys and values the CLI would refuse
// must fail at once, naming the option, before any file is written; valid options still train.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  pretrain, pretrainBert, finetuneTask, finetune, generateText, embedTexts, trainTokenizer, GPT, GPT2Model,
  SequenceClassifier, LabelMap, gptPreset, type PretrainOptions, type BertPretrainOptions, type TaskFinetuneOptions,
} from '../../src/index.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-option-checks-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const corpus = join(root, 'corpus.txt');
writeFileSync(corpus, 'The cat sat on the mat. The dog sat on the log.\n\nA bird sang in the tree.\n'.repeat(100));
const quiet = { log: () => {}, progress: false as const };

/** Calls fn with options as an untyped caller would, and returns the message of the error it throws synchronously or as a rejection. */
async function refusal(fn: () => unknown): Promise<{ type: string; message: string }> {
  try {
    await fn();
  } catch (e) {
    return { type: (e as Error).constructor.name, message: (e as Error).message };
  }
  return { type: 'none', message: 'accepted' };
}

test('pretrain refuses misspelt keys and out-of-range values by name, writing nothing', async () => {
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ step: 3 }, 'TypeError', 'pretrain: unknown option "step" (did you mean "steps"?)'],
    [{ learningRate: 1e-3 }, 'TypeError', 'pretrain: unknown option "learningRate"'],
    [{ lr: -1 }, 'RangeError', 'pretrain: lr must be a number ≥ 0, got -1'],
    [{ batchSize: 2.5 }, 'RangeError', 'pretrain: batchSize must be an integer ≥ 1, got 2.5'],
    [{ batchSize: 0 }, 'RangeError', 'pretrain: batchSize must be an integer ≥ 1, got 0'],
    [{ warmupSteps: -1 }, 'RangeError', 'pretrain: warmupSteps must be an integer ≥ 0, got -1'],
    [{ decay: 'cosin' }, 'RangeError', 'pretrain: decay must be one of "cosine", "linear", "constant", got "cosin"'],
    // 0 would scale every update to nothing (the CLI's "--grad-clip 0 = off" is Infinity here).
    [{ gradClip: 0 }, 'RangeError', 'pretrain: gradClip must be a number > 0, got 0'],
    [{ corpus }, 'TypeError', `pretrain: corpus must be an array of strings, got ${JSON.stringify(corpus)}`],
    [{ seed: '7' }, 'TypeError', 'pretrain: seed must be a number, got "7"'],
    [{ arch: 'gtp' }, 'RangeError', 'pretrain: arch must be one of "gpt", "llama", got "gtp"'],
    [{ keepCheckpoints: 0 }, 'RangeError', 'pretrain: keepCheckpoints must be an integer ≥ 1, got 0'],
    [{ betas: [2, 1] }, 'RangeError', 'pretrain: betas must be two numbers in [0, 1), got [2,1]'],
  ];
  for (const [bad, type, message] of cases) {
    const out = join(root, `gpt-${Object.keys(bad)[0]}`);
    const opts = { corpus: [corpus], out, vocabSize: 300, layers: 1, dims: 16, heads: 2, blockSize: 8, batchSize: 2, steps: 1, samplePrompts: [], ...quiet, ...bad };
    assert.deepEqual(await refusal(() => pretrain(opts as PretrainOptions)), { type, message }, JSON.stringify(bad));
    assert.equal(existsSync(out), false, `${JSON.stringify(bad)}: the run directory was created`);
  }
});

test('pretrain with valid options and keys set to undefined still trains', async () => {
  const r = await pretrain({
    corpus: [corpus], out: join(root, 'gpt-ok'), vocabSize: 300, layers: 1, dims: 16, heads: 2, blockSize: 8, batchSize: 2, steps: 2,
    warmupSteps: 1, evalEvery: 2, evalBatches: 1, checkpointEvery: 2, lr: 0, tokenizer: undefined, samplePrompts: [], ...quiet,
  });
  assert.equal(r.training.step, 2);
  assert.equal(r.config.lr, 0);
});

test('pretrainBert refuses GPT\'s blockSize, misspelt keys and bad values by name', async () => {
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ blockSize: 32 }, 'TypeError', 'pretrainBert: unknown option "blockSize" (BERT\'s sequence length is maxSeqLength)'],
    [{ maskProb: 0.15 }, 'TypeError', 'pretrainBert: unknown option "maskProb" (did you mean "maskProbability"?)'],
    [{ batchSize: 2.5 }, 'RangeError', 'pretrainBert: batchSize must be an integer ≥ 1, got 2.5'],
    [{ documents: 'lines' }, 'RangeError', 'pretrainBert: documents must be one of "file", "blank-line", got "lines"'],
    [{ lowercase: 'yes' }, 'TypeError', 'pretrainBert: lowercase must be a boolean, got "yes"'],
    [{ workers: -1 }, 'RangeError', 'pretrainBert: workers must be an integer ≥ 0, got -1'],
  ];
  for (const [bad, type, message] of cases) {
    const out = join(root, `bert-${Object.keys(bad)[0]}`);
    const opts = { corpus: [corpus], out, vocabSize: 200, layers: 1, dims: 16, heads: 2, maxSeqLength: 16, batchSize: 2, steps: 1, documents: 'blank-line', ...quiet, ...bad };
    assert.deepEqual(await refusal(() => pretrainBert(opts as BertPretrainOptions)), { type, message }, JSON.stringify(bad));
    assert.equal(existsSync(out), false, `${JSON.stringify(bad)}: the run directory was created`);
  }
});

test('finetuneTask refuses misspelt keys, missing paths and bad values before reading the model', async () => {
  const data = join(root, 'reviews.csv');
  writeFileSync(data, 'text,label\n' + Array.from({ length: 20 }, (_, i) => (i % 2 ? `great film ${i},pos` : `awful film ${i},neg`)).join('\n'));
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ epoch: 1 }, 'TypeError', 'finetuneTask: unknown option "epoch" (did you mean "epochs"?)'],
    [{ out: undefined }, 'TypeError', 'finetuneTask: out (a directory path) is required, got undefined'],
    [{ batchSize: 2.5 }, 'RangeError', 'finetuneTask: batchSize must be an integer ≥ 1, got 2.5'],
    [{ lr: -1e-4 }, 'RangeError', 'finetuneTask: lr must be a number ≥ 0, got -0.0001'],
    [{ patience: -1 }, 'RangeError', 'finetuneTask: patience must be an integer ≥ 1, got -1'],
    [{ freezeLayers: -1 }, 'RangeError', 'finetuneTask: freezeLayers must be an integer ≥ 0, got -1'],
    [{ pooling: 'max' }, 'RangeError', 'finetuneTask: pooling must be one of "pooler", "cls", "last", "mean", got "max"'],
  ];
  for (const [bad, type, message] of cases) {
    // The model directory does not exist: only a check made before it is read can name the option.
    const opts = { model: join(root, 'no-model'), data, out: join(root, 'cls'), epochs: 1, log: () => {}, handleSignals: false, ...bad };
    assert.deepEqual(await refusal(() => finetuneTask(opts as TaskFinetuneOptions)), { type, message }, JSON.stringify(bad));
  }
});

const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 280, texts: ['the cat sat on the mat and the dog sat on the log'] });
const gpt = new GPT(gptPreset('tiny', { vocabSize: tokenizer.vocabSize, layers: 1, dims: 16, heads: 2 }), 1);

test('finetune refuses a fractional batch size and negative epochs by name', async () => {
  const model = new SequenceClassifier(gpt.transformer as GPT2Model, LabelMap.fromLabels(['a', 'b']), { seed: 1 });
  const train = [{ text: 'the cat', label: 'a' }, { text: 'the dog', label: 'b' }];
  for (const [bad, message] of [[{ batchSize: 1.5 }, 'finetune: batchSize must be an integer ≥ 1, got 1.5'], [{ epochs: -2 }, 'finetune: epochs must be an integer ≥ 1, got -2']] as const) {
    assert.deepEqual(await refusal(() => finetune({ model, tokenizer, train, runDir: join(root, 'ft'), ...bad })), { type: 'RangeError', message });
  }
});

test('embedTexts refuses an unknown pooling instead of pooling the mean', () => {
  const mean = embedTexts(gpt.transformer, tokenizer, ['the cat sat'], { pooling: 'mean' });
  assert.equal(mean.dim, 16);
  assert.throws(() => embedTexts(gpt.transformer, tokenizer, ['the cat sat'], { pooling: 'max' as 'mean' }),
    { name: 'RangeError', message: 'pooling must be \'mean\', \'last\', \'cls\' or \'pooler\', got "max"' });
});

test('generateText refuses a single stop string (the OpenAI form) with a TypeError naming stop', () => {
  assert.equal(typeof generateText(gpt, tokenizer, 'the', { maxTokens: 2, temperature: 0, stop: ['\n'] }), 'string');
  assert.throws(() => generateText(gpt, tokenizer, 'the', { maxTokens: 2, stop: '\n' as unknown as string[] }),
    { name: 'TypeError', message: 'generate: stop must be an array of strings, got "\\n"' });
});
