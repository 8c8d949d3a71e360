import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import OpenAI from 'openai';
import { buildFixtures, type Fixtures } from './fixtures.ts';
import { postJson, parseSse } from './helpers.ts';
import { createServer, type PrimerServer } from '../../src/serve/server.ts';
import { Scheduler, type JobReply } from '../../src/serve/scheduler.ts';
import { describeModelDir, loadServeModel } from '../../src/serve/engine.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';

const KEY = 'test-key-123';
let fx: Fixtures;
let server: PrimerServer;
let base: string;
const auth = { authorization: `Bearer ${KEY}` };

before(async () => {
  fx = buildFixtures();
  server = await createServer({ models: [fx.gpt], workers: 1, parallel: 8, maxTokens: 5000, apiKey: KEY, bodyTimeoutMs: 1000 });
  base = await server.app.listen({ port: 0, host: '127.0.0.1' });
});
after(async () => {
  await server.close();
});

/** Tokens of a prompt as the server counts them (as written, no special tokens). */
const promptTokens = (text: string) => loadTokenizer(fx.gpt).encode(text, null, { addSpecialTokens: false }).ids.length;

/** A plain (non-streamed) long completion whose client leaves `afterMs` after it started decoding. */
async function abortPlainRequest(afterMs: number): Promise<void> {
  const plain = new AbortController();
  const pending = fetch(`${base}/v1/completions`, {
    method: 'POST', signal: plain.signal, headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ prompt: 'the cat', max_tokens: 5000, temperature: 0 }),
  }).catch(() => null);
  for (let i = 0; i < 200 && (await (await fetch(`${base}/health`)).json()).sequences !== 1; i++) await new Promise((r) => setTimeout(r, 10));
  if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
  plain.abort();
  await pending;
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { headers: auth })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `) || (labels === '' && l.startsWith(`${name}{`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

test('the API key: 401 JSON without it or with a wrong one, 200 with it; /health stays open', async () => {
  const none = await postJson(base, '/v1/completions', { prompt: 'the cat', max_tokens: 2 });
  assert.equal(none.status, 401);
  assert.equal(none.json.error.type, 'authentication_error');
  const wrong = await postJson(base, '/v1/completions', { prompt: 'the cat', max_tokens: 2 }, { authorization: 'Bearer nope' });
  assert.equal(wrong.status, 401);
  assert.equal((await fetch(`${base}/v1/models`)).status, 401);
  assert.equal((await fetch(`${base}/metrics`)).status, 401);
  const ok = await postJson(base, '/v1/completions', { prompt: 'the cat', max_tokens: 2, temperature: 0 }, auth);
  assert.equal(ok.status, 200);
  assert.equal((await fetch(`${base}/health`)).status, 200);
  // Percent-encoded paths reach the same routes (the router decodes them) and need the key too.
  for (const [method, url] of [['POST', '/%761/completions'], ['GET', '/%76%31/models'], ['GET', '/%6detrics'], ['GET', '/v1/%6dodels?x=1']] as const) {
    const r = await server.app.inject({ method, url, payload: method === 'POST' ? { prompt: 'the cat', max_tokens: 2 } : undefined });
    assert.equal(r.statusCode, 401, `${method} ${url}`);
  }
});

test('/metrics is Prometheus text and its counters move with requests', async () => {
  const label = 'route="/v1/completions",method="POST",status="200"';
  const before = { requests: await metric('primer_requests_total', label), tokens: await metric('primer_tokens_generated_total', 'model="tiny-gpt"'), ttft: await metric('primer_time_to_first_token_seconds_count', 'model="tiny-gpt"') };
  const r = await postJson(base, '/v1/completions', { prompt: 'once upon', max_tokens: 5, temperature: 0, stop: null }, auth);
  assert.equal(r.status, 200);
  const text = await (await fetch(`${base}/metrics`, { headers: auth })).text();
  assert.match(text, /# TYPE primer_queue_size gauge/);
  assert.match(text, /# TYPE primer_batch_current_size gauge/);
  assert.match(text, /# TYPE primer_request_duration_seconds histogram/);
  assert.match(text, /# TYPE primer_time_per_output_token_seconds histogram/);
  assert.equal(await metric('primer_requests_total', label), before.requests + 1);
  assert.equal(await metric('primer_tokens_generated_total', 'model="tiny-gpt"'), before.tokens + r.json.usage.completion_tokens);
  assert.equal(await metric('primer_time_to_first_token_seconds_count', 'model="tiny-gpt"'), before.ttft + 1);
});

test('chat completions with the openai client, plain and streamed, n choices', async () => {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
  const messages = [{ role: 'system' as const, content: 'be brief' }, { role: 'user' as const, content: 'the cat sat on' }];
  const r = await client.chat.completions.create({ model: 'tiny-gpt', messages, max_tokens: 8, temperature: 0, seed: 1 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.match(r.choices[0]!.finish_reason, /^(length|stop)$/);
  assert.ok(r.usage!.prompt_tokens > 5);
  const stream = await client.chat.completions.create({ model: 'tiny-gpt', messages, max_tokens: 8, temperature: 0, seed: 1, stream: true });
  let text = '';
  let role = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    role ||= chunk.choices[0]!.delta.role ?? '';
    text += chunk.choices[0]!.delta.content ?? '';
    finish = chunk.choices[0]!.finish_reason ?? finish;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, r.choices[0]!.message.content);
  assert.equal(finish, r.choices[0]!.finish_reason);
  const two = await client.chat.completions.create({ model: 'tiny-gpt', messages, max_tokens: 12, temperature: 1.5, seed: 3, n: 2 });
  assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
  const bad = await postJson(base, '/v1/chat/completions', { messages: [{ role: 'robot', content: 'hi' }] }, auth);
  assert.equal(bad.status, 400);
});

test('continuous batching: 4 requests decoded in one batch give exactly the tokens each gives alone', async () => {
  const m = loadServeModel(describeModelDir(fx.gpt));
  const prompts = ['the cat', 'a quick brown fox jumps', 'once', 'what a wonderful day , said'];
  const run = (jobs: string[]): Promise<number[][]> => new Promise((resolve) => {
    const out: number[][] = jobs.map(() => []);
    let left = jobs.length;
    let maxRunning = 0;
    const scheduler = new Scheduler(new Map([[m.info.id, m]]), (msg: JobReply) => {
      maxRunning = Math.max(maxRunning, scheduler.running);
      if ('result' in msg) {
        out[msg.id] = (msg.result as Array<{ ids: number[] }>)[0]!.ids;
        if (--left === 0) {
          if (jobs.length > 1) assert.equal(maxRunning, jobs.length, 'all requests were in the batch together');
          resolve(out);
        }
      }
    });
    // Submitted in one tick: all four are pre-filled before the first decoding step.
    jobs.forEach((p, id) => scheduler.submit(id, { type: 'complete', model: m.info.id, job: { prompts: [p], maxTokens: 24, temperature: 0, stopIds: [] } }));
  });
  const together = await run(prompts);
  for (const [i, p] of prompts.entries()) {
    const alone = (await run([p]))[0]!;
    assert.equal(alone.length, 24);
    assert.deepEqual(together[i], alone, `request ${i} (${p})`);
  }
});

test('concurrent HTTP requests share the batch and still answer as they would alone', async () => {
  const bodies = ['the cat', 'a dog', 'once upon', 'the mat'].map((prompt) => ({ prompt, max_tokens: 16, temperature: 0 }));
  const alone: string[] = [];
  for (const b of bodies) alone.push((await postJson(base, '/v1/completions', b, auth)).json.choices[0].text);
  const together = await Promise.all(bodies.map((b) => postJson(base, '/v1/completions', { ...b, stream: true }, auth)));
  assert.deepEqual(together.map((r) => parseSse(r.text).texts[0]), alone);
});

test('a slow request body is cut off after the body timeout while /health stays fast', async () => {
  const url = new URL(base);
  const socket = connect(Number(url.port), url.hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\nAuthorization: Bearer ${KEY}\r\n\r\n{`);
  let received = '';
  socket.on('data', (d) => { received += d; });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let open = true;
  void closed.then(() => { open = false; });
  const drip = setInterval(() => { if (open) socket.write(' '); }, 200);
  try {
    // While the slow client is connected, other requests are answered.
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.equal(open, true, 'the slow client is still connected');
    await closed;
    assert.match(received, /^HTTP\/1\.1 408/);
  } finally {
    clearInterval(drip);
    socket.destroy();
  }
});

