/**
 * OpenAI compatibility of chat requests and errors as the official client sends and reads them:
 * content parts, the "developer" role, model retrieval, the four-field error body, CORS preflights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { buildFixtures } from './fixtures.ts';
import { postJson, serveDuringTests } from './helpers.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { DEFAULT_CHAT_TEMPLATE, renderChatText } from '../../src/adapt/chat-template.ts';

const fx = buildFixtures();
const srv = serveDuringTests({ models: [fx.gpt], cors: 'http://app.test' }, fx.root);
const client = () => new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'not-needed', maxRetries: 0 });
const promptTokens = (messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>) => {
  const text = renderChatText(DEFAULT_CHAT_TEMPLATE, { messages, addGenerationPrompt: true, eosToken: '<|endoftext|>', bosToken: '' });
  return loadTokenizer(fx.gpt).encode(text, null, { addSpecialTokens: false }).ids.length;
};

test('text content parts are joined and "developer" is the system role; usage counts the rendered template', async () => {
  const r = await client().chat.completions.create({
    model: 'tiny-gpt', max_tokens: 4, temperature: 0, seed: 7,
    messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'the cat' }, { type: 'text', text: 'sat' }] }],
  });
  const same = await postJson(srv.base, '/v1/chat/completions', {
    max_tokens: 4, temperature: 0, seed: 7, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'the cat\nsat' }],
  });
  assert.equal(same.status, 200, same.text);
  assert.equal(r.usage?.prompt_tokens, promptTokens([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'the cat\nsat' }]));
  assert.deepEqual(r.usage, same.json.usage);
  assert.equal(r.choices[0]!.message.content, same.json.choices[0].message.content);
});

test('a non-text content part is refused naming the part', async () => {
  const r = await postJson(srv.base, '/v1/chat/completions', {
    messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: 'http://x/y.png' } }] }],
  });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: {
    message: 'messages[0].content[1] is a "image_url" part; this server reads only "text" parts', type: 'invalid_request_error', param: 'messages[0].content[1].type', code: null,
  } });
});

test('schema errors name the field in param and list an enum\'s values', async () => {
  const r = await postJson(srv.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }, { role: 'robot', content: 'beep' }] });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: {
    message: 'invalid request: body/messages/1/role must be one of "system", "developer", "user", "assistant"', type: 'invalid_request_error', param: 'messages[1].role', code: null,
  } });
  const missing = await postJson(srv.base, '/v1/chat/completions', { model: 'tiny-gpt' });
  assert.equal(missing.json.error.param, 'messages');
  const notFound = await postJson(srv.base, '/v1/nowhere', {});
  assert.deepEqual(Object.keys(notFound.json.error), ['message', 'type', 'param', 'code']);
});

test('the client retrieves a model, and an unknown model is code model_not_found, param model', async () => {
  const m = await client().models.retrieve('tiny-gpt');
  assert.equal(m.id, 'tiny-gpt');
  assert.equal(m.object, 'model');
  assert.equal((m as unknown as { context_length: number }).context_length, 64);
  for (const call of [() => client().models.retrieve('nope'), () => client().chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })]) {
    await assert.rejects(call, (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.param, 'model');
      assert.equal(e.type, 'invalid_request_error');
      return true;
    });
  }
});

test('a CORS preflight allows the headers the openai client sends', async () => {
  const res = await fetch(`${srv.base}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'http://app.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-os,x-stainless-retry-count' },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), 'http://app.test');
  assert.equal(res.headers.get('access-control-allow-headers'), 'authorization, content-type, x-stainless-os, x-stainless-retry-count');
});
