/** Worker-thread encoding and the `primer tokenizer` commands. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeLongText, encodeParallel, encodeToIds } from '../../src/tokenizers/parallel.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { decodeCommand, encodeCommand } from '../../src/cli/tokenizer.ts';
import { TemplateProcessing } from '../../src/tokenizers/postprocess.ts';
import { BpeTokenizer } from '../../src/tokenizers/bpe.ts';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { TORTURE, gutenbergBooks, loadGpt2, repoRoot } from './bpe-fixtures.ts';

test('encodeParallel on 2 workers: same ids as one thread, input order, progress to the end', async () => {
  const gpt2 = loadGpt2();
  const lines = gutenbergBooks()[1].text.slice(0, 300_000).split('\n').concat(TORTURE);
  const progress: number[] = [];
  const ids = await encodeParallel(gpt2, lines, { threads: 2, batchChars: 20_000, onProgress: (done, total) => (assert.equal(total, lines.length), progress.push(done)) });
  assert.equal(ids.length, lines.length);
  lines.forEach((line, i) => assert.deepEqual(ids[i], gpt2.encodeIds(line), `line ${i}`));
  assert.ok(progress.length > 5);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
  assert.equal(progress.at(-1), lines.length);

  const text = gutenbergBooks()[2].text.slice(0, 400_000);
  assert.deepEqual(await encodeLongText(gpt2, text, { threads: 2, pieceChars: 50_000 }), gpt2.encodeIds(text));
});

test('encodeParallel works for any tokenizer.json model (WordPiece with [CLS] … [SEP])', async () => {
  const texts = gutenbergBooks()[3].text.slice(0, 60_000).split('\n');
  const wordpiece = trainTokenizer({ type: 'wordpiece', vocabSize: 800, texts });
  const ids = await encodeParallel(wordpiece, texts, { threads: 2, batchChars: 10_000 });
  texts.forEach((t, i) => assert.deepEqual(Array.from(ids[i]), wordpiece.encode(t).ids, `line ${i}`));
  assert.equal(ids[0][0], wordpiece.tokenToId('[CLS]'));
});

test('encodeToIds adds the post-processor specials when asked', () => {
  const tok = trainBpe(['hello world hello'], { vocabSize: 300, specialTokens: ['<s>', '</s>'] });
  const withTemplate = new BpeTokenizer(tok.model, { added: tok.added, postProcessor: TemplateProcessing.fromStrings('<s> $A </s>', '<s> $A </s> $B:1 </s>:1', [['<s>', 0], ['</s>', 1]]) });
  const ids = Array.from(encodeToIds(withTemplate, 'hello'));
  assert.deepEqual([ids[0], ids.at(-1)], [0, 1]);
  assert.deepEqual(Array.from(encodeToIds(withTemplate, 'hello', false)), ids.slice(1, -1));
});

test('encode/decode commands: whole input, --lines, --pair, JSON lines and arrays of arrays', async () => {
  const gpt2 = loadGpt2();
  const input = 'Hello world\nsecond line 😀\n';
  const whole = await encodeCommand(gpt2, input);
  assert.equal(whole, JSON.stringify(Array.from(gpt2.encodeIds(input))) + '\n');
  assert.equal(decodeCommand(gpt2, whole), input);
  const lines = await encodeCommand(gpt2, input, { lines: true });
  assert.equal(lines, '[15496,995]\n[12227,1627,30325,222]\n');
  assert.equal(decodeCommand(gpt2, lines), 'Hello world\nsecond line 😀\n');
  assert.equal(decodeCommand(gpt2, '[[15496],[995]]'), 'Hello\n world\n');
  assert.equal(await encodeCommand(gpt2, 'a\tb\n', { pair: true }), '[64,65]\n');
  await assert.rejects(encodeCommand(gpt2, 'no tab\n', { pair: true }), /line 1 has no tab/);
  assert.throws(() => decodeCommand(gpt2, '[1, -2]'), /must be an array of non-negative integer ids/);
  assert.throws(() => decodeCommand(gpt2, '[99999999]'), /id 99999999 is not in the vocabulary/);
});

test('primer tokenizer train | encode | decode from the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-cli-'));
  try {
    const corpus = join(dir, 'corpus.txt');
    writeFileSync(corpus, gutenbergBooks()[0].text.slice(0, 50_000));
    const run = (args: string[], input?: string) => spawnSync(process.execPath, [join(repoRoot, 'bin', 'primer.js'), 'tokenizer', ...args], { input, encoding: 'utf8' });
    const train = run(['train', '--type', 'bpe', '--vocab-size', '500', '--input', corpus, '--out', join(dir, 'tok'), '--special-tokens', '<|endoftext|>', '<|pad|>']);
    assert.equal(train.status, 0, train.stderr);
    const text = 'Emma Woodhouse, handsome<|endoftext|> 😀\n';
    const enc = run(['encode', '--tokenizer', join(dir, 'tok')], text);
    assert.equal(enc.status, 0, enc.stderr);
    const ids = JSON.parse(enc.stdout) as number[];
    assert.ok(ids.includes(0) && ids.length > 5);
    const dec = run(['decode', '--tokenizer', join(dir, 'tok', 'tokenizer.json')], enc.stdout);
    assert.equal(dec.stdout, text);
    const skip = run(['decode', '--tokenizer', join(dir, 'tok'), '--skip-special-tokens'], enc.stdout);
    assert.equal(skip.stdout, 'Emma Woodhouse, handsome 😀\n');
    const bad = run(['encode', '--tokenizer', join(dir, 'nope')], 'x');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
