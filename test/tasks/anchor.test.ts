/**
 * Distributional embedding initialisation (src/train/distributional.ts) and the label-word anchor
 * method (src/tasks/anchor.ts). The linear algebra is checked against matrices with known spectra; the
 * whole path on a synthetic corpus where the opinion words share contexts by class: with PPMI-initialised
 * embeddings, label words that never appear in the labelled examples still classify them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDistributionalInit, distributionalEmbeddings, symmetricEigen, truncatedSvd } from '../../src/train/distributional.ts';
import { anchorBank, anchorPredict, anchorProbe } from '../../src/tasks/anchor.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { loadBackbone } from '../../src/models/model-dir.ts';
import { LabelMap } from '../../src/models/labels.ts';
import { scorePredictions } from '../../src/tasks/fewlabel.ts';
import { Rng } from '../../src/util/random.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { pretrain } from '../../src/train/pretrain.ts';
import { NEGATIVE, POSITIVE, syntheticReviews } from './tiny-lm.ts';

test('symmetricEigen reconstructs A = V·diag(w)·Vᵀ with orthonormal V', () => {
  const n = 7, rng = new Rng(3);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
  const { values, vectors: v } = symmetricEigen(Float64Array.from(a), n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let rec = 0, dot = 0;
      for (let k = 0; k < n; k++) { rec += v[i * n + k]! * values[k]! * v[j * n + k]!; dot += v[k * n + i]! * v[k * n + j]!; }
      assert.ok(Math.abs(rec - a[i * n + j]!) < 1e-9, `A[${i},${j}]`);
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-9, `VᵀV[${i},${j}]`);
    }
  }
});

test('truncatedSvd recovers the singular values and subspace of a rank-3 matrix', () => {
  const rows = 60, cols = 40, rng = new Rng(5);
  // A = Σ_i s_i · x_i y_iᵀ with orthonormal x, y (Gram–Schmidt of random vectors).
  const orth = (len: number, k: number) => {
    const q: Float64Array[] = [];
    for (let i = 0; i < k; i++) {
      const v = Float64Array.from({ length: len }, () => rng.normal());
      for (const u of q) { const d = v.reduce((s, x, j) => s + x * u[j]!, 0); v.forEach((_, j) => (v[j]! -= d * u[j]!)); }
      const norm = Math.hypot(...v); v.forEach((_, j) => (v[j]! /= norm)); q.push(v);
    }
    return q;
  };
  const [x, y, s] = [orth(rows, 3), orth(cols, 3), [9, 4, 1.5]];
  const a = new Float32Array(rows * cols);
  for (let i = 0; i < 3; i++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) a[r * cols + c]! += s[i]! * x[i]![r]! * y[i]![c]!;
  const svd = truncatedSvd(a, rows, cols, 3, 2, 1);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(svd.s[i]! - s[i]!) < 1e-3 * s[i]!, `s${i}: ${svd.s[i]} vs ${s[i]}`);
    const dot = Math.abs(Array.from({ length: rows }, (_, r) => svd.u[r * 3 + i]! * x[i]![r]!).reduce((p, q) => p + q));
    assert.ok(dot > 0.999, `u${i}·x${i} = ${dot}`);
  }
});

test('PPMI vectors put tokens with the same neighbours together; rows keep the init scale', () => {
  // Tokens 1,2 always sit next to 5; tokens 3,4 next to 6; 0 separates the "sentences" (skipped).
  const rng = new Rng(9);
  const stream: number[] = [];
  for (let i = 0; i < 4000; i++) {
    const a = rng.int(2) === 0;
    stream.push(a ? 1 + rng.int(2) : 3 + rng.int(2), a ? 5 : 6, 7 + rng.int(3), 0);
  }
  const e = distributionalEmbeddings(Int32Array.from(stream), 12, { dims: 4, window: 2, skip: [0] });
  const cos = (i: number, j: number) => {
    const [u, v] = [e.vectors.subarray(i * 4, i * 4 + 4), e.vectors.subarray(j * 4, j * 4 + 4)];
    return u.reduce((s, x, k) => s + x * v[k]!, 0) / (Math.hypot(...u) * Math.hypot(...v));
  };
  assert.ok(cos(1, 2) > 0.95, `cos(1,2) = ${cos(1, 2)}`);
  assert.ok(cos(3, 4) > 0.95, `cos(3,4) = ${cos(3, 4)}`);
  assert.ok(cos(1, 3) < 0.5, `cos(1,3) = ${cos(1, 3)}`);
  assert.equal(e.counted[0], 0); // the separator is never counted
  assert.equal(e.counted[11], 0); // nor a token that never occurs
  const table = Float32Array.from({ length: 12 * 4 }, () => 0.02 * rng.normal());
  const before = Float32Array.from(table);
  const initNorm = Array.from({ length: 12 }, (_, t) => Math.hypot(...table.subarray(t * 4, t * 4 + 4))).reduce((p, q) => p + q) / 12;
  assert.equal(applyDistributionalInit(table, 4, e), 9);
  assert.ok(Math.abs(Math.hypot(...table.subarray(4, 8)) - initNorm) < 1e-6);
  assert.deepEqual(table.subarray(0, 4), before.subarray(0, 4)); // uncounted rows keep their random init
});

const root = mkdtempSync(join(tmpdir(), 'primer-anchor-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/**
 * Unlabelled text in which opinion words keep company with their own kind ("the film was lovely and
 * good"), as real text does; no document has a label. 2 LM steps: what classifies is the initialisation.
 */
