/**
 * Next-sentence prediction on the bert-tiny fixture: an empty or whitespace-only sentence is refused
 * (it still encoded to [CLS] A [SEP] [SEP] and got a confident-looking probability), and a real pair
 * gets softmax(seq_relationship logits)[0].
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bert, type BertConfig } from '../../src/models/bert.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { WordPieceTokenizer } from '../../src/tokenizers/wordpiece.ts';
import { isNextProbability } from '../../src/infer/nsp.ts';
import { noGrad } from '../../src/tensor/tensor.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures', 'bert-tiny');
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as BertConfig;
const weights = readSafetensors(join(dir, 'model.safetensors'));
const model = new Bert(config);
model.loadStateDict(new Map(weights.names.map((n) => [n, weights.getFloat32(n)] as const)));
const tokenizer = new WordPieceTokenizer({ vocab: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'dog', 'ran', '.'] });

test('nsp: an empty or whitespace-only sentence is refused, naming which one', () => {
  assert.throws(() => isNextProbability(model, tokenizer, '', 'the dog ran.'), { name: 'RangeError', message: 'nsp: the first sentence (A) is empty' });
  assert.throws(() => isNextProbability(model, tokenizer, 'the cat sat.', ' \t'), { name: 'RangeError', message: 'nsp: the second sentence (B) is empty (only whitespace)' });
});

test('nsp: p(is next) = softmax of the seq_relationship logits of [CLS] A [SEP] B [SEP], index 0', () => {
  const p = isNextProbability(model, tokenizer, 'the cat sat.', 'the dog ran.');
  const ids = Int32Array.from([2, 5, 6, 7, 10, 3, 5, 8, 9, 10, 3]);
  const types = Int32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  model.eval();
  const [a, b] = noGrad(() => model.forward({ inputIds: ids, tokenTypeIds: types, batch: 1, length: ids.length })).seqRelationshipLogits.data;
  assert.ok(Math.abs(p - 1 / (1 + Math.exp(b! - a!))) < 1e-9, `${p}`);
});
