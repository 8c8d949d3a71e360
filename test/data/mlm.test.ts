import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/random.ts';
import { maskTokens, type MaskingOptions } from '../../src/data/mlm.ts';
import { IGNORE_INDEX } from '../../src/tensor/nn-ops.ts';

// Vocabulary: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK], 5.. words.
const VOCAB = 1000;
const special = new Uint8Array(VOCAB);
for (const id of [0, 2, 3, 4]) special[id] = 1;
const opts: MaskingOptions = { maskId: 4, vocabSize: VOCAB, special };

function sequences(rows: number, length: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const ids = new Int32Array(rows * length);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < length; i++) ids[r * length + i] = 5 + rng.int(VOCAB - 5);
    ids[r * length] = 2;
    ids[r * length + 100] = 3; // a [SEP] in the middle
    ids[r * length + length - 1] = 3;
  }
  return ids;
}

test('masking statistics over 100k tokens: 15% of non-special tokens, 80/10/10, labels -100 elsewhere', () => {
  const rows = 200;
  const length = 512;
  const ids = sequences(rows, length, 1);
  const { inputIds, labels, predictions } = maskTokens(ids, rows, length, new Rng(42), opts);
  let candidates = 0;
  let masked = 0;
  let toMask = 0;
  let random = 0;
  let kept = 0;
  for (let i = 0; i < ids.length; i++) {
    const isSpecial = special[ids[i]!] === 1;
    if (!isSpecial) candidates++;
    if (labels[i] === IGNORE_INDEX) {
      assert.equal(inputIds[i], ids[i], `unmasked position ${i} must be unchanged`);
      continue;
    }
    assert.ok(!isSpecial, `special token at ${i} was masked`);
    assert.equal(labels[i], ids[i], 'label is the original token');
    masked++;
    if (inputIds[i] === 4) toMask++;
    else if (inputIds[i] === ids[i]) kept++;
    else {
      random++;
      assert.equal(special[inputIds[i]!], 0, 'a random replacement is never a special token');
    }
  }
  assert.ok(candidates > 100_000);
  assert.equal(predictions, masked);
  const share = masked / candidates;
  assert.ok(Math.abs(share - 0.15) <= 0.005, `masked share ${share}`);
  assert.ok(Math.abs(toMask / masked - 0.8) <= 0.01, `[MASK] share ${toMask / masked}`);
  assert.ok(Math.abs(random / masked - 0.1) <= 0.01, `random share ${random / masked}`);
  assert.ok(Math.abs(kept / masked - 0.1) <= 0.01, `kept share ${kept / masked}`);
});

test('masking is reproducible from the Rng state, different per batch, and respects padding lengths', () => {
  const ids = sequences(4, 200, 2);
  const a = maskTokens(ids, 4, 200, new Rng(7), opts);
  const b = maskTokens(ids, 4, 200, new Rng(7), opts);
  assert.deepEqual(a.labels, b.labels);
  const rng = new Rng(7);
  maskTokens(ids, 4, 200, rng, opts);
  const c = maskTokens(ids, 4, 200, rng, opts);
  assert.notDeepEqual(a.labels, c.labels);
  const padded = maskTokens(ids, 4, 200, new Rng(1), opts, [50, 200, 10, 0]);
  for (let i = 50; i < 200; i++) assert.equal(padded.labels[i], IGNORE_INDEX);
  for (let i = 0; i < 200; i++) assert.equal(padded.labels[600 + i], IGNORE_INDEX);
  const row2 = Array.from(padded.labels.subarray(400, 410)).filter((l) => l !== IGNORE_INDEX).length;
  assert.equal(row2, 1, 'round(9 × 0.15) = 1 prediction in the 10-token row');
});

test('whole-word masking masks every piece of a chosen word and nothing else', () => {
  // Words of 3 tokens: a start token (id 10..) followed by two continuation pieces (id 500..).
  const continuation = new Uint8Array(VOCAB);
  for (let id = 500; id < VOCAB; id++) continuation[id] = 1;
  const rows = 50;
  const length = 300;
  const ids = new Int32Array(rows * length);
  for (let r = 0; r < rows; r++) for (let i = 0; i < length; i++) ids[r * length + i] = i % 3 === 0 ? 10 + (i % 400) : 500 + (i % 400);
  const { labels, predictions } = maskTokens(ids, rows, length, new Rng(3), { ...opts, wholeWord: true, continuation });
  for (let r = 0; r < rows; r++) {
    for (let w = 0; w < length; w += 3) {
      const m = [0, 1, 2].map((k) => labels[r * length + w + k] !== IGNORE_INDEX);
      assert.ok(m.every((x) => x === m[0]), `row ${r} word at ${w} partially masked`);
    }
  }
  assert.ok(Math.abs(predictions / (rows * length) - 0.15) < 0.01);
  assert.throws(() => maskTokens(ids, rows, length, new Rng(1), { ...opts, wholeWord: true }), /continuation/);
  assert.throws(() => maskTokens(ids, rows, length + 1, new Rng(1), opts), /rows/);
  assert.throws(() => maskTokens(ids, rows, length, new Rng(1), { ...opts, probability: 0 }), /probability/);
});

test('tokenizer helpers: special flags, word continuation for WordPiece (##) and byte-level BPE (Ġ), mask options', async () => {
  const { trainTokenizer } = await import('../../src/tokenizers/index.ts');
  const { maskingOptionsFor, specialTokenFlags, wordContinuationFlags } = await import('../../src/data/mlm.ts');
  const text = 'unbelievable transformations happen nightly in the unbelievable city of transformations';
  const wp = trainTokenizer({ type: 'wordpiece', vocabSize: 60, texts: [text] });
  const special = specialTokenFlags(wp);
  for (const t of ['[PAD]', '[CLS]', '[SEP]', '[MASK]']) assert.equal(special[wp.tokenToId(t)!], 1, t);
  assert.equal(special[wp.tokenToId('[UNK]')!], 0, '[UNK] may be masked');
  const cont = wordContinuationFlags(wp);
  const ids = wp.encode('unbelievable city', null, { addSpecialTokens: false }).ids;
  assert.deepEqual(ids.map((id) => cont[id]), wp.encode('unbelievable city', null, { addSpecialTokens: false }).tokens.map((t) => (t.startsWith('##') ? 1 : 0)));
  assert.ok(ids.some((id) => cont[id] === 1), 'some pieces continue a word');
  const o = maskingOptionsFor(wp, { wholeWord: true, probability: 0.5 });
  assert.equal(o.maskId, wp.tokenToId('[MASK]'));
  assert.ok(o.continuation && o.wholeWord);
  const bpe = trainTokenizer({ type: 'bpe', vocabSize: 300, texts: [text] });
  const bcont = wordContinuationFlags(bpe);
  const enc = bpe.encode(' unbelievable city', null, { addSpecialTokens: false });
  assert.deepEqual(enc.ids.map((id) => bcont[id]), enc.tokens.map((t) => (t.startsWith('Ġ') ? 0 : 1)));
  assert.throws(() => maskingOptionsFor(bpe), /no mask token/);
});
