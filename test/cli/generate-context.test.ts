/**
 * `primer generate` with a prompt longer than the model's context: with or without --stop, the
 * prompt is cropped to its last n_positions tokens (nanoGPT-style), a one-line notice on stderr says
 * how many were dropped, and --stop gives the plain text cut before the stop string (the same tokens:
 * the same sliding window). The server answers 400 for such a prompt instead (test/serve/api.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pretrainTinyGpt } from '../tasks/tiny-lm.ts';
import { primerInProcess } from '../helpers/cli.ts';
import { loadAnyModelDir } from '../../src/models/load.ts';
import { loadTokenizerJson } from '../../src/data/tokenizer.ts';
import { generateIds } from '../../src/infer/generate.ts';
import { encodePrompt } from '../../src/infer/decode.ts';
import { decoderContext } from '../../src/infer/kv-cache.ts';
import type { GPT } from '../../src/models/gpt.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-generate-context-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const trained = pretrainTinyGpt(root, { steps: 60 });

const turn = 'Review: the food was very good\nSentiment: positive\n\nReview: the service was awful\nSentiment: negative\n\n';
const long = turn.repeat(5) + 'Review: the film';

test('generate: an over-long prompt keeps its last context tokens, with and without --stop, and says so on stderr', async () => {
  const dir = await trained;
  const model = loadAnyModelDir(dir).model as GPT;
  const tokenizer = loadTokenizerJson(dir);
  const n = decoderContext(model);
  assert.equal(n, 64);
  const ids = encodePrompt(tokenizer, long);
  assert.ok(ids.length > n, `${ids.length} prompt tokens`);
  const notice = `notice: the prompt has ${ids.length} tokens, more than the model's context of ${n}; its first ${ids.length - n} tokens are dropped`;

  const args = ['generate', '--model', dir, '--prompt', long, '--max-tokens', '60', '--temperature', '0'];
  const plain = await primerInProcess(args);
  assert.equal(plain.exitCode, 0, plain.error ?? '');
  assert.deepEqual(plain.err, [notice]);
  // Greedy tokens from the prompt's last n tokens alone (the window then slides by one each step).
  const eos = tokenizer.tokenToId(tokenizer.specialTokens.eos!)!;
  const expected = tokenizer.decode(generateIds(model, ids.slice(-n), { temperature: 0, maxTokens: 60, stopId: eos }), { skipSpecialTokens: true });
  assert.ok(expected.length > 20, JSON.stringify(expected));
  assert.deepEqual(plain.out, [long + expected]);

  // A stop string late in the text: the --stop path decodes the same tokens through the same window.
  const stop = expected.slice(-6, -2);
  const at = expected.indexOf(stop);
  assert.ok(at > 10, `${JSON.stringify(stop)} first at ${at} of ${JSON.stringify(expected)}`);
  const stopped = await primerInProcess([...args, '--stop', 'never-there', stop]);
  assert.equal(stopped.exitCode, 0, stopped.error ?? '');
  assert.deepEqual(stopped.err, [notice]);
  assert.deepEqual(stopped.out, [long + expected.slice(0, at)]);
});

test('generate: a prompt that fits the context gets no notice, and --stop cuts the plain text past a slide', async () => {
  const dir = await trained;
  const prompt = turn + 'Review: the film';
  const args = ['generate', '--model', dir, '--prompt', prompt, '--max-tokens', '60', '--temperature', '0'];
  const plain = await primerInProcess(args);
  assert.equal(plain.exitCode, 0, plain.error ?? '');
  assert.deepEqual(plain.err, []);
  const text = plain.out[0]!.slice(prompt.length);
  // The prompt and 60 new tokens overflow the window of 64: the tail of the text comes after slides.
  assert.ok(encodePrompt(loadTokenizerJson(dir), prompt).length + 60 > 64);
  const stop = text.slice(-6, -2);
  const stopped = await primerInProcess([...args, '--stop', stop]);
  assert.deepEqual(stopped.err, []);
  assert.deepEqual(stopped.out, [prompt + text.slice(0, text.indexOf(stop))]);
});
