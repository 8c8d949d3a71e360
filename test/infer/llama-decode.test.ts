/**
 * KV-cache decoding of Llama-family models on ../shared/fixtures/llama-tiny (grouped-query 4/2, tied
 * head) and qwen2-tiny (multi-query 4/1, q/k/v biases, untied head): cached prefill + steps give the
 * logits of a full forward at every position (within 1e-5), greedy generation equals greedy tokens
 * recomputed without a cache, rows decode the same alone or batched, and caches grow on demand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setBackend, type BackendName } from '../../src/backend/index.ts';
import { loadAnyModelDir } from '../../src/models/load.ts';
import type { Llama } from '../../src/models/llama.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { KVCache } from '../../src/infer/kv-cache.ts';
import { generateIds } from '../../src/infer/generate.ts';
import { generateBatchIds } from '../../src/infer/decode.ts';
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');

function load(name: string): Llama {
  const loaded = loadAnyModelDir(join(fixtures, name));
  assert.equal(loaded.kind, 'llama');
  return (loaded.model as Llama).eval();
}

function fullLogits(model: Llama, ctx: readonly number[]): Float32Array {
  return noGrad(() => withScope(() => Float32Array.from(model.forward(Int32Array.from(ctx), 1, ctx.length).logits.data)));
}

function cachedLogits(model: Llama, caches: KVCache[], ids: readonly number[], t: number, lastOnly = false): Float32Array {
  return noGrad(() => withScope(() => Float32Array.from(
    model.forward(Int32Array.from(ids), caches.length, t, undefined, { cache: caches, lastOnly }).logits.data)));
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

/** Greedy continuation with a full forward over the whole sequence at every step (no cache). */
function greedyUncached(model: Llama, prompt: readonly number[], n: number): { ids: number[]; logits: Float32Array[] } {
  const v = model.config.vocab_size;
  const seq = [...prompt];
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const all = fullLogits(model, seq);
    const row = all.slice((seq.length - 1) * v, seq.length * v);
    logits.push(row);
    const id = argmax(row);
    ids.push(id);
    seq.push(id);
  }
  return { ids, logits };
}

for (const backendName of ['native', 'reference'] as BackendName[]) {
  for (const fixture of ['llama-tiny', 'qwen2-tiny']) {
    test(`${fixture}: cached prefill and steps reproduce the full forward's logits at every position (${backendName})`, () => {
      setBackend(backendName);
      const model = load(fixture);
      const v = model.config.vocab_size;
      const ids = [1, 17, 8, 41, 5, 22, 9, 9, 30, 3, 60, 2, 44];
      const reference = fullLogits(model, ids);
      const cache = KVCache.forModel(model);
      assert.equal(cache.heads, model.config.num_key_value_heads, 'one cached head per key/value head');
      const prefill = cachedLogits(model, [cache], ids.slice(0, 6), 6);
      let worst = maxAbsDiff(prefill, reference.subarray(0, 6 * v));
      for (let i = 6; i < ids.length; i++) {
        const step = cachedLogits(model, [cache], [ids[i]!], 1);
        worst = Math.max(worst, maxAbsDiff(step, reference.subarray(i * v, (i + 1) * v)));
      }
      assert.ok(worst < 1e-5, `${fixture}: max |Δlogit| ${worst.toExponential(2)}`);
      assert.equal(cache.length, ids.length);
      assert.throws(() => cachedLogits(model, [cache, cache], [1, 2], 1), /a cache appears twice/);
      assert.throws(() => cachedLogits(model, [cache], new Array(60).fill(1), 60), /holds 13 tokens; 60 more exceed its capacity 64/);
    });

    test(`${fixture}: greedy generateIds equals greedy tokens recomputed without a cache (${backendName})`, () => {
      setBackend(backendName);
      const model = load(fixture);
      const prompt = [1, 14, 27, 3];
      const n = 20;
      const want = greedyUncached(model, prompt, n);
      assert.deepEqual(generateIds(model, prompt, { temperature: 0, maxTokens: n }), want.ids);
      // The same steps through a cache: each step's logits within 1e-5 of the uncached ones.
      const cache = KVCache.forModel(model);
      let row = cachedLogits(model, [cache], prompt, prompt.length, true);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        worst = Math.max(worst, maxAbsDiff(row, want.logits[i]!));
        row = cachedLogits(model, [cache], [want.ids[i]!], 1);
      }
      assert.ok(worst < 1e-5, `${fixture}: max |Δlogit| over ${n} steps ${worst.toExponential(2)}`);
    });
  }
}

