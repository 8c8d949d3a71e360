import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { buildFixtures, type Fixtures } from './fixtures.ts';
import { postJson, parseSse } from './helpers.ts';
import { createServer, type PrimerServer } from '../../src/serve/server.ts';
import { ModelLoadError } from '../../src/models/load.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';

let fx: Fixtures;
let server: PrimerServer;
let base: string;

before(async () => {
  fx = buildFixtures();
  server = await createServer({ models: [fx.gpt, fx.bert, fx.classifier], workers: 1, maxTokens: 256, bodyLimit: 4096 });
  base = await server.app.listen({ port: 0, host: '127.0.0.1' });
});
after(async () => {
  await server.close();
});

test('GET /health and /v1/models describe the served models', async () => {
  const health = await (await fetch(`${base}/health`)).json();
  assert.deepEqual(health, { status: 'ok', models: ['tiny-gpt', 'tiny-bert', 'tiny-sentiment'], workers: 1, busy: 0, sequences: 0, queued: 0, restarts: 0 });
  const models = await (await fetch(`${base}/v1/models`)).json();
  assert.equal(models.object, 'list');
  assert.deepEqual(models.data.map((m: { id: string; kind: string }) => [m.id, m.kind]), [['tiny-gpt', 'gpt2'], ['tiny-bert', 'bert'], ['tiny-sentiment', 'classifier']]);
  assert.deepEqual(models.data[2].labels, ['negative', 'positive']);
});

test('POST /v1/completions: OpenAI shape, seeded, and the stream carries the same text', async () => {
  const body = { model: 'tiny-gpt', prompt: ['the cat', 'once upon'], max_tokens: 12, temperature: 0.7, seed: 4 };
  const a = await postJson(base, '/v1/completions', body);
  assert.equal(a.status, 200);
  assert.equal(a.json.object, 'text_completion');
  assert.equal(a.json.choices.length, 2);
  assert.equal(a.json.choices[0].finish_reason, 'length');
  assert.equal(a.json.usage.completion_tokens, 24);
  assert.equal(a.json.usage.total_tokens, a.json.usage.prompt_tokens + 24);
  const b = await postJson(base, '/v1/completions', body);
  assert.deepEqual(b.json.choices, a.json.choices);
  const s = await postJson(base, '/v1/completions', { ...body, stream: true });
  assert.equal(s.status, 200);
  assert.match(s.type, /^text\/event-stream/);
  const parsed = parseSse(s.text);
  assert.equal(parsed.done, true);
  assert.deepEqual(parsed.texts, a.json.choices.map((c: { text: string }) => c.text));
  assert.deepEqual(parsed.finish, ['length', 'length']);
  // stream_options.include_usage: one more chunk before [DONE], no choices, the usage of the plain response.
  const u = await postJson(base, '/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } });
  const chunks = u.text.split('\n\n').filter((b) => b.startsWith('data: {')).map((b) => JSON.parse(b.slice(6)));
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, a.json.usage);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === undefined), 'only the last chunk carries usage');
  const chat = await postJson(base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, temperature: 0, n: 2, stream: true, stream_options: { include_usage: true } });
  const last = JSON.parse(chat.text.split('\n\n').filter((b) => b.startsWith('data: {')).at(-1)!.slice(6));
  const plain = await postJson(base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, temperature: 0, n: 2 });
  assert.equal(last.object, 'chat.completion.chunk');
  assert.deepEqual(last.usage, plain.json.usage);
});

test('stop strings cut the text and finish with "stop"', async () => {
  const full = await postJson(base, '/v1/completions', { prompt: 'the cat', max_tokens: 16, temperature: 0 });
  const text: string = full.json.choices[0].text;
  const stop = text.slice(3, 6);
  assert.ok(stop.length === 3);
  const cut = await postJson(base, '/v1/completions', { prompt: 'the cat', max_tokens: 16, temperature: 0, stop: [stop] });
  assert.equal(cut.json.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.json.choices[0].finish_reason, 'stop');
});

test('the openai client completes a request and a streamed request, and gets embeddings', async () => {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  const r = await client.completions.create({ model: 'tiny-gpt', prompt: 'a quick brown', max_tokens: 6, temperature: 0 });
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage?.completion_tokens, 6);
  const stream = await client.completions.create({ model: 'tiny-gpt', prompt: 'a quick brown', max_tokens: 6, temperature: 0, stream: true });
  let streamed = '';
  let chunks = 0;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]!.text;
    chunks++;
  }
  assert.ok(chunks >= 1);
  assert.equal(streamed, r.choices[0]!.text);
  const e = await client.embeddings.create({ model: 'tiny-bert', input: ['the cat', 'the dog'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0]!.embedding.length, 32);
  const norm = Math.hypot(...e.data[0]!.embedding);
  assert.ok(Math.abs(norm - 1) < 1e-5, `unit norm, got ${norm}`);
});