async function pretrainOnOpinions(init: 'ppmi' | 'random'): Promise<string> {
  const rng = new Rng(11);
  const neutral = ['the', 'food', 'film', 'was', 'very', 'service', 'it', 'and', 'room', 'staff'];
  const pick = (xs: readonly string[]) => xs[rng.int(xs.length)]!;
  const corpus = join(root, `corpus-${init}`);
  mkdirSync(corpus, { recursive: true });
  for (let d = 0; d < 4; d++) {
    const lines = Array.from({ length: 400 }, () => {
      const words = POSITIVE.includes(pick([...POSITIVE, ...NEGATIVE])) ? POSITIVE : NEGATIVE;
      return [pick(neutral), pick(neutral), pick(words), pick(neutral), pick(words), pick(neutral)].join(' ') + '.';
    });
    writeFileSync(join(corpus, `doc${d}.txt`), lines.join('\n') + '\n');
  }
  const out = join(root, init);
  await pretrain({
    corpus: [corpus], preset: 'tiny', layers: 1, dims: 32, heads: 2, vocabSize: 300, blockSize: 32, batchSize: 4, steps: 2,
    evalEvery: 0, checkpointEvery: 0, keepCheckpoints: 1, valFraction: 0.1, seed: 7, out, samplePrompts: [], log: () => {}, progress: false,
    embeddingInit: init,
  });
  return out;
}

function anchorScores(dir: string) {
  const tokenizer = loadTokenizer(dir);
  const labels = new LabelMap(['negative', 'positive']);
  // One label word per class; the reviews' other opinion words never occur in the labelled examples' class names.
  const verbalizer = { positive: [POSITIVE[1]!], negative: [NEGATIVE[1]!] };
  const train = syntheticReviews(16, 1), earlyStopping = syntheticReviews(40, 2), heldOut = syntheticReviews(100, 3);
  const pool = syntheticReviews(200, 4);
  const bank = anchorBank(loadBackbone(dir), tokenizer, labels, verbalizer, [...pool, ...train, ...earlyStopping, ...heldOut], pool.length, 64);
  return {
    zero: scorePredictions(labels, heldOut, anchorPredict(bank, heldOut)).accuracy,
    fit: anchorProbe(bank, labels, train, earlyStopping, earlyStopping, heldOut),
  };
}

test('label-word anchors classify reviews zero-shot with PPMI-initialised embeddings, not with random ones', async () => {
  const ppmi = anchorScores(await pretrainOnOpinions('ppmi'));
  assert.ok(ppmi.zero >= 0.75, `anchor zero-shot accuracy ${ppmi.zero}`);
  assert.ok(ppmi.fit.accuracy >= 0.8, `anchor probe accuracy ${ppmi.fit.accuracy} (${ppmi.fit.detail})`);
  assert.match(ppmi.fit.detail!, /^(zero-shot|β=[\d.]+ C=[\d.]+)$/);
  const random = anchorScores(await pretrainOnOpinions('random'));
  assert.ok(random.zero < 0.7, `random-init anchor zero-shot accuracy ${random.zero}`);
  assert.ok(ppmi.fit.accuracy > random.fit.accuracy, `with 16 labels: ppmi ${ppmi.fit.accuracy} vs random ${random.fit.accuracy}`);
});
