/** Sampling: greedy, temperature, top-k, top-p, seeds; generation crops the context window. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleToken, generateIds } from '../../src/infer/generate.ts';
import { Rng } from '../../src/util/random.ts';
import { tinyGpt } from './helpers.ts';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);

test('temperature 0 is argmax; top-k 1 and a tiny top-p are argmax too', () => {
  const rng = new Rng(1);
  for (let i = 0; i < 20; i++) {
    assert.equal(sampleToken(logits, { temperature: 0 }, rng), 1);
    assert.equal(sampleToken(logits, { topK: 1 }, rng), 1);
    assert.equal(sampleToken(logits, { topP: 0.01 }, rng), 1);
  }
});

test('sampling frequencies follow softmax(z / T) restricted to top-k / top-p', () => {
  const count = (o: Parameters<typeof sampleToken>[1], n = 20000) => {
    const rng = new Rng(7);
    const c = new Array(logits.length).fill(0);
    for (let i = 0; i < n; i++) c[sampleToken(logits, o, rng)]++;
    return c.map((x) => x / n);
  };
  const softmax = (z: number[]) => {
    const e = z.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  const full = count({ temperature: 1 });
  softmax([...logits]).forEach((p, i) => assert.ok(Math.abs(full[i]! - p) < 0.015, `token ${i}: ${full[i]} vs ${p}`));
  const hot = count({ temperature: 2 });
  softmax([...logits].map((z) => z / 2)).forEach((p, i) => assert.ok(Math.abs(hot[i]! - p) < 0.015, `T=2 token ${i}`));
  const k2 = count({ topK: 2 });
  assert.deepEqual(k2.map((x) => x > 0), [false, true, false, false, true]);
  const pTop2 = softmax([3, 2.9]);
  assert.ok(Math.abs(k2[1]! - pTop2[0]!) < 0.015);
  // p(1) ≈ 0.40, p(4) ≈ 0.36: a nucleus of 0.6 needs both, nothing else.
  assert.deepEqual(count({ topP: 0.6 }).map((x) => x > 0), [false, true, false, false, true]);
});

test('generation is reproducible by seed, respects maxTokens and runs past the context window', () => {
  const model = tinyGpt(2, 0); // context 16
  const prompt = Array.from({ length: 12 }, (_, i) => i);
  const a = generateIds(model, prompt, { maxTokens: 10, seed: 5 });
  assert.equal(a.length, 10);
  assert.ok(a.every((id) => id >= 0 && id < 64));
  assert.deepEqual(generateIds(model, prompt, { maxTokens: 10, seed: 5 }), a);
  assert.equal(model.training, true, 'training mode restored');
  assert.throws(() => generateIds(model, [70], { maxTokens: 1 }), /prompt token 70 is outside the vocabulary \(size 64\)/);
  assert.throws(() => generateIds(model, [1], { topP: 0 }), /topP must be in \(0, 1\]/);
  const greedy = generateIds(model, prompt, { maxTokens: 3, temperature: 0, stopId: -1 });
  assert.deepEqual(generateIds(model, prompt, { maxTokens: 3, temperature: 0, seed: 99 }), greedy, 'greedy ignores the seed');
});
