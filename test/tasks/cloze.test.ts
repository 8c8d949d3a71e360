/**
 * BERT cloze prompting (src/tasks/cloze.ts) on the bert-tiny reference weights with a small WordPiece
 * vocabulary: the class scores are the MLM head's log mean probability of each class's words at the
 * mask, normalised over the classes, the same for a prompt alone and inside a padded batch; the template
 * gets its mask; calibration is −log of the content-free prompts' mean probabilities.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { LabelMap } from '../../src/models/labels.ts';
import { noGrad } from '../../src/tensor/tensor.ts';
import { clozeLogProbs, clozeTemplate, clozeZeroShot } from '../../src/tasks/cloze.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'bert-tiny');
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as BertConfig;
const weights = readSafetensors(join(dir, 'model.safetensors'));
const bert = new Bert(config);
bert.loadStateDict(new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const)));
const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'food', 'was', 'cold', 'it', 'great', 'good', 'terrible', 'bad', '.', 'staff', 'friendly', 'and', 'n', '/', 'a'];
const tokenizer = new WordPieceTokenizer({ vocab: VOCAB });
const labels = new LabelMap(['negative', 'positive']);
const verbalizer = { positive: ['great', 'good'], negative: ['terrible'] };

test('clozeTemplate puts the mask where the template says, else after it', () => {
  assert.equal(clozeTemplate('{text} It was', '[MASK]'), '{text} It was [MASK].');
  assert.equal(clozeTemplate('{text} It was {mask}!', '[MASK]'), '{text} It was [MASK]!');
  assert.equal(clozeTemplate('[MASK]: {text}', '[MASK]'), '[MASK]: {text}');
});

test('cloze scores are the log mean probability of the label words at the mask, over the classes', () => {
  const prompts = [{ text: 'the food was cold . it was [MASK] .' }, { text: 'the staff friendly . it was [MASK] .' }, { text: 'it was [MASK] .' }];
  const lp = clozeLogProbs(bert, tokenizer, labels, verbalizer, prompts, 64);
  const v = config.vocab_size;
  prompts.forEach((p, r) => {
    const ids = tokenizer.encode(p.text).ids;
    const at = ids.indexOf(4);
    const z = noGrad(() => bert.forward({ inputIds: Int32Array.from(ids), batch: 1, length: ids.length }).predictionLogits.data.slice(at * v, (at + 1) * v));
    const id = (w: string) => VOCAB.indexOf(w);
    const s = [Math.log(Math.exp(z[id('terrible')]!)), Math.log((Math.exp(z[id('great')]!) + Math.exp(z[id('good')]!)) / 2)];
    const lse = Math.log(Math.exp(s[0]!) + Math.exp(s[1]!));
    for (const k of [0, 1]) assert.ok(Math.abs(lp[r * 2 + k]! - (s[k]! - lse)) < 1e-5, `prompt ${r} class ${k}: ${lp[r * 2 + k]} vs ${s[k]! - lse}`);
  });
  assert.throws(() => clozeLogProbs(bert, tokenizer, labels, verbalizer, [{ text: 'no mask here' }], 64), /has no mask token/);
});

test('clozeZeroShot: calibration is −log of the content-free prompts\' mean class probabilities', () => {
  const xs = [{ text: 'the food was cold', label: 'negative' }, { text: 'the staff friendly', label: 'positive' }];
  const z = clozeZeroShot(bert, tokenizer, labels, { template: '{text} it was', verbalizer }, xs, xs, 64);
  const free = clozeLogProbs(bert, tokenizer, labels, verbalizer, ['n / a', '', '[MASK]'].map((t) => ({ text: `${t} it was [MASK].`.trim() })), 64);
  for (const k of [0, 1]) {
    const p = [0, 1, 2].reduce((sum, r) => sum + Math.exp(free[r * 2 + k]!), 0) / 3;
    assert.ok(Math.abs(z.bias[k]! + Math.log(p)) < 1e-4, `bias ${k}: ${z.bias[k]} vs ${-Math.log(p)}`);
  }
  for (const s of [z.uncalibrated, z.calibrated]) assert.ok([0, 0.5, 1].includes(s.accuracy));
});