test('a streaming client that disconnects stops its generation and is counted as status 499', async () => {
  const label = 'route="/v1/completions",method="POST",status="499"';
  const cancelledBefore = await metric('primer_requests_total', label);
  const ctrl = new AbortController();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', signal: ctrl.signal, headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ prompt: 'the cat', max_tokens: 5000, temperature: 0, stream: true }),
  });
  const reader = res.body!.getReader();
  await reader.read();
  const running = (await (await fetch(`${base}/health`)).json()).sequences;
  assert.equal(running, 1);
  ctrl.abort();
  let h = { sequences: -1, busy: -1 };
  for (let i = 0; i < 100 && h.sequences !== 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    h = await (await fetch(`${base}/health`)).json();
  }
  assert.equal(h.sequences, 0, 'the sequence left the batch');
  assert.equal(h.busy, 0);
  assert.equal(await metric('primer_requests_total', label), cancelledBefore + 1);
  // The same for a plain (non-streamed) request whose client leaves while it runs.
  await abortPlainRequest(0);
  let counted = 0;
  for (let i = 0; i < 100 && counted !== cancelledBefore + 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    counted = await metric('primer_requests_total', label);
  }
  assert.equal(counted, cancelledBefore + 2);
});

test('tokens decoded before a client leaves count in primer_tokens_generated_total, streamed and plain', async () => {
  const tokens = () => metric('primer_tokens_generated_total', 'model="tiny-gpt"');
  const prompts = () => metric('primer_prompt_tokens_total', 'model="tiny-gpt"');
  const cancelled = () => metric('primer_requests_total', 'route="/v1/completions",method="POST",status="499"');
  /** Waits until the server has counted the cancel (the worker answers it after the client left). */
  const settled = async (count: number) => {
    for (let i = 0; i < 200 && (await cancelled()) !== count; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(await cancelled(), count);
  };

  const before = { tokens: await tokens(), prompts: await prompts(), cancelled: await cancelled() };
  const ctrl = new AbortController();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', signal: ctrl.signal, headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ prompt: 'the cat', max_tokens: 5000, temperature: 0, stream: true }),
  });
  const reader = res.body!.getReader();
  let received = '';
  while ((received.match(/^data: \{/gm) ?? []).length < 3) received += new TextDecoder().decode((await reader.read()).value);
  // Each chunk carries the text of at least one new token.
  const chunks = (received.match(/^data: \{/gm) ?? []).length;
  ctrl.abort();
  await settled(before.cancelled + 1);
  const streamed = (await tokens()) - before.tokens;
  assert.ok(streamed >= chunks && streamed < 5000, `${streamed} tokens counted after ${chunks} chunks`);
  assert.equal(await prompts(), before.prompts + promptTokens('the cat'));

  await abortPlainRequest(50);
  await settled(before.cancelled + 2);
  const unstreamed = (await tokens()) - before.tokens - streamed;
  assert.ok(unstreamed >= 1 && unstreamed < 5000, `${unstreamed} tokens counted`);
  assert.equal(await prompts(), before.prompts + 2 * promptTokens('the cat'));
});

test('tokens decoded before a request\'s deadline count too, though it answered 504', async () => {
  const own = await createServer({ models: [fx.gpt], workers: 1, timeoutMs: 200, maxTokens: 5000 });
  const url = await own.app.listen({ port: 0, host: '127.0.0.1' });
  const count = async (name: string) => {
    const line = (await (await fetch(`${url}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name}{model="tiny-gpt"} `));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  try {
    const r = await postJson(url, '/v1/completions', { prompt: 'the cat', max_tokens: 5000, temperature: 0 });
    assert.equal(r.status, 504);
    // The worker's answer to the cancel arrives after the 504.
    for (let i = 0; i < 200 && (await count('primer_tokens_generated_total')) === 0; i++) await new Promise((res) => setTimeout(res, 25));
    const tokens = await count('primer_tokens_generated_total');
    assert.ok(tokens >= 1 && tokens < 5000, `${tokens} tokens counted`);
    assert.equal(await count('primer_prompt_tokens_total'), promptTokens('the cat'));
  } finally {
    await own.close();
  }
});

test('a cancelled job answers with the tokens it decoded until then', async () => {
  const m = loadServeModel(describeModelDir(fx.gpt));
  const job = { prompts: ['the cat'], maxTokens: 40, temperature: 0, stopIds: [] };
  const full = await new Promise<number[]>((resolve) => {
    const scheduler = new Scheduler(new Map([[m.info.id, m]]), (msg: JobReply) => {
      if ('result' in msg) resolve((msg.result as Array<{ ids: number[] }>)[0]!.ids);
    });
    scheduler.submit(1, { type: 'complete', model: m.info.id, job });
  });
  assert.equal(full.length, 40);
  const { result, events } = await new Promise<{ result: unknown; events: number }>((resolve) => {
    let events = 0;
    const scheduler = new Scheduler(new Map([[m.info.id, m]]), (msg: JobReply) => {
      if ('event' in msg && ++events === 5) setImmediate(() => scheduler.cancel(1)); // as the worker's cancel message arrives
      if ('result' in msg) resolve({ result: msg.result, events });
    });
    scheduler.submit(1, { type: 'complete', model: m.info.id, job });
  });
  const [cancelled] = (result as { cancelled: Array<{ ids: number[]; promptTokens: number; finishReason: string }> }).cancelled;
  assert.ok(cancelled!.ids.length >= events && cancelled!.ids.length < 40, `${cancelled!.ids.length} tokens after ${events} events`);
  assert.deepEqual(cancelled!.ids, full.slice(0, cancelled!.ids.length));
  assert.equal(cancelled!.promptTokens, promptTokens('the cat'));
});

test('Host allow-list for the UI and CORS only for the --cors origin', async () => {
  // The shared server: no --cors, loopback only.
  const evil = await server.app.inject({ method: 'GET', url: '/ui/', headers: { host: 'attacker.example:8080' } });
  assert.equal(evil.statusCode, 403);
  assert.match(evil.json().error.message, /host "attacker\.example:8080" is not allowed for the UI/);
  for (const url of ['/%75i/', '/v1/%72un/metrics']) {
    const encoded = await server.app.inject({ method: 'GET', url, headers: { ...auth, host: 'attacker.example' } });
    assert.equal(encoded.statusCode, 403, url);
  }
  const local = await server.app.inject({ method: 'GET', url: '/ui/', headers: { host: `localhost:${new URL(base).port}` } });
  assert.equal(local.statusCode, 200);
  const noCors = await server.app.inject({ method: 'GET', url: '/v1/models', headers: { ...auth, origin: 'https://app.example' } });
  assert.equal(noCors.headers['access-control-allow-origin'], undefined);

  const open = await createServer({ models: [], cors: 'https://app.example', allowedHosts: ['primer.lan'] });
  try {
    const pre = await open.app.inject({ method: 'OPTIONS', url: '/v1/completions', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(pre.headers['access-control-allow-headers']), /authorization/);
    const models = await open.app.inject({ method: 'GET', url: '/v1/models', headers: { origin: 'https://app.example' } });
    assert.equal(models.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal((await open.app.inject({ method: 'GET', url: '/ui/', headers: { host: 'primer.lan:8080' } })).statusCode, 200);
    const health = await open.app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200);
  } finally {
    await open.close();
  }
});

test('/health answers 503 while the models load, then 200', async () => {
  const loading = await createServer({ models: [fx.gpt], workers: 1, deferModels: true });
  try {
    const before = await loading.app.inject({ method: 'GET', url: '/health' });
    assert.equal(before.statusCode, 503);
    assert.equal(before.json().error.message, 'Loading model');
    const early = await loading.app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'the cat', max_tokens: 1 } });
    assert.equal(early.statusCode, 503);
    await loading.load();
    const after = await loading.app.inject({ method: 'GET', url: '/health' });
    assert.equal(after.statusCode, 200);
    assert.equal(after.json().status, 'ok');
  } finally {
    await loading.close();
  }
});

test('close() ends within the grace period even with a connected client that never sends a request', async () => {
  const own = await createServer({ models: [], graceMs: 200, bodyTimeoutMs: 60_000 });
  const url = new URL(await own.app.listen({ port: 0, host: '127.0.0.1' }));
  const socket = connect(Number(url.port), url.hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const t0 = Date.now();
  try {
    await own.close();
    await socketClosed;
    assert.ok(Date.now() - t0 < 5_000, `close took ${Date.now() - t0} ms`);
  } finally {
    socket.destroy();
  }
});
