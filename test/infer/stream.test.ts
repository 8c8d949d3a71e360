import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { complete, streamCompletions, streamCompletionsAsync, type TextEvent } from '../../src/infer/decode.ts';

const texts = Array(30).fill(['the cat sat on the mat .', 'a dog ran after the cat .', 'héllo wörld — naïve café ☕']).flat();
const tokenizer = trainTokenizer({ type: 'bpe', vocabSize: 300, texts, minFrequency: 1 });
const model = new GPT({ ...gptPreset('tiny', { vocabSize: tokenizer.vocabSize, layers: 2, dims: 32, heads: 2, context: 64, dropout: 0 }), initializer_range: 0.2 }, 4).eval();

function collect(prompts: string[], o: Parameters<typeof complete>[3]) {
  const events: TextEvent[] = [];
  const it = streamCompletions(model, tokenizer, prompts, o);
  for (;;) {
    const r = it.next();
    if (r.done) return { events, results: r.value };
    events.push(r.value);
  }
}

test('streamed pieces concatenate to the completed text; one final event per prompt', () => {
  const prompts = ['the cat', 'héllo', ''];
  const o = { temperature: 1, seed: 3, maxTokens: 30 };
  const { events, results } = collect(prompts, o);
  assert.deepEqual(results, complete(model, tokenizer, prompts, o));
  for (let i = 0; i < prompts.length; i++) {
    const mine = events.filter((e) => e.index === i);
    assert.equal(mine.map((e) => e.text).join(''), results[i]!.text);
    assert.equal(mine.filter((e) => e.finishReason).length, 1);
    assert.equal(mine.at(-1)!.finishReason, results[i]!.finishReason);
  }
  assert.equal(results[0]!.promptTokens, tokenizer.encode('the cat', null, { addSpecialTokens: false }).ids.length);
});

test('a stop string ends the text before it and never leaks into the stream', () => {
  const base = complete(model, tokenizer, ['the cat'], { temperature: 0, maxTokens: 30 })[0]!;
  assert.ok(base.text.length > 8, base.text);
  const stop = base.text.slice(4, 7);
  const { events, results } = collect(['the cat'], { temperature: 0, maxTokens: 30, stop: [stop] });
  const expected = base.text.slice(0, base.text.indexOf(stop));
  assert.equal(results[0]!.text, expected);
  assert.equal(results[0]!.finishReason, 'stop');
  assert.equal(events.map((e) => e.text).join(''), expected);
});

test('the async stream yields between tokens and stops when aborted', async () => {
  const ctrl = new AbortController();
  const seen: TextEvent[] = [];
  const it = streamCompletionsAsync(model, tokenizer, ['the cat'], { temperature: 1, seed: 1, maxTokens: 60, signal: ctrl.signal });
  let result: unknown;
  for (;;) {
    const r = await it.next();
    if (r.done) { result = r.value; break; }
    seen.push(r.value);
    if (seen.length === 3) ctrl.abort();
  }
  assert.equal(result, null);
  assert.equal(seen.length, 3);
  assert.ok(!seen.some((e) => e.finishReason));
});
