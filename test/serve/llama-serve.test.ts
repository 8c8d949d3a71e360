/**
 * `primer serve` with Llama-family models: a grouped-query Llama (Llama 3 style Jinja chat template,
 * bos/eos special tokens) and a multi-query Qwen2 (q/k/v biases, untied head, ChatML template), random
 * weights, BPE tokenizers. The server's greedy completions and chat replies equal the library's greedy
 * generation of the same text (the chat prompt rendered by the model's own template), concurrent
 * requests (continuously batched) give what the same requests give one at a time, generation_config.json
 * eos ids stop a generation, and metrics and errors behave as for GPT-2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { loadAnyModelDir, saveModelDir } from '../../src/models/load.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import type { Tokenizer } from '../../src/tokenizers/types.ts';
import { applyJinjaChatTemplate } from '../../src/tokenizers/jinja-template.ts';
import { generateText } from '../../src/infer/generate.ts';
import { complete, encodePrompt } from '../../src/infer/decode.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import { describeModelDir } from '../../src/serve/engine.ts';
import { colorQa } from '../adapt/fixtures.ts';
import { parseSse, postJson, serveDuringTests } from './helpers.ts';

const LLAMA3_TEMPLATE = "{{ bos_token }}{% for message in messages %}"
  + "{% if not loop.first and message['role'] == messages[loop.index0 - 1]['role'] %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  + "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
  + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
const QWEN2_TEMPLATE = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
  + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const root = mkdtempSync(join(tmpdir(), 'primer-llama-serve-'));
const texts = colorQa(200, 5).map((r) => `User: ${r.prompt}\nAssistant: ${r.response}`);

/** A random-weight Llama-family model directory; the wide init makes greedy text vary. */
function modelDir(name: string, config: Omit<LlamaConfig, 'vocab_size'>, specials: string[], roles: Record<string, string>, template: string): string {
  const tokenizer = trainBpe(texts, { vocabSize: 320, specialTokens: specials });
  const full: LlamaConfig = { ...config, vocab_size: tokenizer.vocabSize };
  const dir = join(root, name);
  saveModelDir(dir, new Llama(full, 11), full, tokenizer);
  const path = join(dir, 'tokenizer_config.json');
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...roles, chat_template: template }, null, 2));
  return dir;
}

const llamaDir = modelDir('tiny-llama', {
  model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  max_position_embeddings: 64, tie_word_embeddings: true, initializer_range: 0.2, bos_token_id: 0, eos_token_id: 1,
}, ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>'], { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' }, LLAMA3_TEMPLATE);
const qwenDir = modelDir('tiny-qwen2', {
  model_type: 'qwen2', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1,
  max_position_embeddings: 96, tie_word_embeddings: false, initializer_range: 0.2, eos_token_id: 2,
}, ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], { eos_token: '<|im_end|>' }, QWEN2_TEMPLATE);

interface Local { model: Llama; tokenizer: Tokenizer }
function local(dir: string): Local {
  const loaded = loadAnyModelDir(dir);
  assert.equal(loaded.kind, 'llama');
  return { model: loaded.model as Llama, tokenizer: loadTokenizer(dir) };
}
const llama = local(llamaDir);
const qwen = local(qwenDir);

// A copy of the Llama whose generation_config.json names, as an extra eos id, the 4th token the Llama
// generates greedily for PROMPT: served, it must stop right before it (transformers' generate() would).
const PROMPT = 'What color is the sky?';
const greedyIds = encodePrompt(llama.tokenizer, PROMPT);
const greedy = complete(llama.model, llama.tokenizer, [PROMPT], { temperature: 0, maxTokens: 12 })[0]!;
const genDir = join(root, 'tiny-llama-gen');
cpSync(llamaDir, genDir, { recursive: true });
writeFileSync(join(genDir, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: [1, greedy.ids[3]] }));

const served = serveDuringTests({ models: [llamaDir, qwenDir, genDir], workers: 1, parallel: 8, maxTokens: 64 }, root);

test('/v1/models lists Llama-family models with their architecture, context and chat template; generation_config eos ids are read', async () => {
  const models = await (await fetch(`${served.base}/v1/models`)).json();
  assert.deepEqual(models.data.map((m: Record<string, unknown>) => [m.id, m.kind, m.architecture, m.context_length, m.chat_template]), [
    ['tiny-llama', 'llama', 'LlamaForCausalLM', 64, true],
    ['tiny-qwen2', 'llama', 'Qwen2ForCausalLM', 96, true],
    ['tiny-llama-gen', 'llama', 'LlamaForCausalLM', 64, true],
  ]);
  const info = describeModelDir(genDir);
  assert.deepEqual(info.stopTokenIds, [1, greedy.ids[3]]);
  assert.equal(info.bosToken, '<|begin_of_text|>');
  assert.equal(info.eosToken, '<|eot_id|>');
  assert.equal(describeModelDir(qwenDir).stopTokenIds, undefined);
});

