import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import type { Tokenizer } from '../../src/tokenizers/types.ts';
import { Rng } from '../../src/util/random.ts';
import { prepareData, type PrepareOptions } from '../../src/data/prepare.ts';
import { openShards, type PreparedData } from '../../src/data/shards.ts';

const WORDS = 'the a river stone light house quiet morning city garden old young runs sees finds keeps tells walks'.split(' ');
function sentence(rng: Rng): string {
  const n = 4 + rng.int(8);
  const w = Array.from({ length: n }, () => WORDS[rng.int(WORDS.length)]!);
  w[0] = w[0]![0]!.toUpperCase() + w[0]!.slice(1);
  return w.join(' ') + (rng.next() < 0.8 ? '.' : '?');
}
function documentText(rng: Rng): string {
  return Array.from({ length: 3 + rng.int(10) }, () => sentence(rng)).join(' ') + '\n';
}

const dir = mkdtempSync(join(tmpdir(), 'primer-prepare-'));
const corpus = join(dir, 'corpus');
mkdirSync(join(corpus, 'sub'), { recursive: true });
const rng = new Rng(11);
const expected = new Set<string>();
for (let i = 0; i < 40; i++) {
  const text = documentText(rng);
  expected.add(text);
  writeFileSync(join(corpus, i < 20 ? '' : 'sub', `doc${String(i).padStart(2, '0')}.txt`), text);
}
writeFileSync(join(corpus, 'dup.txt'), readFileSync(join(corpus, 'doc03.txt'))); // exact duplicate
const records = Array.from({ length: 30 }, () => documentText(rng).trim());
records.forEach((r) => expected.add(r));
// A correctly encoded U+FFFD is text; bytes that are not UTF-8 are read as U+FFFD and the record is kept too.
const genuineReplacement = 'A genuine \uFFFD replacement character stays. It is text. Keep it.';
records.push(genuineReplacement);
expected.add(genuineReplacement);
writeFileSync(join(corpus, 'records.jsonl'), Buffer.concat([
  Buffer.from(records.map((text) => JSON.stringify({ text })).join('\n') + '\n' + JSON.stringify({ text: records[0] }) + '\n'),
  Buffer.from('{"text": "Broken '), Buffer.from([0xff, 0xfe]), Buffer.from(' bytes."}\r\n'),
]));
expected.add('Broken \uFFFD\uFFFD bytes.');
const genuineFile = 'This file holds \uFFFD on purpose. Really. Truly.\n';
expected.add(genuineFile);
writeFileSync(join(corpus, 'replacement.txt'), genuineFile);
const zipped = documentText(rng);
expected.add(zipped);
writeFileSync(join(corpus, 'zipped.txt.gz'), gzipSync(zipped));
// Bad input: empty, whitespace only, binary, invalid UTF-8, truncated gzip, a dangling link.
writeFileSync(join(corpus, 'empty.txt'), '');
writeFileSync(join(corpus, 'blank.txt'), '  \n\n \t\n');
writeFileSync(join(corpus, 'binary.txt'), Buffer.from([0, 1, 2, 3, 0, 255, 0, 10]));
writeFileSync(join(corpus, 'latin1.txt'), Buffer.concat([Buffer.from('Caf'), Buffer.from([0xe9]), Buffer.from(' au lait. Tr'), Buffer.from([0xe8, 0x73]), Buffer.from(' bon.\n')]));
expected.add('Caf\uFFFD au lait. Tr\uFFFDs bon.\n');
const truncated = gzipSync(Buffer.from(documentText(rng).repeat(20000))); // > 2 MiB before the cut: pieces were read
writeFileSync(join(corpus, 'truncated.txt.gz'), truncated.subarray(0, Math.floor(truncated.length / 2)));
symlinkSync(join(dir, 'does-not-exist'), join(corpus, 'broken.txt'));

const allText = [...expected].join('\n');
const tokenizer: Tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 400, texts: [allText] });

function decodeAll(data: PreparedData, split: 'train' | 'val'): string[] {
  return [...data[split].documents()].map((d) => tokenizer.decode(Array.from(d)));
}

async function prepare(out: string, extra: Partial<PrepareOptions> = {}) {
  const warnings: string[] = [];
  const result = await prepareData({
    tokenizer, corpus: [corpus], out: join(dir, out), valFraction: 0.2, workers: 0, shardTokens: 600, durable: false,
    warn: (m) => warnings.push(m), ...extra,
  });
  return { result, warnings };
}

