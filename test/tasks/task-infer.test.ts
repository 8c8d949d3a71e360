/**
 * `primer classify` and `primer tag` on input they cannot use: an empty or whitespace-only --text is
 * refused by its position before anything is printed (a byte-level tokenizer would otherwise label
 * "   " as if it were a review, and "" failed deep in batching without naming the input).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SequenceClassifier, TokenClassifier } from '../../src/models/heads.ts';
import { loadBackbone, saveTaskModelDir } from '../../src/models/model-dir.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { classifyTexts, tagTexts } from '../../src/tasks/task-infer.ts';
import { makeTinyModelDir } from '../adapt/fixtures.ts';
import { primerInProcess as primer } from '../helpers/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-task-infer-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const base = makeTinyModelDir(root);
const tokenizer = loadTokenizer(base);
const clfDir = join(root, 'clf');
saveTaskModelDir(clfDir, new SequenceClassifier(loadBackbone(base), ['neg', 'pos'], { seed: 1 }), tokenizer);
const tagDir = join(root, 'tagger');
saveTaskModelDir(tagDir, new TokenClassifier(loadBackbone(base), ['O', 'X'], { seed: 1 }), tokenizer);

test('classify: an empty or whitespace-only --text is refused by its number, nothing printed, exit 1', async () => {
  let r = await primer(['classify', '--model', clfDir, '--text', '']);
  assert.equal(r.error, 'primer: error: classify: text 1 is empty');
  assert.equal(r.exitCode, 1);
  r = await primer(['classify', '--model', clfDir, '--text', 'the sky is blue', '   ']);
  assert.equal(r.error, 'primer: error: classify: text 2 is empty (only whitespace)');
  assert.deepEqual(r.out, [], 'no text is classified when one is refused');
  assert.equal(r.exitCode, 1);
  r = await primer(['classify', '--model', clfDir, '--text', 'the sky is blue', ' snow ']);
  assert.equal(r.error, null);
  assert.equal(r.out.length, 2);
  assert.match(r.out[1]!, /^(neg|pos)\t\d\.\d{4}\t snow $/);
});

test('tag: an empty or whitespace-only --text is refused by its number too', async () => {
  let r = await primer(['tag', '--model', tagDir, '--text', 'the sky', '']);
  assert.equal(r.error, 'primer: error: tag: text 2 is empty');
  assert.deepEqual(r.out, []);
  assert.equal(r.exitCode, 1);
  r = await primer(['tag', '--model', tagDir, '--text', '\t ']);
  assert.equal(r.error, 'primer: error: tag: text 1 is empty (only whitespace)');
  r = await primer(['tag', '--model', tagDir, '--text', 'the sky']);
  assert.equal(r.error, null);
  assert.match(r.out[0]!, /^the\/(O|X) sky\/(O|X)$/);
});

test('classifyTexts and tagTexts refuse blank texts in the library as well', () => {
  const clf = new SequenceClassifier(loadBackbone(base), ['neg', 'pos'], { seed: 1 });
  assert.throws(() => classifyTexts(clf, tokenizer, ['snow', ' \n']), { name: 'RangeError', message: 'classify: text 2 is empty (only whitespace)' });
  assert.equal(classifyTexts(clf, tokenizer, ['snow'])[0]!.text, 'snow');
  const tagger = new TokenClassifier(loadBackbone(base), ['O', 'X'], { seed: 1 });
  assert.throws(() => tagTexts(tagger, tokenizer, ['']), { name: 'RangeError', message: 'tag: text 1 is empty' });
});
