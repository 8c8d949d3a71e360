import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { KVCache } from '../../src/infer/kv-cache.ts';
import { ContextOverflowError, decodeSteps, generateBatchIds, slideWindowStart, applyRepetitionPenalty } from '../../src/infer/decode.ts';

const N = 24;
function tinyModel(seed = 5): GPT {
  // Larger init than the default so logits differ clearly between tokens (no near-ties in argmax).
  const cfg = { ...gptPreset('tiny', { vocabSize: 50, layers: 2, dims: 32, heads: 4, context: N, dropout: 0 }), initializer_range: 0.3 };
  return new GPT(cfg, seed).eval();
}

function fullLogits(model: GPT, ctx: readonly number[]): Float32Array {
  return noGrad(() => withScope(() => {
    const { logits } = model.forward(Int32Array.from(ctx), 1, ctx.length);
    return Float32Array.from(logits.data);
  }));
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function cached(model: GPT, caches: KVCache[], ids: number[], t: number, lastOnly = false): Float32Array {
  return noGrad(() => withScope(() => Float32Array.from(model.forward(Int32Array.from(ids), caches.length, t, undefined, { cache: caches, lastOnly }).logits.data)));
}

test('prefill + cached steps reproduce the uncached logits at every position', () => {
  const model = tinyModel();
  const ids = [3, 17, 8, 41, 0, 22, 9, 9, 30, 1];
  const reference = fullLogits(model, ids);
  const cache = KVCache.forModel(model);
  const prefill = cached(model, [cache], ids.slice(0, 6), 6);
  assert.ok(maxAbsDiff(prefill, reference.subarray(0, 6 * 50)) < 1e-5);
  for (let i = 6; i < ids.length; i++) {
    const step = cached(model, [cache], [ids[i]!], 1);
    assert.ok(maxAbsDiff(step, reference.subarray(i * 50, (i + 1) * 50)) < 1e-5, `position ${i}`);
  }
  assert.equal(cache.length, ids.length);
  assert.throws(() => cached(model, [cache, cache], [1, 2], 1), /a cache appears twice/);
  assert.throws(() => cached(model, [cache], new Array(15).fill(1), 15), /holds 10 tokens; 15 more exceed its capacity 24/);
});

test('one batched cached step over sequences of different lengths equals each sequence alone, to the bit', () => {
  const model = tinyModel(3);
  const prompts = [[1, 2, 3, 4, 5, 6, 7], [40], [9, 9, 9], [17, 3], [5, 6, 7, 8, 9], [11, 12, 13, 14]];
  const caches = prompts.map(() => KVCache.forModel(model));
  prompts.forEach((p, i) => cached(model, [caches[i]!], p, p.length, true));
  const next = prompts.map((_, i) => (i * 7) % 50);
  const together = cached(model, caches, next, 1);
  prompts.forEach((p, i) => {
    const alone = KVCache.forModel(model);
    cached(model, [alone], p, p.length, true);
    const row = cached(model, [alone], [next[i]!], 1);
    assert.deepEqual(together.subarray(i * 50, (i + 1) * 50), row, `sequence ${i}`);
    assert.ok(maxAbsDiff(row, fullLogits(model, [...p, next[i]!]).subarray(p.length * 50)) < 1e-5);
    assert.equal(caches[i]!.length, p.length + 1);
  });
});

test('the attention hook reports each layer\'s probabilities, cached or not', () => {
  const model = tinyModel();
  const ids = [3, 17, 8, 41, 0];
  const seen: Array<{ layer: number; probs: Float64Array; shape: readonly number[] }> = [];
  noGrad(() => withScope(() => model.forward(Int32Array.from(ids), 1, 5, undefined, { onAttention: (layer, probs, shape) => seen.push({ layer, probs: Float64Array.from(probs), shape }) })));
  assert.deepEqual(seen.map((s) => [s.layer, ...s.shape]), [[0, 1, 4, 5, 5], [1, 1, 4, 5, 5]]);
  for (const { probs } of seen) {
    for (let r = 0; r < 4 * 5; r++) {
      const row = probs.subarray(r * 5, r * 5 + 5);
      const i = r % 5;
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.ok(row.subarray(i + 1).every((p) => p === 0), 'causal: no weight on later tokens');
    }
  }
  const cachedSeen: Float64Array[] = [];
  noGrad(() => withScope(() => model.forward(Int32Array.from(ids), 1, 5, undefined, { cache: [KVCache.forModel(model)], onAttention: (_l, p) => cachedSeen.push(Float64Array.from(p)) })));
  assert.ok(maxAbsDiff(cachedSeen[1]!, seen[1]!.probs) < 1e-6);
});

test('greedy: cached and uncached generation agree in tokens and logits, across the context boundary', () => {
  const model = tinyModel();
  const prompt = [4, 11, 2, 33, 7];
  const maxTokens = 45; // 5 + 45 tokens > N = 24: the window slides twice
  for (const slideBy of [0, 6]) {
    const cachedLogits: Float32Array[] = [];
    const cachedIds: number[] = [];
    for (const ev of decodeSteps(model, [prompt], { temperature: 0, maxTokens, slideBy }, (l) => cachedLogits.push(Float32Array.from(l)))) {
      cachedIds.push(ev.ids[0]!);
    }
    // Uncached: the documented window policy, re-running the whole window every step.
    const tokens = [...prompt];
    let start = 0;
    const uncachedIds: number[] = [];
    let worst = 0;
    for (let s = 0; s < maxTokens; s++) {
      const ctx = tokens.slice(start);
      assert.ok(ctx.length <= N);
      const all = fullLogits(model, ctx);
      const last = all.subarray((ctx.length - 1) * 50, ctx.length * 50);
      worst = Math.max(worst, maxAbsDiff(cachedLogits[s]!, last));
      const id = argmax(last);
      uncachedIds.push(id);
      tokens.push(id);
      start = slideWindowStart(start, tokens.length, N, slideBy);
    }
    assert.deepEqual(cachedIds, uncachedIds, `slideBy ${slideBy}`);
    assert.ok(worst < 1e-5, `slideBy ${slideBy}: max logit difference ${worst}`);
    assert.ok(start > 0, 'the window slid');
  }
});

test("contextOverflow 'error' throws a clear error when the context is full", () => {
  const model = tinyModel();
  assert.throws(() => generateBatchIds(model, [[1, 2, 3]], { temperature: 0, maxTokens: 40, contextOverflow: 'error' }),
    (e: Error) => e instanceof ContextOverflowError && /context is full \(24 tokens/.test(e.message));
  assert.throws(() => generateBatchIds(model, [new Array(25).fill(1)], { maxTokens: 1 }), /25 tokens, more than the model's context of 24/);
  assert.throws(() => generateBatchIds(model, [[1, 99]], {}), /token 99 is outside the vocabulary/);
  assert.throws(() => generateBatchIds(model, [[1]], { topP: 0 }), /topP/);
});

test('a batch of prompts of different lengths gives each prompt its single-prompt result', () => {
  const model = tinyModel(9);
  // Ten rows: the decode GEMMs run in row chunks of 8 and 2; each prompt is pre-filled alone.
  const prompts = [[5], [1, 2, 3, 4, 5, 6, 7], [40, 41, 42], [9, 9], [17, 3, 28, 44], [0], [8, 8, 1], [30], [2, 4], [6, 7, 9]];
  for (const o of [{ temperature: 0 }, { temperature: 0.9, topK: 10, topP: 0.9, seed: 7 }]) {
    const batched = generateBatchIds(model, prompts, { ...o, maxTokens: 10 });
    const single = prompts.map((p) => generateBatchIds(model, [p], { ...o, maxTokens: 10 })[0]!);
    assert.deepEqual(batched, single);
    assert.equal(batched[0]!.ids.length, 10);
  }
});

test('sampling controls: seed determinism, top-k 1 = greedy, stop ids, repetition penalty', () => {
  const model = tinyModel(2);
  const p = [[3, 4, 5]];
  const a = generateBatchIds(model, p, { temperature: 1.2, seed: 1, maxTokens: 12 })[0]!.ids;
  const b = generateBatchIds(model, p, { temperature: 1.2, seed: 1, maxTokens: 12 })[0]!.ids;
  const c = generateBatchIds(model, p, { temperature: 1.2, seed: 2, maxTokens: 12 })[0]!.ids;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const greedy = generateBatchIds(model, p, { temperature: 0, maxTokens: 12 })[0]!.ids;
  assert.deepEqual(generateBatchIds(model, p, { temperature: 1, topK: 1, seed: 3, maxTokens: 12 })[0]!.ids, greedy);
  const stopped = generateBatchIds(model, p, { temperature: 0, maxTokens: 12, stopIds: [greedy[3]!] })[0]!;
  assert.deepEqual(stopped, { ids: greedy.slice(0, greedy.indexOf(greedy[3]!)), finishReason: 'stop' });
  const row = Float32Array.of(2, -2, 1);
  applyRepetitionPenalty(row, [0, 1, 0], 2);
  assert.deepEqual([...row], [1, -4, 1]);
  // A strong penalty forbids repeats while fresh tokens remain.
  const penalised = generateBatchIds(model, [[0]], { temperature: 0, maxTokens: 20, repetitionPenalty: 1e6 })[0]!.ids;
  assert.equal(new Set([0, ...penalised]).size, penalised.length + 1);
});