test('greedy /v1/completions equals the library\'s greedy generateText, as JSON and as a stream', async () => {
  for (const [id, m] of [['tiny-llama', llama], ['tiny-qwen2', qwen]] as const) {
    const expected = generateText(m.model, m.tokenizer, PROMPT, { temperature: 0, maxTokens: 12 });
    assert.ok(expected.length > 0, `${id}: the greedy continuation is not empty`);
    const r = await postJson(served.base, '/v1/completions', { model: id, prompt: PROMPT, max_tokens: 12, temperature: 0 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].text, expected, id);
    assert.equal(r.json.usage.prompt_tokens, encodePrompt(m.tokenizer, PROMPT).length);
    const s = await postJson(served.base, '/v1/completions', { model: id, prompt: PROMPT, max_tokens: 12, temperature: 0, stream: true });
    assert.match(s.type, /^text\/event-stream/);
    const parsed = parseSse(s.text);
    assert.equal(parsed.done, true);
    assert.deepEqual(parsed.texts, [expected]);
    assert.deepEqual(parsed.finish, [r.json.choices[0].finish_reason]);
  }
});

test('an eos id of generation_config.json ends the generation before it (finish "stop")', async () => {
  assert.equal(greedy.ids.length, 12, 'the plain Llama generates 12 tokens');
  assert.equal(greedy.ids.slice(0, 3).includes(greedy.ids[3]!), false, 'the stop id first appears 4th');
  const r = await postJson(served.base, '/v1/completions', { model: 'tiny-llama-gen', prompt: PROMPT, max_tokens: 12, temperature: 0 });
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  assert.equal(r.json.usage.completion_tokens, 3);
  assert.equal(r.json.choices[0].text, llama.tokenizer.decode(greedy.ids.slice(0, 3), { skipSpecialTokens: true }));
  assert.equal(greedyIds.length, r.json.usage.prompt_tokens);
});