test('embeddings: an input longer than the model\'s context is a 400 naming it, as OpenAI answers, not a silent truncation', async () => {
  const contexts = Object.fromEntries((await (await fetch(`${base}/v1/models`)).json()).data.map((m: { id: string; context_length: number }) => [m.id, m.context_length]));
  assert.deepEqual([contexts['tiny-gpt'], contexts['tiny-bert']], [64, 512]);
  // Causal LMs embed the text as written; a BERT counts its [CLS] and [SEP] too.
  const counters: Record<string, (t: string) => number> = {
    'tiny-gpt': (t) => loadTokenizer(fx.gpt).encode(t, null, { addSpecialTokens: false }).ids.length,
    'tiny-bert': (t) => loadTokenizer(fx.bert).encode(t).ids.length,
  };
  for (const [model, count] of Object.entries(counters)) {
    const n = contexts[model] as number;
    const words = (k: number) => 'the '.repeat(k).trim();
    let k = 1;
    while (count(words(k)) < n) k++;
    const [fits, over] = [words(k), words(k + 1)];
    assert.equal(count(fits), n, `${model}: an input of exactly the context`);
    const ok = await postJson(base, '/v1/embeddings', { model, input: ['the cat', fits] });
    assert.equal(ok.status, 200, ok.text.slice(0, 200));
    assert.deepEqual(ok.json.usage, { prompt_tokens: count('the cat') + n, total_tokens: count('the cat') + n });
    const long = count(over);
    assert.ok(long > n);
    const r = await postJson(base, '/v1/embeddings', { model, input: ['the cat', over] });
    assert.equal(r.status, 400, `${model}: ${r.text.slice(0, 200)}`);
    assert.match(r.type, /application\/json/);
    assert.deepEqual(r.json, { error: { message: `input 1 has ${long} tokens, more than the model's context of ${n} tokens`, type: 'invalid_request_error', param: null, code: null } });
    const single = await postJson(base, '/v1/embeddings', { model, input: over });
    assert.equal(single.status, 400);
    assert.equal(single.json.error.message, `input 0 has ${long} tokens, more than the model's context of ${n} tokens`);
  }
});

test('fill-mask and classify return probabilities', async () => {
  const fm = await postJson(base, '/v1/fill-mask', { text: 'the cat sat on the [MASK] .', top_k: 3 });
  assert.equal(fm.status, 200);
  const preds = fm.json.masks[0].predictions;
  assert.equal(preds.length, 3);
  assert.ok(preds[0].probability >= preds[1].probability && preds[1].probability >= preds[2].probability);
  assert.equal(typeof preds[0].token, 'string');
  const cl = await postJson(base, '/v1/classify', { input: ['what a wonderful day', 'the dog'] });
  assert.equal(cl.status, 200);
  assert.equal(cl.json.data.length, 2);
  const total = cl.json.data[0].scores.reduce((s: number, x: { probability: number }) => s + x.probability, 0);
  assert.ok(Math.abs(total - 1) < 1e-9);
  assert.ok(['negative', 'positive'].includes(cl.json.data[0].label));
});

test('attention maps: one causal row-stochastic matrix per layer and head', async () => {
  const r = await postJson(base, '/v1/attention', { text: 'the cat sat on the mat' });
  assert.equal(r.status, 200);
  const { probs, tokens, layers, heads } = r.json;
  assert.equal(probs.length, layers);
  assert.equal(probs[0].length, heads);
  const m: number[][] = probs[1][0];
  assert.equal(m.length, tokens.length);
  for (const [i, row] of m.entries()) {
    assert.ok(Math.abs(row.reduce((s, x) => s + x, 0) - 1) < 1e-9);
    assert.ok(row.slice(i + 1).every((x) => x === 0));
  }
});