test('Llama: a batched cached step over sequences of different lengths equals each sequence alone, to the bit', () => {
  setBackend('native');
  const model = load('llama-tiny');
  const v = model.config.vocab_size;
  const prompts = [[1, 2, 3, 4, 5, 6, 7], [40], [9, 9, 9], [17, 3], [5, 6, 7, 8, 9]];
  const caches = prompts.map(() => KVCache.forModel(model));
  prompts.forEach((p, i) => cachedLogits(model, [caches[i]!], p, p.length, true));
  const next = [11, 12, 13, 14, 15];
  const batched = cachedLogits(model, caches, next, 1);
  prompts.forEach((p, i) => {
    const alone = KVCache.forModel(model);
    cachedLogits(model, [alone], p, p.length, true);
    const row = cachedLogits(model, [alone], [next[i]!], 1);
    assert.deepEqual(Array.from(row), Array.from(batched.subarray(i * v, (i + 1) * v)), `row ${i}`);
  });
  // generateBatchIds (one DecodeBatch) gives each prompt the tokens it gets alone.
  const together = generateBatchIds(model, prompts, { temperature: 0, maxTokens: 8 });
  prompts.forEach((p, i) => assert.deepEqual(together[i]!.ids, generateIds(model, p, { temperature: 0, maxTokens: 8 }), `prompt ${i}`));
});

test('KVCache grows on demand and keeps what it holds; sliding past the context re-encodes the window', () => {
  setBackend('native');
  const model = load('qwen2-tiny');
  const v = model.config.vocab_size;
  const ids = Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % v);
  const reference = fullLogits(model, ids);
  const cache = KVCache.forModel(model, 64, 4);
  assert.equal(cache.capacity, 4);
  cache.reserve(3);
  cachedLogits(model, [cache], ids.slice(0, 3), 3);
  let worst = 0;
  for (let i = 3; i < ids.length; i++) {
    cache.reserve(i + 1);
    worst = Math.max(worst, maxAbsDiff(cachedLogits(model, [cache], [ids[i]!], 1), reference.subarray(i * v, (i + 1) * v)));
  }
  assert.ok(worst < 1e-5, `max |Δlogit| ${worst.toExponential(2)}`);
  assert.deepEqual([cache.capacity, cache.maxCapacity], [64, 64]); // 4 → 8 → 16 → 32 → 64
  assert.throws(() => cache.reserve(65), /65 tokens exceed its capacity 64/);
  // 70 tokens from a 64-token context: past it, every step re-encodes the last 64 tokens (slideBy 0),
  // so the last token is what a full forward over the last 64 tokens predicts.
  const out = generateIds(model, [1, 2, 3], { temperature: 0, maxTokens: 70 });
  const ctx = [1, 2, 3, ...out.slice(0, -1)].slice(-64);
  assert.equal(out[out.length - 1], argmax(fullLogits(model, ctx).subarray((ctx.length - 1) * v)));
});

test('untied heads decode with lm_head, not the token embedding (qwen2-tiny, a GPT with tie_word_embeddings false)', () => {
  setBackend('native');
  const qwen = load('qwen2-tiny');
  assert.ok(qwen.lm_head !== null);
  const gpt = new GPT({ ...gptPreset('tiny', { vocabSize: 60, layers: 1, dims: 32, heads: 4, context: 32, dropout: 0 }), initializer_range: 0.3, tie_word_embeddings: false }, 2).eval();
  assert.ok(gpt.lmHead !== null);
  for (const model of [qwen, gpt]) {
    const prompt = [3, 14, 15];
    const v = model.config.vocab_size;
    const seq = [...prompt];
    for (let i = 0; i < 8; i++) {
      const all = noGrad(() => withScope(() => Float32Array.from(model.forward(Int32Array.from(seq), 1, seq.length).logits.data)));
      seq.push(argmax(all.subarray((seq.length - 1) * v)));
    }
    assert.deepEqual(generateIds(model, prompt, { temperature: 0, maxTokens: 8 }), seq.slice(prompt.length), model.constructor.name);
  }
});
