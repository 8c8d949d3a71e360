/**
 * Defects 5, 7 and 8 of issue 19: a flag that destroyed data, raw or misleading messages, and
 * training that ran out of memory after seconds instead of being refused up front.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { refuseOutputOverInput } from '../../src/io/paths.ts';
import { FileWriteError, writeFileAtomic } from '../../src/io/atomic.ts';
import { PrimerError } from '../../src/io/errors.ts';
import { CorpusError, readCorpus } from '../../src/data/corpus.ts';
import { action } from '../../src/cli/options.ts';
import { testSplitName } from '../../src/tasks/task-run.ts';
import { fillMask } from '../../src/infer/fill-mask.ts';
import { maxTokensWarning } from '../../src/infer/generate.ts';
import { loadModelDir } from '../../src/models/load.ts';
import type { Bert } from '../../src/models/bert.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { pretrain } from '../../src/train/pretrain.ts';
import { checkTrainingMemory, estimateTrainingMemory, RUNTIME_BYTES } from '../../src/train/trainer.ts';
import { tempDir } from '../train/helpers.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = resolve(root, '../shared/fixtures');

async function drain(paths: string[]): Promise<number> {
  let n = 0;
  for await (const c of readCorpus(paths, { warn: () => {} })) n += c.text.length;
  return n;
}

test('issue 19 defect 5: --out may not be an input directory or contain one', () => {
  const dir = tempDir('out-in');
  const model = join(dir, 'model');
  mkdirSync(model);
  symlinkSync(model, join(dir, 'link'));
  const refused = (out: string, re: RegExp) => assert.throws(() => refuseOutputOverInput(out, { '--model': model }),
    (e: unknown) => e instanceof PrimerError && e.code === 'OUT_IS_INPUT' && re.test(e.message));
  refused(model, /is the --model directory: writing there would overwrite the input; choose another --out/);
  refused(`${model}/`, /is the --model directory/);
  refused(join(dir, 'link'), /is the --model directory/);
  refused(join(model, '..', 'model'), /is the --model directory/);
  refused(dir, /contains the --model path/);
  refuseOutputOverInput(join(model, 'finetuned'), { '--model': model }); // beside the input's files: allowed
  refuseOutputOverInput(join(dir, 'new', 'deeper'), { '--model': model, '--tokenizer': undefined });
});

test('issue 19 defect 5: `primer finetune --out` equal to --model is refused and the model is untouched', () => {
  const dir = tempDir('ft-same');
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixtures, 'gpt2-tiny', f), join(dir, f));
  const before = readFileSync(join(dir, 'model.safetensors'));
  const r = spawnSync(process.execPath, [join(root, 'bin', 'primer.js'), 'finetune', '--model', dir, '--task', 'sentiment', '--out', dir], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^primer: error: --out .* is the --model directory: writing there would overwrite the input/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(before));
});

test('issue 19 defect 7: a corrupt or truncated .gz corpus is a CorpusError naming the file', async () => {
  const dir = tempDir('gz');
  const text = 'the cat sat on the mat. '.repeat(4000);
  writeFileSync(join(dir, 'good.txt.gz'), gzipSync(text));
  assert.equal(await drain([join(dir, 'good.txt.gz')]), text.length);
  const gz = gzipSync(text);
  writeFileSync(join(dir, 'cut.txt.gz'), gz.subarray(0, gz.length >> 1));
  writeFileSync(join(dir, 'garbage.jsonl.gz'), Buffer.from('this is not gzip at all'));
  const flipped = Buffer.from(gz);
  flipped[40] ^= 0xff;
  writeFileSync(join(dir, 'flipped.txt.gz'), flipped);
  for (const name of ['cut.txt.gz', 'garbage.jsonl.gz', 'flipped.txt.gz']) {
    const path = join(dir, name);
    await assert.rejects(drain([path]), (e: unknown) => e instanceof CorpusError
      && e.message.startsWith(`${path}: is not a valid gzip file or is truncated (`), name);
  }
});

test('issue 19 defect 7: CLI errors that start with a path or are PrimerErrors print one line, no stack', async () => {
  const printed: string[] = [];
  const original = console.error;
  console.error = (m: string) => printed.push(m);
  try {
    await action(() => { throw new Error('/runs/x already holds a training run; continue it with --resume /runs/x'); })();
    await action(() => { throw new PrimerError('RUN_EXISTS', 'runs/x already holds a training run'); })();
    await action(() => { throw new TypeError('undefined is not a function'); })();
  } finally {
    console.error = original;
    process.exitCode = 0;
  }
  assert.equal(printed[0], 'primer: error: /runs/x already holds a training run; continue it with --resume /runs/x');
  assert.equal(printed[1], 'primer: error: runs/x already holds a training run');
  assert.match(printed[2]!, /^primer: error: TypeError: undefined is not a function\n\s+at /, 'a bug keeps its stack trace');
});

test('issue 19 defect 7: ENOSPC while writing names the file and leaves the old one intact', () => {
  const dir = tempDir('enospc');
  const path = join(dir, 'model.safetensors');
  writeFileSync(path, 'old');
  const realWrite = fs.writeSync;
  fs.writeSync = (() => {
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  }) as typeof fs.writeSync;
  syncBuiltinESMExports();
  try {
    assert.throws(() => writeFileAtomic(path, 'new'), (e: unknown) => e instanceof FileWriteError && e.code === 'ENOSPC'
      && e.message.startsWith(`${path}: could not be written (ENOSPC: no space left on device, write); free disk space`));
  } finally {
    fs.writeSync = realWrite;
    syncBuiltinESMExports();
  }
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir), ['model.safetensors'], 'no temp file left');
});

test('issue 19 defect 7: fill-mask tells a [MASK] cut off by the length limit from a missing one', () => {
  const { model } = loadModelDir(join(fixtures, 'bert-tiny'));
  const tokenizer = new WordPieceTokenizer({ vocab: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'b'] });
  assert.equal(fillMask(model as Bert, tokenizer, 'a b [MASK] a')[0]!.position, 3);
  assert.throws(() => fillMask(model as Bert, tokenizer, `${'a '.repeat(100)}[MASK]`),
    /fill-mask: the \[MASK\] token is past the model's 64-token limit \(the text is 103 tokens long\); shorten the text before the mask/);
  assert.throws(() => fillMask(model as Bert, tokenizer, 'a b a'), /fill-mask: the text has no \[MASK\] token/);
});

test('issue 19 defect 7: finetune\'s test heading names the test data, not the training file', () => {
  assert.equal(testSplitName({ data: 'train.csv' }), '10% of train.csv held out from training');
  assert.equal(testSplitName({ data: 'train.csv', testData: 'test.csv' }), 'test.csv');
  assert.equal(testSplitName({ task: 'sentiment' }), 'sentiment, test split');
});

test('issue 19 defect 8: the memory estimate is params × 16 bytes + activations × batch × seq, and advises --grad-accum', () => {
  const o = { parameters: 1_000_000, activationFloatsPerToken: 1000, batchSize: 64, seqLength: 128, gradAccum: 2 };
  const e = estimateTrainingMemory(o);
  assert.deepEqual(e, { stateBytes: 16e6, activationBytes: 4 * 1000 * 64 * 128, totalBytes: 16e6 + 32_768_000 + RUNTIME_BYTES });
  assert.deepEqual(checkTrainingMemory(o, e.totalBytes), e);
  // Room for 20 sequences of activations: batch 20, accumulate 7 micro-batches for the 128 sequences a step used.
  const available = 16e6 + RUNTIME_BYTES + 20 * 4 * 1000 * 128 + 1000;
  assert.throws(() => checkTrainingMemory(o, available), (err: unknown) => err instanceof PrimerError && err.code === 'OUT_OF_MEMORY'
    && /use --batch-size 20 --grad-accum 7 \(the same 128 sequences per step\)/.test(err.message));
  assert.throws(() => checkTrainingMemory({ ...o, parameters: 1e12 }, 8 * 2 ** 30), /the model alone does not fit/);
});

test('issue 19 defects 7 and 8: pretrain refuses --batch-size 100000 and --dims 100000 up front, with advice', async () => {
  const corpus = join(tempDir('mem-corpus'), 'c.txt');
  writeFileSync(corpus, 'the cat sat on the mat. '.repeat(200));
  const logs: string[] = [];
  const rss0 = process.memoryUsage().rss;
  for (const [flags, re] of [
    [{ batchSize: 100_000 }, /training would need about .* GB .* activations for a batch of 100000 × 128 tokens .* use --batch-size \d+ --grad-accum \d+/],
    [{ dims: 100_000 }, /training would need about .* the model alone does not fit: choose a smaller preset or fewer --layers \/ --dims/],
  ] as const) {
    await assert.rejects(pretrain({ corpus: [corpus], preset: 'tiny', vocabSize: 300, steps: 2, out: join(tempDir('mem-run'), 'run'), log: (m) => logs.push(m), progress: false, ...flags }),
      (e: unknown) => e instanceof PrimerError && e.code === 'OUT_OF_MEMORY' && re.test(e.message));
  }
  assert.deepEqual(logs, [], 'refused before the tokenizer is trained');
  assert.ok(process.memoryUsage().rss - rss0 < 200 * 2 ** 20);
});

test('issue 19 defect 8: generate warns when --max-tokens is beyond 16 context windows', () => {
  assert.equal(maxTokensWarning(2048, 128), null);
  assert.match(maxTokensWarning(2049, 128)!, /--max-tokens 2049 is more than 16 × the model's context of 128 tokens/);
  assert.match(maxTokensWarning(1e9, 1024)!, /the window slides/);
});

test('a truncated model.safetensors is named once in the error, by load and by import', () => {
  const dir = tempDir('truncated-weights');
  copyFileSync(join(fixtures, 'gpt2-tiny', 'config.json'), join(dir, 'config.json'));
  writeFileSync(join(dir, 'model.safetensors'), '');
  const weights = join(dir, 'model.safetensors');
  assert.throws(() => loadModelDir(dir), (e: Error) => e.message === `${weights}: file is 0 bytes, shorter than the 8-byte header length`);
  const imported = spawnSync(process.execPath, [join(root, 'bin', 'primer.js'), 'import', dir, '--out', join(dir, 'out')], { encoding: 'utf8' });
  assert.equal(imported.status, 1);
  assert.equal(imported.stderr.trim(), `primer: error: ${weights}: file is 0 bytes, shorter than the 8-byte header length [TRUNCATED]`);
});
