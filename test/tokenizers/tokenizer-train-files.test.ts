/** `primer tokenizer train` reads its --input as `data prepare` does, and names the path in every input error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { NoTextError, trainTokenizerOnCorpus } from '../../src/data/tokenizer.ts';
import { checkTrainPaths } from '../../src/cli/tokenizer.ts';
import { GUTENBERG_DIR, repoRoot } from './bpe-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-tok-train-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const text = readFileSync(join(GUTENBERG_DIR, 'austen-emma.txt'), 'utf8').slice(0, 40_000);
const plain = join(dir, 'corpus.txt');
writeFileSync(plain, text);
writeFileSync(join(dir, 'corpus.txt.gz'), gzipSync(text));
// 0xE9 is Latin-1 é; 0xE8 0x73 is a truncated 3-byte sequence followed by "s": two bad sequences.
const latin1 = join(dir, 'latin1.txt');
writeFileSync(latin1, Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' au lait tr'), Buffer.from([0xe8, 0x73]), Buffer.from(' bon\n')]));
const empty = join(dir, 'empty.txt');
writeFileSync(empty, '');
writeFileSync(join(dir, 'blank.txt'), ' \n\t\n');

const train = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin', 'primer.js'), 'tokenizer', 'train', ...args], { encoding: 'utf8' });

test('tokenizer train: a .gz input is decompressed (the same tokenizer as from the plain file)', () => {
  const out = join(dir, 'from-gz');
  const r = train(['--type', 'bpe', '--vocab-size', '500', '--input', join(dir, 'corpus.txt.gz'), '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const fromGz = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as { model: { merges: unknown[] } };
  assert.deepEqual(fromGz, trainTokenizer({ type: 'bpe', vocabSize: 500, files: [plain] }).toJSON());
  assert.equal(fromGz.model.merges.length, 500 - 257);
});

test('tokenizer train: no text is an error naming the file; invalid UTF-8 warns with the count and the file', async () => {
  const r = train(['--type', 'bpe', '--vocab-size', '500', '--input', empty, '--out', join(dir, 'none')]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `primer: error: tokenizer train: --input ${empty} has no text (empty, whitespace only, or binary)\n`);
  await assert.rejects(trainTokenizerOnCorpus([empty, join(dir, 'blank.txt')], { type: 'wordpiece', vocabSize: 100 }, { warn: () => {} }),
    (e: Error) => e instanceof NoTextError && e.message === `no text in ${empty}, ${join(dir, 'blank.txt')} (empty, whitespace only, or binary)`);
  const warnings: string[] = [];
  const tok = await trainTokenizerOnCorpus([latin1, empty], { type: 'wordpiece', vocabSize: 100, lowercase: false }, { warn: (m) => warnings.push(m) });
  assert.deepEqual(warnings, [`${latin1}: 2 invalid UTF-8 sequence(s) replaced with U+FFFD`, `${empty}: no text; skipped`]);
  assert.deepEqual(tok.encode('caf\uFFFD', null, { addSpecialTokens: false }).tokens, ['caf'], 'U+FFFD is read, then dropped by BERT clean_text');
});

test('tokenizer train: a directory, a missing input and an --out that is a file are errors naming the path', () => {
  const folder = join(dir, 'folder');
  mkdirSync(folder, { recursive: true });
  const cases: Array<[string[], string, string]> = [
    [[folder], join(dir, 'o1'), `tokenizer train: --input ${folder} is a directory (give text files, or the files in it: ${join(folder, '*.txt')})`],
    [[plain, join(dir, 'nope.txt')], join(dir, 'o2'), `tokenizer train: --input ${join(dir, 'nope.txt')} does not exist`],
    [[plain], latin1, `tokenizer train: --out ${latin1} is a file, not a directory`],
  ];
  for (const [inputs, out, message] of cases) assert.throws(() => checkTrainPaths(inputs, out), (e: Error) => e instanceof RangeError && e.message === message);
  assert.doesNotThrow(() => checkTrainPaths([plain], join(dir, 'new')));
  const r = train(['--type', 'bpe', '--vocab-size', '300', '--input', folder, '--out', join(dir, 'o1')]);
  assert.equal(r.stderr, `primer: error: ${cases[0]![2]}\n`);
});

test('tokenizer train --type wordpiece: a --vocab-size below the alphabet warns with both sizes', () => {
  const out = join(dir, 'wp3');
  const r = train(['--type', 'wordpiece', '--vocab-size', '3', '--input', plain, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const vocab = readFileSync(join(out, 'vocab.txt'), 'utf8').trimEnd().split('\n');
  assert.ok(vocab.length > 40, `${vocab.length} tokens`);
  assert.match(r.stderr, new RegExp(`warning: wordpiece: the alphabet alone has ${vocab.length} tokens .*more than --vocab-size 3; the vocabulary has ${vocab.length}\\n`));
  assert.match(r.stderr, new RegExp(`trained a wordpiece tokenizer with ${vocab.length} tokens`));
});

test('trainTokenizer({ files }) reads plain text only: .gz, JSONL, directories and missing files are refused by name', () => {
  for (const type of ['bpe', 'wordpiece'] as const) {
    const refused = (files: string[]) => () => trainTokenizer({ type, vocabSize: 300, files });
    assert.throws(refused([plain, join(dir, 'corpus.txt.gz')]),
      { message: `trainTokenizer: ${join(dir, 'corpus.txt.gz')} is not plain text; trainTokenizerOnCorpus (primer tokenizer train) reads .gz and JSONL corpora` });
    writeFileSync(join(dir, 'rows.jsonl'), '{"text": "a b c"}\n');
    assert.throws(refused([join(dir, 'rows.jsonl')]), /rows\.jsonl is not plain text/);
    assert.throws(refused([dir]), { message: `trainTokenizer: ${dir} is a directory; list its files, or use trainTokenizerOnCorpus, which reads directories` });
    assert.throws(refused([join(dir, 'nope.txt')]), { message: `trainTokenizer: ${join(dir, 'nope.txt')} does not exist` });
    assert.ok(trainTokenizer({ type, vocabSize: 300, files: [plain] }).vocabSize > 200, 'a plain file still trains');
  }
});
