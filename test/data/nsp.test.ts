import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { createNspInstances, segmentedDocuments, truncateSeqPair, type NspOptions } from '../../src/data/nsp.ts';

const CLS = 2;
const SEP = 3;
// Token of document d, segment s, position k: unique, so every token tells where it came from.
const tokenOf = (d: number, s: number, k: number) => 1000 + d * 100_000 + s * 100 + k;
const whereFrom = (t: number) => ({ doc: Math.floor((t - 1000) / 100_000), seg: Math.floor(((t - 1000) % 100_000) / 100) });

function corpus(docs: number, seed: number): number[][][] {
  const rng = new Rng(seed);
  return Array.from({ length: docs }, (_, d) => Array.from({ length: 200 + rng.int(200) }, (_, s) => Array.from({ length: 4 + rng.int(20) }, (_, k) => tokenOf(d, s, k))));
}

test('NSP instances: 50% random next from other documents, layout, lengths, every segment used once per pass', () => {
  const raw = corpus(60, 1);
  const docs = segmentedDocuments(raw);
  // Long documents (200–400 sentences), like Wikipedia articles: google's rule makes every chunk of a
  // single segment a random next, which pushes the share above 50% on short documents.
  const opts: NspOptions & { dupeFactor: number } = { maxSeqLength: 128, clsId: CLS, sepId: SEP, dupeFactor: 3 };
  const instances = createNspInstances(docs, opts, new Rng(5));
  let random = 0;
  const used = raw.map((d) => d.map(() => 0));
  for (const inst of instances) {
    const { tokens, tokenTypeIds } = inst;
    assert.ok(tokens.length <= 128);
    assert.equal(tokens[0], CLS);
    assert.equal(tokens[tokens.length - 1], SEP);
    const seps = [...tokens.keys()].filter((i) => tokens[i] === SEP);
    assert.equal(seps.length, 2, 'exactly two [SEP]');
    const aEnd = seps[0]!;
    assert.ok(aEnd >= 2 && aEnd <= tokens.length - 3, 'A and B are non-empty');
    for (let i = 0; i < tokens.length; i++) assert.equal(tokenTypeIds[i], i <= aEnd ? 0 : 1, `token type at ${i}`);
    const a = Array.from(tokens.subarray(1, aEnd));
    const b = Array.from(tokens.subarray(aEnd + 1, tokens.length - 1));
    const docA = whereFrom(a[0]!).doc;
    assert.ok(a.every((t) => whereFrom(t).doc === docA), 'A comes from one document');
    const docB = whereFrom(b[0]!).doc;
    assert.ok(b.every((t) => whereFrom(t).doc === docB), 'B comes from one document');
    if (inst.isRandomNext) {
      random++;
      assert.notEqual(docB, docA, 'a random B never comes from the same document');
      assert.equal(inst.sourceB[0], docB);
    } else {
      assert.equal(docB, docA);
      assert.equal(inst.sourceB[1], inst.sourceA[2], 'an actual next B starts where A ends');
    }
    // Truncation only removes tokens at the ends: A and B are contiguous runs of their segments.
    const flatA = raw[docA]!.slice(inst.sourceA[1], inst.sourceA[2]).flat();
    const offA = flatA.indexOf(a[0]!);
    assert.deepEqual(flatA.slice(offA, offA + a.length), a);
    for (let s = inst.sourceA[1]; s < inst.sourceA[2]; s++) used[docA]![s]!++;
    if (!inst.isRandomNext) for (let s = inst.sourceB[1]; s < inst.sourceB[2]; s++) used[docA]![s]!++;
  }
  const share = random / instances.length;
  assert.ok(Math.abs(share - 0.5) <= 0.02, `random-next share ${share} over ${instances.length} instances`);
  // Unused segments are put back: every segment of every document is used exactly once per pass.
  let segments = 0;
  for (const d of used) for (const count of d) {
    assert.equal(count, 3);
    segments++;
  }
  assert.ok(segments > 4000);
  // Short targets (short_seq_prob) make some instances much shorter than the maximum.
  const lengths = instances.map((i) => i.tokens.length);
  assert.ok(lengths.filter((n) => n < 64).length > instances.length * 0.02);
  assert.ok(lengths.filter((n) => n > 110).length > instances.length * 0.5);
});

test('NSP: same seed, same instances; errors for too few documents', () => {
  const docs = segmentedDocuments(corpus(20, 2));
  const o = { maxSeqLength: 64, clsId: CLS, sepId: SEP, dupeFactor: 1 };
  const x = createNspInstances(docs, o, new Rng(9)).map((i) => Array.from(i.tokens));
  const y = createNspInstances(docs, o, new Rng(9)).map((i) => Array.from(i.tokens));
  assert.deepEqual(x, y);
  assert.throws(() => createNspInstances(segmentedDocuments([[[5, 6]]]), o, new Rng(1)), /at least 2 documents/);
  assert.equal(segmentedDocuments([[[], [1]], [[]], []]).count, 1, 'empty segments and documents are dropped');
});

test('truncate_seq_pair shortens the longer side until the pair fits', () => {
  const a = Array.from({ length: 50 }, (_, i) => i);
  const b = Array.from({ length: 10 }, (_, i) => 100 + i);
  truncateSeqPair(a, b, 30, new Rng(1));
  assert.equal(a.length + b.length, 30);
  assert.equal(b.length, 10, 'only the longer side loses tokens while it is longer');
  assert.ok(a[0]! > 0 && a[a.length - 1]! < 49, 'tokens are removed from both ends');
  for (let i = 1; i < a.length; i++) assert.equal(a[i], a[i - 1]! + 1, 'what remains is contiguous');
});
