import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import type { Rng } from '../../src/util/random.ts';
import { prepareData } from '../../src/data/prepare.ts';
import { openShards } from '../../src/data/shards.ts';
import { maskingOptionsFor } from '../../src/data/mlm.ts';
import { IGNORE_INDEX } from '../../src/tensor/nn-ops.ts';
import { MlmBlocks, NspBatches, bertSpecialIds, mlmEvalBatches, nspEvalBatches, type BertBatchOptions } from '../../src/data/bert-batches.ts';
import { registerDataCommands } from '../../src/cli/data.ts';
import { inspectData } from '../../src/data/inspect.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-bert-batches-'));
const corpus = join(dir, 'corpus');
mkdirSync(corpus);
const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu'.split(' ');
for (let d = 0; d < 12; d++) {
  const sentences = Array.from({ length: 8 + d }, (_, s) => `${words[(d + s) % 12]!.toUpperCase()} ${words[(d * s) % 12]} ${words[(s + 3) % 12]} number ${d}.`);
  writeFileSync(join(corpus, `d${d}.txt`), sentences.join(' '));
}
const tokenizer = trainTokenizer({ type: 'wordpiece', vocabSize: 80, texts: [words.join(' ') + ' number 0 1 2 3 4 5 6 7 8 9 10 11 .'] });
const prepared = await prepareData({ tokenizer, corpus: [corpus], out: join(dir, 'data'), valFraction: 0, workers: 0, durable: false, warn: () => {} });
const data = openShards(prepared.dir);
const ids = bertSpecialIds(tokenizer);
const o: BertBatchOptions = { batchSize: 4, maxSeqLength: 32, seed: 5, ids, masking: maskingOptionsFor(tokenizer) };

test('MLM packed blocks: [CLS] … [SEP], documents joined by [SEP], masked, replayable state', () => {
  const source = new MlmBlocks(data.train, o);
  const b = source.next();
  assert.equal(b.batch, 4);
  assert.equal(b.length, 32);
  for (let r = 0; r < 4; r++) {
    assert.equal(b.inputIds[r * 32], ids.cls);
    assert.equal(b.inputIds[r * 32 + 31], ids.sep);
    assert.equal(b.labels[r * 32], IGNORE_INDEX);
    for (let i = 1; i < 31; i++) {
      const original = b.labels[r * 32 + i] === IGNORE_INDEX ? b.inputIds[r * 32 + i]! : b.labels[r * 32 + i]!;
      assert.ok(original !== ids.pad && original !== ids.cls, 'no padding or [CLS] inside a block');
    }
  }
  assert.ok(b.attentionMask.every((m) => m === 1));
  // A block starting at the last token of document 0 continues with [SEP] and document 1.
  const doc0 = data.train.document(0);
  const edge = source.blockAt([doc0.length - 1], { next: () => 0.99, int: () => 0 } as unknown as Rng); // never masks
  assert.equal(edge.inputIds[1], doc0[doc0.length - 1]);
  assert.equal(edge.inputIds[2], ids.sep);
  assert.deepEqual(Array.from(edge.inputIds.subarray(3, 8)), Array.from(data.train.document(1).subarray(0, 5)));
  // Resume: replaying the state gives the next batch exactly.
  source.next();
  const state = source.state();
  const expected = source.next();
  const resumed = new MlmBlocks(data.train, o);
  resumed.loadState(JSON.parse(JSON.stringify(state)));
  assert.deepEqual(resumed.next(), expected);
  const evalA = mlmEvalBatches(data.train, o, 2);
  assert.deepEqual(mlmEvalBatches(data.train, o, 2), evalA, 'evaluation batches are fixed');
  assert.equal(evalA.length, 2);
});