test('prepare: round trip, dedup, val split by document, invalid UTF-8 kept as U+FFFD, bad input reported and skipped', async () => {
  const { result, warnings } = await prepare('full');
  const m = result.manifest;
  assert.equal(m.complete, true);
  assert.equal(m.dtype, 'uint16');
  const data = openShards(result.dir);
  const train = decodeAll(data, 'train');
  const val = decodeAll(data, 'val');
  assert.deepEqual(new Set([...train, ...val]), expected, 'decoded documents are exactly the distinct readable input documents');
  assert.equal(train.length + val.length, expected.size, 'no document twice');
  assert.ok(val.length >= 5 && train.length >= 40, `split ${train.length}/${val.length}`);
  assert.equal(new Set(train).size + new Set(val).size, new Set([...train, ...val]).size, 'no document in both splits');
  assert.equal(m.counts.duplicates, 2, 'dup.txt and the repeated JSONL record');
  assert.equal(m.counts.invalidUtf8, 2, 'latin1.txt and the JSONL record with bytes that are not UTF-8, both kept');
  for (const name of ['records.jsonl', 'latin1.txt']) {
    assert.ok(warnings.includes(`${join(corpus, name)}: 2 invalid UTF-8 sequence(s) replaced with U+FFFD`), `${name}: ${warnings.join(' | ')}`);
  }
  assert.ok(!warnings.some((w) => /invalid UTF-8.*skipped/.test(w)), 'no document is dropped for invalid UTF-8');
  assert.equal(m.counts.empty, 1, 'blank.txt (empty.txt has no document at all)');
  assert.equal(m.counts.incomplete, 1, 'the document of truncated.txt.gz was being read when the error came');
  assert.ok(data.train.shards.length >= 3, 'several shards');
  for (const name of ['binary.txt', 'latin1.txt', 'truncated.txt.gz', 'broken.txt', 'empty.txt']) {
    assert.ok(warnings.some((w) => w.includes(name)), `a warning names ${name}: ${warnings.join(' | ')}`);
  }
  assert.equal(m.sources.find((s) => s.path.endsWith('truncated.txt.gz'))!.status, 'error');
  assert.equal(m.sources.find((s) => s.path.endsWith('broken.txt'))!.status, 'error');
  // Segments are sentences, and they tile each document (the two with bad bytes have fewer than 3 sentences).
  const short: string[] = [];
  for (const split of ['train', 'val'] as const) {
    for (let i = 0; i < data[split].count; i++) {
      const segs = data[split].segments(i);
      assert.deepEqual(Int32Array.from(segs.flatMap((s) => Array.from(s))), data[split].document(i));
      if (segs.length < 3) short.push(tokenizer.decode(Array.from(data[split].document(i))));
    }
  }
  assert.deepEqual(short.sort(), ['Broken \uFFFD\uFFFD bytes.', 'Caf\uFFFD au lait. Tr\uFFFDs bon.\n']);
  assert.equal(m.counts.segments, [...Array(data.train.count).keys()].reduce((n, i) => n + data.train.segments(i).length, 0)
    + [...Array(data.val.count).keys()].reduce((n, i) => n + data.val.segments(i).length, 0));
  // A complete directory is not redone; different options are refused.
  const again = await prepare('full');
  assert.equal(again.result.alreadyComplete, true);
  await assert.rejects(prepare('full', { valFraction: 0.3 }), /other inputs, tokenizer or options/);
});

test('prepare: an --out that is a file is refused with its path', async () => {
  const file = join(dir, 'not-a-dir.txt');
  writeFileSync(file, 'x');
  await assert.rejects(prepare('x', { out: file }), { message: `data prepare: --out ${file} is a file, not a directory` });
  assert.equal(readFileSync(file, 'utf8'), 'x');
});

test('prepare: an interrupted run resumes to the same result; worker threads give the same shards', async () => {
  const reference = openShards((await prepare('reference')).result.dir);
  let shardsSeen = 0;
  await assert.rejects(prepare('resumed', { onShard: () => { if (++shardsSeen === 3) throw new Error('simulated crash'); } }), /simulated crash/);
  assert.throws(() => openShards(join(dir, 'resumed')), /did not finish/);
  const partial = openShards(join(dir, 'resumed'), { allowIncomplete: true });
  assert.ok(partial.manifest.shards.length >= 2 && partial.manifest.resumeAfter !== null);
  const { result } = await prepare('resumed');
  assert.equal(result.resumed, true);
  const resumed = openShards(result.dir);
  assert.deepEqual(decodeAll(resumed, 'train'), decodeAll(reference, 'train'));
  assert.deepEqual(decodeAll(resumed, 'val'), decodeAll(reference, 'val'));
  assert.deepEqual(resumed.manifest.counts, reference.manifest.counts);
  const threaded = openShards((await prepare('threaded', { workers: 2 })).result.dir);
  assert.deepEqual(threaded.manifest.shards, reference.manifest.shards);
  for (const s of reference.manifest.shards) {
    assert.deepEqual(readFileSync(join(threaded.dir, `${s.name}.bin`)), readFileSync(join(reference.dir, `${s.name}.bin`)));
  }
});

