import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { charData, contextFreePlateau } from '../../bench/bert-primer.ts';
import { escapeStep } from '../../bench/bert-report.ts';

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (±${tol})`);

test('context-free plateau of two equally frequent characters (hand computation)', () => {
  // p = q = ½, V = 2: [MASK] costs ln 2; a shown character is the target with posterior ¾ (P 0.15), else ¼ (P 0.05).
  const ids = Int32Array.from([4, 5, 4, 5, 5, 4]);
  const r = contextFreePlateau({ vocab: 6, train: ids, val: ids });
  close(r.unigramEntropy, Math.LN2, 1e-12, 'entropy');
  close(r.plateau, 0.8 * Math.LN2 - 0.15 * Math.log(0.75) - 0.05 * Math.log(0.25), 1e-12, 'plateau');
});

test("Shakespeare char corpus: unigram entropy 3.309 nats, context-free held-out plateau 3.104 (as computed with Python)", () => {
  const r = contextFreePlateau(charData(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'bench', 'data', 'shakespeare.txt')));
  close(r.unigramEntropy, 3.3090842752741247, 1e-9, 'entropy');
  close(r.plateau, 3.103715582935078, 1e-9, 'plateau');
});

test('escape step = first evaluation at or below the threshold', () => {
  const curve = [3.15, 3.1, 2.96, 2.9, 3.0].map((l, i) => ({ step: 200 * (i + 1), heldout_mlm_loss: l, heldout_mlm_acc: 0 }));
  assert.equal(escapeStep(curve, 2.954), 800);
  assert.equal(escapeStep(curve, 2.96), 600);
  assert.equal(escapeStep(curve, 2.5), null);
});