test('/v1/chat/completions renders the model\'s own Jinja template (bos/eos included) and replies with the greedy continuation', async () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What color is the snow? ' }];
  const cases = [
    ['tiny-llama', llama, '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>'
      + '<|start_header_id|>user<|end_header_id|>\n\nWhat color is the snow?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n', LLAMA3_TEMPLATE],
    ['tiny-qwen2', qwen, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat color is the snow? <|im_end|>\n<|im_start|>assistant\n', QWEN2_TEMPLATE],
  ] as const;
  for (const [id, m, rendered, template] of cases) {
    const eos = m.tokenizer.specialTokens.eos!;
    assert.equal(applyJinjaChatTemplate(template, messages, { addGenerationPrompt: true, bosToken: m.tokenizer.specialTokens.bos, eosToken: eos }), rendered);
    const expected = generateText(m.model, m.tokenizer, rendered, { temperature: 0, maxTokens: 16 });
    const r = await postJson(served.base, '/v1/chat/completions', { model: id, messages, max_tokens: 16, temperature: 0 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.usage.prompt_tokens, encodePrompt(m.tokenizer, rendered).length, `${id}: the prompt is the rendered template`);
    assert.equal(r.json.choices[0].message.content, expected, id);
    const s = await postJson(served.base, '/v1/chat/completions', { model: id, messages, max_tokens: 16, temperature: 0, stream: true });
    const content = s.text.split('\n\n').filter((b) => b.startsWith('data: {')).map((b) => JSON.parse(b.slice(6)).choices[0].delta.content ?? '').join('');
    assert.equal(content, expected);
  }
  // The Qwen2 template adds its default system prompt when the conversation has none.
  const bare = await postJson(served.base, '/v1/chat/completions', { model: 'tiny-qwen2', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, temperature: 0 });
  const rendered = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n';
  assert.equal(bare.json.usage.prompt_tokens, encodePrompt(qwen.tokenizer, rendered).length);
});

test('concurrent requests, batched together, give the outputs the same requests give one at a time', async () => {
  const requests: Array<[string, Record<string, unknown>]> = [
    ['/v1/completions', { model: 'tiny-llama', prompt: PROMPT, max_tokens: 20, temperature: 0 }],
    ['/v1/completions', { model: 'tiny-llama', prompt: ['What color is grass?', 'Red'], max_tokens: 9, temperature: 0.9, seed: 3 }],
    ['/v1/completions', { model: 'tiny-qwen2', prompt: 'Assistant: blue', max_tokens: 15, temperature: 1, top_k: 20, seed: 8 }],
    ['/v1/completions', { model: 'tiny-qwen2', prompt: PROMPT, max_tokens: 7, temperature: 0, stream: true }],
    ['/v1/chat/completions', { model: 'tiny-llama', messages: [{ role: 'user', content: 'What color is the sea?' }], max_tokens: 12, temperature: 0.8, seed: 5, n: 2 }],
    ['/v1/chat/completions', { model: 'tiny-qwen2', messages: [{ role: 'user', content: 'Name a color.' }], max_tokens: 10, temperature: 0 }],
  ];
  const outputs = (r: { json: any; text: string }) => r.json
    ? r.json.choices.map((c: { text?: string; message?: { content: string }; finish_reason: string }) => [c.text ?? c.message!.content, c.finish_reason])
    : parseSse(r.text).texts;
  const sequential = [];
  for (const [path, body] of requests) sequential.push(outputs(await postJson(served.base, path, body)));
  const concurrent = (await Promise.all(requests.map(([path, body]) => postJson(served.base, path, body)))).map(outputs);
  assert.deepEqual(concurrent, sequential);
  assert.ok(sequential.flat(2).some((t: string) => t.length > 8), 'the outputs are not all empty');
});

test('embeddings of a Llama: the mean of its final-norm hidden states, unit length', async () => {
  const r = await postJson(served.base, '/v1/embeddings', { model: 'tiny-qwen2', input: ['blue sky', PROMPT] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.length, 2);
  const ids = encodePrompt(qwen.tokenizer, PROMPT);
  const hidden = noGrad(() => withScope(() => Float32Array.from(qwen.model.model.forward(Int32Array.from(ids), 1, ids.length).data)));
  const mean = Array.from({ length: 32 }, (_, j) => ids.reduce((s, _id, t) => s + hidden[t * 32 + j]!, 0) / ids.length);
  const norm = Math.hypot(...mean);
  const got: number[] = r.json.data[1].embedding;
  assert.equal(got.length, 32);
  assert.ok(got.every((v, j) => Math.abs(v - mean[j]! / norm) < 1e-5), 'equals the normalised mean hidden state');
  assert.equal(r.json.usage.prompt_tokens, encodePrompt(qwen.tokenizer, 'blue sky').length + ids.length);
});

test('metrics count a Llama\'s tokens as a GPT-2\'s', async () => {
  const scrape = async () => {
    const text = await (await fetch(`${served.base}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{model="tiny-llama"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    return { tokens: value('primer_tokens_generated_total'), prompt: value('primer_prompt_tokens_total'), ttft: value('primer_time_to_first_token_seconds_count') };
  };
  const before = await scrape();
  const r = await postJson(served.base, '/v1/completions', { model: 'tiny-llama', prompt: PROMPT, max_tokens: 10, temperature: 0 });
  const after = await scrape();
  assert.equal(after.tokens - before.tokens, r.json.usage.completion_tokens);
  assert.equal(after.prompt - before.prompt, r.json.usage.prompt_tokens);
  assert.equal(after.ttft - before.ttft, 1);
});

test('errors: prompt over the context, a template refusing the conversation, tasks a Llama cannot do', async () => {
  const long = await postJson(served.base, '/v1/completions', { model: 'tiny-llama', prompt: 'blue '.repeat(80), max_tokens: 4 });
  assert.equal(long.status, 400);
  assert.match(long.json.error.message, /prompt 0 has \d+ tokens, more than the model's context of 64 tokens/);
  const turns = await postJson(served.base, '/v1/chat/completions', { model: 'tiny-llama', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] });
  assert.equal(turns.status, 400);
  assert.match(turns.json.error.message, /Conversation roles must alternate/);
  const attention = await postJson(served.base, '/v1/attention', { model: 'tiny-llama', text: 'blue sky' });
  assert.equal(attention.status, 400);
  assert.match(attention.json.error.message, /is a LlamaForCausalLM; the attention view needs a GPT-2 language model/);
  const mask = await postJson(served.base, '/v1/fill-mask', { model: 'tiny-qwen2', text: 'the [MASK] sky' });
  assert.equal(mask.status, 400);
  assert.match(mask.json.error.message, /is a Qwen2ForCausalLM; fill-mask needs a BERT pre-training model/);
  const health = await (await fetch(`${served.base}/health`)).json();
  assert.equal(health.status, 'ok');
  assert.equal(health.restarts, 0);
});