test('prepare: a run killed with SIGKILL resumes to the same result', async () => {
  const tokDir = join(dir, 'tokenizer');
  tokenizer.save(tokDir);
  const out = join(dir, 'killed');
  // Each listed shard pauses the child for 300 ms, so the kill lands in the middle of the run.
  const script = `import { prepareData } from ${JSON.stringify(new URL('../../src/data/prepare.ts', import.meta.url).href)};
    await prepareData({ tokenizer: ${JSON.stringify(tokDir)}, corpus: [${JSON.stringify(corpus)}], out: ${JSON.stringify(out)}, valFraction: 0.2,
      workers: 0, shardTokens: 600, warn: () => {}, onShard: () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300) });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const manifestPath = join(out, 'manifest.json');
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 50));
    if (existsSync(manifestPath) && (JSON.parse(readFileSync(manifestPath, 'utf8')) as { shards: unknown[] }).shards.length >= 4) break;
  }
  child.kill('SIGKILL');
  assert.equal(await exited, null, 'killed, not finished');
  const partial = openShards(out, { allowIncomplete: true });
  assert.equal(partial.manifest.complete, false);
  assert.ok(partial.manifest.shards.length >= 4 && partial.manifest.shards.length < 12);
  const { result } = await prepare('killed');
  assert.equal(result.resumed, true);
  const reference = openShards(join(dir, 'reference'));
  const resumed = openShards(result.dir);
  assert.deepEqual(decodeAll(resumed, 'train'), decodeAll(reference, 'train'));
  assert.deepEqual(decodeAll(resumed, 'val'), decodeAll(reference, 'val'));
  assert.deepEqual(resumed.manifest.counts, reference.manifest.counts);
});

test('prepare: blank-line separated documents, long documents cut into parts, uint32 for big vocabularies', async () => {
  const paragraphs = Array.from({ length: 12 }, () => documentText(rng).trim());
  const file = join(dir, 'paragraphs.txt');
  writeFileSync(file, '\n\n' + paragraphs.join('\n\n  \n') + '\n');
  const r = await prepareData({ tokenizer, corpus: [file], out: join(dir, 'blank'), valFraction: 0, workers: 0, documents: 'blank-line', durable: false, warn: () => {} });
  const docs = decodeAll(openShards(r.dir), 'train');
  assert.deepEqual(docs, paragraphs);
  const long = join(dir, 'long.txt');
  writeFileSync(long, paragraphs.join(' '));
  const p = await prepareData({ tokenizer, corpus: [long], out: join(dir, 'parts'), valFraction: 0, workers: 0, maxDocumentChars: 1000, durable: false, warn: () => {} });
  const parts = decodeAll(openShards(p.dir), 'train');
  assert.ok(parts.length >= 3 && p.manifest.counts.splitLong === parts.length - 1);
  assert.equal(parts.join(''), paragraphs.join(' '));
  await assert.rejects(prepareData({ tokenizer, corpus: [long], out: join(dir, 'parts0'), valFraction: 0, workers: 0, maxDocumentChars: 0, durable: false, warn: () => {} }),
    /maxDocumentChars must be an integer ≥ 1, got 0/);
  // Parts close between words (no word is cut in two), and between lines where the text has them.
  for (const part of parts.slice(0, -1)) assert.match(part, /\s$/);
  const lined = join(dir, 'lined.txt');
  writeFileSync(lined, paragraphs.join('\n'));
  const l = await prepareData({ tokenizer, corpus: [lined], out: join(dir, 'lined'), valFraction: 0, workers: 0, maxDocumentChars: 1000, durable: false, warn: () => {} });
  const lines = decodeAll(openShards(l.dir), 'train');
  assert.ok(lines.length >= 3);
  assert.equal(lines.join(''), paragraphs.join('\n'));
  for (const part of lines.slice(0, -1)) assert.ok(part.endsWith('\n') && part.length <= 1000, JSON.stringify(part.slice(-20)));
  const big = trainTokenizer({ type: 'wordpiece', vocabSize: 300, texts: [allText] });
  Object.defineProperty(big, 'vocabSize', { value: 70000 });
  const w = await prepareData({ tokenizer: big, corpus: [file], out: join(dir, 'u32'), valFraction: 0, workers: 0, documents: 'blank-line', durable: false, warn: () => {} });
  assert.equal(w.manifest.dtype, 'uint32');
  const wp = openShards(w.dir);
  assert.equal(wp.train.count, 12);
  assert.deepEqual(Array.from(wp.train.document(0)), big.encode(paragraphs[0]!, null, { addSpecialTokens: false }).ids);
});