test('MLM batch statistics over 2,000 batches: uniform window starts, even masking by position, no special targets, no mask correlation between rows or steps', () => {
  const source = new MlmBlocks(data.train, o);
  const starts: number[] = [];
  const blockAt = source.blockAt.bind(source);
  source.blockAt = (rows, rng, lengths) => (starts.push(...rows), blockAt(rows, rng, lengths));
  const t = o.maxSeqLength;
  const maskedAt = new Float64Array(t);
  const special = new Set([ids.cls, ids.sep, ids.pad, ids.mask]);
  let rows = 0;
  let targets = 0;
  let candidates = 0;
  // Pearson correlation of the masked indicator at the same position: row r vs row r+1, and row r of step k vs step k+1.
  const corr = { rows: [0, 0, 0, 0, 0, 0], steps: [0, 0, 0, 0, 0, 0] };
  const addPair = (c: number[], a: number, b: number) => { c[0]! += a; c[1]! += b; c[2]! += a * b; c[3]! += a * a; c[4]! += b * b; c[5]! += 1; };
  const pearson = ([sa, sb, sab, saa, sbb, n]: number[]) => (sab! / n! - (sa! / n!) * (sb! / n!)) / Math.sqrt((saa! / n! - (sa! / n!) ** 2) * (sbb! / n! - (sb! / n!) ** 2));
  let previous: Uint8Array | null = null;
  for (let k = 0; k < 2000; k++) {
    const b = source.next();
    const masked = Uint8Array.from(b.labels, (l) => (l === IGNORE_INDEX ? 0 : 1));
    for (let r = 0; r < b.batch; r++, rows++) {
      let rowCandidates = 0;
      let rowTargets = 0;
      for (let i = 0; i < t; i++) {
        const at = r * t + i;
        const original = masked[at] ? b.labels[at]! : b.inputIds[at]!;
        if (!special.has(original)) rowCandidates++;
        if (!masked[at]) continue;
        rowTargets++;
        maskedAt[i]!++;
        assert.ok(!special.has(b.labels[at]!), `a special or padding token is a target (batch ${k}, row ${r}, position ${i})`);
      }
      // google-research/bert's rule: round(15 % of the row's non-special tokens) targets, at least one.
      assert.equal(rowTargets, Math.max(1, Math.round(rowCandidates * 0.15)), `batch ${k}, row ${r}: ${rowTargets} targets of ${rowCandidates}`);
      candidates += rowCandidates;
      targets += rowTargets;
      for (let i = 1; i < t - 1; i++) {
        if (r + 1 < b.batch) addPair(corr.rows, masked[r * t + i]!, masked[(r + 1) * t + i]!);
        if (previous) addPair(corr.steps, previous[r * t + i]!, masked[r * t + i]!);
      }
    }
    previous = masked;
  }
  // Window starts: χ² over 20 equal bins of the split's tokens (19 d.o.f.; 43.8 is the 99.9 % quantile).
  const bins = new Float64Array(20);
  for (const s of starts) bins[Math.floor((s / data.train.tokenCount) * 20)]!++;
  const expected = starts.length / 20;
  const chi2 = bins.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
  assert.equal(starts.length, rows);
  assert.ok(chi2 < 43.8, `window starts are not uniform: χ² = ${chi2.toFixed(1)}`);
  // Masking rate: about 15 % of the candidates (30 per row here round 4.5 up), the same at every inner position.
  assert.ok(Math.abs(targets / candidates - 0.15) < 0.02, `masked share ${targets / candidates}`);
  assert.equal(maskedAt[0], 0, '[CLS] is never a target');
  assert.equal(maskedAt[t - 1], 0, 'the final [SEP] is never a target');
  const inner = Array.from(maskedAt.subarray(1, t - 1), (m) => m / rows);
  const mean = inner.reduce((a, b) => a + b, 0) / inner.length;
  const sigma = Math.sqrt((mean * (1 - mean)) / rows);
  for (const [i, share] of inner.entries()) assert.ok(Math.abs(share - mean) < 4 * sigma + 0.01, `position ${i + 1}: ${share.toFixed(3)} vs mean ${mean.toFixed(3)}`);
  for (const [name, c] of Object.entries(corr)) assert.ok(Math.abs(pearson(c)) < 0.02, `mask correlation between ${name}: ${pearson(c).toFixed(4)}`);
});

