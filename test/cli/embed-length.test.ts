/**
 * `primer embed` and a text longer than the model's context: refused, naming the text, its length and
 * the context (as /v1/embeddings answers 400), unless --max-length asks for truncation; a text that
 * fits is embedded whole (no silent cut at 256 tokens). On the serving tests' tiny GPT (context 64)
 * and BERT (context 512), in-process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixtures } from '../serve/fixtures.ts';
import { primerInProcess } from '../helpers/cli.ts';
import { embedTexts, loadEmbedder } from '../../src/tasks/embed.ts';

const fx = buildFixtures();
const words = (k: number) => 'the '.repeat(k).trim();
const vectors = (out: string[]) => out.map((l) => JSON.parse(l) as number[]);
/** What the CLI prints for a vector (6 significant digits). */
const printed = (v: Float32Array) => Array.from(v, (x) => Number(x.toPrecision(6)));

test('embed: a text longer than the context is refused unless --max-length truncates it', async () => {
  const { backbone, tokenizer } = loadEmbedder(fx.gpt);
  const ids = (t: string) => tokenizer.encode(t).ids;
  let k = 1;
  while (ids(words(k)).length < 64) k++;
  const [fits, over] = [words(k), words(k + 1)];
  assert.equal(ids(fits).length, 64);
  const n = ids(over).length;
  assert.ok(n > 64);

  const refused = await primerInProcess(['embed', '--model', fx.gpt, '--text', 'the cat', over]);
  assert.equal(refused.exitCode, 1);
  assert.deepEqual(refused.out, []);
  assert.equal(refused.error, `primer: error: embed: text 2 has ${n} tokens, more than the model's context of 64 tokens; --max-length N embeds each text's first N tokens`);

  const whole = await primerInProcess(['embed', '--model', fx.gpt, '--text', fits]);
  assert.equal(whole.exitCode, 0, whole.error ?? '');
  assert.deepEqual(vectors(whole.out), [printed(embedTexts(backbone, tokenizer, [fits], { maxLength: 64 }).vectors)]);

  // Asked for: the first 64 tokens of the longer text are the whole of the fitting one, so the same vector.
  assert.deepEqual(ids(over).slice(0, 64), ids(fits));
  const cut = await primerInProcess(['embed', '--model', fx.gpt, '--max-length', '64', '--text', over]);
  assert.equal(cut.exitCode, 0, cut.error ?? '');
  assert.deepEqual(vectors(cut.out), vectors(whole.out));

  // The library's 'error' mode, which the CLI uses, names the limit it was given.
  assert.throws(() => embedTexts(backbone, tokenizer, ['the cat', over], { maxLength: 64, overflow: 'error' }),
    new RegExp(`^RangeError: embed: text 2 has ${n} tokens, more than the model's context of 64 tokens$`));
  assert.throws(() => embedTexts(backbone, tokenizer, [fits], { maxLength: 10, overflow: 'error' }), /^RangeError: embed: text 1 has 64 tokens, more than maxLength 10$/);
});

test('embed: a text that fits the context is embedded whole, not cut at 256 tokens', async () => {
  const { backbone, tokenizer } = loadEmbedder(fx.bert);
  const text = words(298);
  assert.equal(tokenizer.encode(text).ids.length, 300, '[CLS] + 298 words + [SEP]');
  const r = await primerInProcess(['embed', '--model', fx.bert, '--text', text]);
  assert.equal(r.exitCode, 0, r.error ?? '');
  const [v] = vectors(r.out);
  assert.deepEqual(v, printed(embedTexts(backbone, tokenizer, [text], { maxLength: 512 }).vectors));
  assert.notDeepEqual(v, printed(embedTexts(backbone, tokenizer, [text], { maxLength: 256 }).vectors));
});