test('bad input gets a 4xx JSON error', async () => {
  const cases: Array<[string, unknown, number, RegExp, Record<string, string>?]> = [
    ['/v1/completions', '{"prompt": "the cat", ', 400, /JSON/i],
    ['/v1/completions', { prompt: 5 }, 400, /prompt/],
    ['/v1/completions', { prompt: 'x', max_tokens: 'ten' }, 400, /max_tokens/],
    ['/v1/completions', { prompt: 'x', max_tokens: -1 }, 400, /max_tokens must be >= 0/],
    ['/v1/completions', { prompt: 'x', max_tokens: 1e9 }, 400, /max_tokens must be <= 256/],
    ['/v1/completions', { prompt: 'x', temperature: -1 }, 400, /temperature/],
    ['/v1/completions', {}, 400, /prompt/],
    ['/v1/completions', { prompt: 'the cat '.repeat(40), max_tokens: 1 }, 400, /more than the model's context of 64 tokens/],
    ['/v1/completions', { prompt: 'the cat '.repeat(40), max_tokens: 1, stream: true }, 400, /context of 64/],
    ['/v1/completions', { prompt: 'x', model: 'nope' }, 404, /model "nope" is not served/],
    ['/v1/completions', { prompt: 'x', model: 'tiny-bert' }, 400, /needs a GPT-2/],
    ['/v1/fill-mask', { text: 'no mask here' }, 400, /no \[MASK\]/],
    ['/v1/completions', { prompt: 'x'.repeat(5000) }, 413, /body/i],
    ['/v1/completions', 'prompt=x', 415, /content-type/i, { 'content-type': 'text/plain' }],
    ['/v1/nothing', {}, 404, /no route POST \/v1\/nothing/],
    // Options this server does not implement are refused rather than silently ignored.
    ['/v1/completions', { prompt: 'x', logprobs: 2 }, 400, /logprobs are not supported/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 2 }, 400, /logprobs are not supported/],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }, 400, /response_format "json_object" is not supported/],
  ];
  for (const [path, body, status, message, headers] of cases) {
    const r = await postJson(base, path, body, headers);
    assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 60)} → ${r.text.slice(0, 200)}`);
    assert.match(r.type, /application\/json/);
    assert.match(r.json.error.message, message);
  }
  const get = await fetch(`${base}/missing`);
  assert.equal(get.status, 404);
  assert.equal((await get.json()).error.type, 'not_found');
  // The route exists, for another method: 405 with Allow, not 404.
  const wrongMethod = await fetch(`${base}/v1/completions`);
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('allow'), 'POST');
  assert.equal((await wrongMethod.json()).error.message, 'GET is not allowed on /v1/completions; use POST');
  const postModels = await postJson(base, '/v1/models', {});
  assert.equal(postModels.status, 405);
  assert.equal(postModels.json.error.type, 'method_not_allowed');
});

test('a full queue answers 429 and a slow request 504, as JSON', async () => {
  const busy = await createServer({ models: [fx.gpt], workers: 1, parallel: 1, maxQueue: 0, timeoutMs: 10, maxTokens: 512 });
  const url = await busy.app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const long = { prompt: 'the cat', max_tokens: 512, temperature: 0 };
    const [a, b] = await Promise.all([postJson(url, '/v1/completions', long), postJson(url, '/v1/completions', long)]);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [429, 504]);
    const limited = a.status === 429 ? a : b;
    assert.equal(limited.json.error.type, 'rate_limit_exceeded');
    const slow = a.status === 504 ? a : b;
    assert.match(slow.json.error.message, /timed out after 10 ms/);
  } finally {
    await busy.close();
  }
});

test('a crashed worker fails only its job and is replaced', async () => {
  const own = await createServer({ models: [fx.gpt], workers: 1 });
  const url = await own.app.listen({ port: 0, host: '127.0.0.1' });
  try {
    own.pool!.crashOneWorker();
    for (let i = 0; i < 200; i++) {
      const h = await (await fetch(`${url}/health`)).json();
      if (h.restarts === 1 && h.workers === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const h = await (await fetch(`${url}/health`)).json();
    assert.equal(h.restarts, 1);
    assert.equal(h.workers, 1);
    const r = await postJson(url, '/v1/completions', { prompt: 'the cat', max_tokens: 3 });
    assert.equal(r.status, 200);
    // Sampling from a random tiny model may hit end-of-text early: 1..3 tokens, with a finish reason.
    assert.ok(r.json.usage.completion_tokens >= 1 && r.json.usage.completion_tokens <= 3, `completion_tokens = ${r.json.usage.completion_tokens}`);
    assert.match(r.json.choices[0].finish_reason, /^(length|stop)$/);
  } finally {
    await own.close();
  }
});

test('a nonexistent model directory is a clear startup error', async () => {
  await assert.rejects(createServer({ models: ['/nonexistent/model-dir'] }), (e: Error) => e instanceof ModelLoadError && /model directory \/nonexistent\/model-dir does not exist/.test(e.message));
});