test('MLM packed blocks with shortSeqProb: that share of rows is cut to a random length and padded', () => {
  const source = new MlmBlocks(data.train, { ...o, shortSeqProb: 0.3 });
  const seen = new Set<number>();
  let short = 0;
  let rows = 0;
  for (let k = 0; k < 250; k++) {
    const b = source.next();
    let tokens = 0;
    for (let r = 0; r < b.batch; r++, rows++) {
      const row = (a: ArrayLike<number>) => Array.from(a as Int32Array).slice(r * 32, (r + 1) * 32);
      const n = row(b.attentionMask).reduce((s, m) => s + m, 0);
      tokens += n;
      assert.ok(n >= 3 && n <= 32, `row length ${n}`);
      assert.deepEqual(row(b.attentionMask), [...new Array(n).fill(1), ...new Array(32 - n).fill(0)]);
      const input = row(b.inputIds);
      const labels = row(b.labels);
      assert.equal(input[0], ids.cls);
      assert.equal(input[n - 1], ids.sep);
      assert.ok(input.slice(n).every((t) => t === ids.pad) && labels.slice(n).every((l) => l === IGNORE_INDEX), 'padding, never predicted');
      if (n < 32) {
        short++;
        seen.add(n);
      }
    }
    assert.equal(b.tokens, tokens);
  }
  // 1000 rows, P(short) = 0.3 · 29/30 (a drawn length can be the full 32): 290 ± 3σ = 290 ± 43.
  assert.ok(Math.abs(short - 290) < 43, `${short} short rows of ${rows}`);
  assert.ok(seen.has(3) && seen.has(31), 'lengths cover [3, 31]');
});

test('MLM+NSP batches: padded pairs with token types, attention mask, NSP labels, replayable state', () => {
  const source = new NspBatches(data.train, { ...o, shuffleBuffer: 50 });
  let random = 0;
  let rows = 0;
  for (let k = 0; k < 20; k++) {
    const b = source.next();
    assert.equal(b.length % 8, 0);
    assert.ok(b.length <= 32);
    for (let r = 0; r < b.batch; r++) {
      const row = Array.from(b.inputIds.subarray(r * b.length, (r + 1) * b.length));
      const mask = Array.from(b.attentionMask.subarray(r * b.length, (r + 1) * b.length));
      const n = mask.indexOf(0) < 0 ? b.length : mask.indexOf(0);
      assert.ok(mask.slice(n).every((m) => m === 0) && row.slice(n).every((t) => t === ids.pad), 'padding after the pair');
      assert.equal(row[0], ids.cls);
      const original = row.map((t, i) => (b.labels[r * b.length + i] === IGNORE_INDEX ? t : b.labels[r * b.length + i]!));
      assert.equal(original[n - 1], ids.sep);
      const firstSep = original.indexOf(ids.sep);
      const types = Array.from(b.tokenTypeIds.subarray(r * b.length, r * b.length + n));
      assert.deepEqual(types, original.slice(0, n).map((_, i) => (i <= firstSep ? 0 : 1)));
      for (let i = n; i < b.length; i++) assert.equal(b.labels[r * b.length + i], IGNORE_INDEX);
      random += b.nspLabels![r]!;
      rows++;
    }
    assert.equal(b.tokens, b.attentionMask.reduce((s, m) => s + m, 0));
  }
  assert.ok(random > rows * 0.3 && random < rows * 0.8, `${random}/${rows} random`);
  const state = source.state();
  const expected = source.next();
  const resumed = new NspBatches(data.train, { ...o, shuffleBuffer: 50 });
  resumed.loadState(state);
  assert.deepEqual(resumed.next(), expected);
  assert.equal(nspEvalBatches(data.train, o, 3).length, 3);
});

test('data inspect and the data CLI commands', async () => {
  const report = inspectData(prepared.dir, { samples: 2 });
  assert.match(report, /complete/);
  assert.match(report, /train: 12 documents/);
  assert.match(report, /sample 2: train document 6/);
  assert.match(report, /first sentence: "\w+ \w+ \w+ number \d+\."/);
  const printed: string[] = [];
  const log = console.log;
  console.log = (m: string) => printed.push(m);
  try {
    const program = new Command().exitOverride();
    registerDataCommands(program);
    await program.parseAsync(['node', 'primer', 'data', 'prepare', '--tokenizer', prepared.dir, '--corpus', corpus, '--out', join(dir, 'cli'), '--workers', '0', '--val-fraction', '0.2']);
    await program.parseAsync(['node', 'primer', 'data', 'inspect', join(dir, 'cli'), '--samples', '1']);
  } finally {
    console.log = log;
  }
  assert.match(printed[0]!, /^finished in .* MB\/s\): \d+ train \/ \d+ val documents/);
  assert.match(printed[1]!, /sample 1: train document 0/);
});
