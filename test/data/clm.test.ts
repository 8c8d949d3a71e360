/**
 * The CLM data path: documents → one token stream per split with a separator after each document,
 * train/val split by document, random contiguous blocks from a seeded, resumable Rng.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCorpus } from '../../src/data/corpus.ts';
import { describeSplit, tokenizeCorpus, RandomBlocks, evalBatches } from '../../src/data/clm.ts';
import { trainBpeOnCorpus, separatorId } from '../../src/data/tokenizer.ts';

function corpusDir(docs: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'primer-clm-'));
  docs.forEach((d, i) => writeFileSync(join(dir, `doc${String(i).padStart(3, '0')}.txt`), d));
  return dir;
}

const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
const docs = Array.from({ length: 60 }, (_, i) => `Document ${i}: ` + Array.from({ length: 40 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') + '.');

test('documents are split between train and val, each followed by the separator, none shared', async () => {
  const dir = corpusDir(docs);
  const tok = await trainBpeOnCorpus([dir], 400);
  const sep = separatorId(tok);
  assert.equal(tok.idToToken(sep), '<|endoftext|>');
  const s = await tokenizeCorpus(readCorpus([dir]), tok, { separatorId: sep, valFraction: 0.2, seed: 3 });
  assert.equal(s.trainDocuments + s.valDocuments, 60);
  assert.ok(s.valDocuments >= 4 && s.valDocuments <= 25, `${s.valDocuments} val documents`);
  const split = (ids: Int32Array) => tok.decode(Array.from(ids)).split('<|endoftext|>').filter((x) => x.length > 0);
  const trainTexts = split(s.train);
  const valTexts = split(s.val);
  assert.equal(trainTexts.length, s.trainDocuments);
  assert.equal(valTexts.length, s.valDocuments);
  assert.equal(s.train[s.train.length - 1], sep);
  assert.equal(s.val[s.val.length - 1], sep);
  assert.deepEqual([...trainTexts, ...valTexts].sort(), [...docs].sort(), 'every document lands in exactly one split, intact');
  // Same seed, same split.
  const again = await tokenizeCorpus(readCorpus([dir]), tok, { separatorId: sep, valFraction: 0.2, seed: 3 });
  assert.deepEqual(again.val, s.val);
});

test('a single document is split by its tail; two documents hold out the last one', async () => {
  const one = corpusDir([docs[0]!.repeat(20)]);
  const tok = await trainBpeOnCorpus([one], 300);
  const s = await tokenizeCorpus(readCorpus([one]), tok, { separatorId: 0, valFraction: 0.1 });
  assert.equal(s.trainDocuments, 1);
  const total = s.train.length + s.val.length;
  assert.equal(s.val.length, total - Math.floor(total * 0.9));
  const two = corpusDir([docs[1]!, docs[2]!]);
  const s2 = await tokenizeCorpus(readCorpus([two]), tok, { separatorId: 0, valFraction: 0.01, seed: 1 });
  assert.deepEqual([s2.trainDocuments, s2.valDocuments], [1, 1]);
  assert.equal(tok.decode(Array.from(s2.val), { skipSpecialTokens: true }), docs[2]);
  // pretrain's data line: the single document's tail is not "0 documents".
  assert.equal(describeSplit(s), `${s.train.length.toLocaleString('en-US')} training tokens (1 document), ${s.val.length.toLocaleString('en-US')} validation tokens (the tail of the only document)`);
  assert.match(describeSplit(s2), /training tokens \(1 document\), \d+ validation tokens \(1 document\)$/);
});

test('random blocks: targets are inputs shifted by one, reproducible from the saved state', () => {
  const stream = Int32Array.from({ length: 1000 }, (_, i) => i);
  const a = new RandomBlocks(stream, 4, 8, 42);
  const first = a.next();
  assert.equal(first.input.length, 32);
  for (let i = 0; i < 32; i++) assert.equal(first.target[i], first.input[i]! + 1);
  for (let r = 0; r < 4; r++) for (let j = 1; j < 8; j++) assert.equal(first.input[r * 8 + j], first.input[r * 8]! + j, 'blocks are contiguous');
  const saved = JSON.parse(JSON.stringify(a.state()));
  const next = [a.next(), a.next()];
  const b = new RandomBlocks(stream, 4, 8, 7);
  b.loadState(saved);
  assert.deepEqual([b.next(), b.next()], next);
  assert.throws(() => b.loadState({ seed: 1 }), /expected \{seed, counter\}/);
  assert.throws(() => new RandomBlocks(stream.subarray(0, 8), 4, 8, 1), /training split has 8 tokens, fewer than block size \+ 1 = 9/);
});

test('evaluation batches are fixed, evenly spaced, and capped', () => {
  const stream = Int32Array.from({ length: 1000 }, (_, i) => i);
  const e = evalBatches(stream, 4, 10, 3);
  assert.equal(e.length, 3);
  assert.deepEqual(e, evalBatches(stream, 4, 10, 3));
  const starts = e.flatMap((b) => Array.from({ length: b.batch }, (_, r) => b.input[r * 10]!));
  assert.equal(new Set(starts).size, 12);
  assert.ok(starts[11]! + 10 < 1000);
  const small = evalBatches(Int32Array.from({ length: 25 }, (_, i) => i), 4, 10, 5);
  assert.equal(small.length, 1);
  assert.equal(small[0]!.batch, 2);
});
