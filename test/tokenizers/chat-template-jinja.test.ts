/**
 * Chat templates of Llama-family models (tokenizer_config.json `chat_template`, Jinja) rendered through
 * @huggingface/jinja, directly and through adapt/chat-template.ts's renderChat (which SFT and chat use),
 * with the assistant replies marked as trained. Templates are the released models' own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderChat, renderChatText, DEFAULT_CHAT_TEMPLATE } from '../../src/adapt/chat-template.ts';
import { applyJinjaChatTemplate, chatConfigFromJSON, readChatConfig, renderJinjaSegments } from '../../src/tokenizers/jinja-template.ts';
import { tokenizerFromJSON } from '../../src/tokenizers/index.ts';
import { llama3Json, qwen2Json, trainedChineseVocab } from './llama-fixtures.ts';

/** Meta-Llama-3-8B-Instruct. */
const LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
/** Qwen2-0.5B-Instruct (ChatML with a default system prompt). */
const QWEN2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
/** Llama-2-7b-chat / TinyLlama-style [INST] template, with raise_exception. */
const LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const CONVERSATION = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'What is 2+2? ' },
  { role: 'assistant' as const, content: '4' },
  { role: 'user' as const, content: 'And 3+3?' },
];

test('Llama 3 template: bos, headers, trimmed content, <|eot_id|>, generation prompt', () => {
  const text = applyJinjaChatTemplate(LLAMA3, CONVERSATION, { addGenerationPrompt: true, bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' });
  assert.equal(text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>'
    + '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>'
    + '<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>'
    + '<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>'
    + '<|start_header_id|>assistant<|end_header_id|>\n\n');
  // Through renderChat (SFT/chat): same text, and only the reply + <|eot_id|> is trained.
  const ctx = { messages: CONVERSATION, addGenerationPrompt: true, bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' };
  assert.equal(renderChatText(LLAMA3, ctx), text);
  assert.deepEqual(renderChat(LLAMA3, ctx).filter((s) => s.trained).map((s) => s.text), ['4<|eot_id|>']);
  // The rendered prompt tokenizes with the special tokens atomic (Llama 3 layout).
  const tok = tokenizerFromJSON(llama3Json(trainedChineseVocab()));
  const ids = tok.encode(text, null, { addSpecialTokens: false }).ids;
  assert.equal(ids[0], tok.tokenToId('<|begin_of_text|>'));
  assert.equal(ids.filter((id) => id === tok.tokenToId('<|eot_id|>')).length, 4);
  assert.equal(tok.decode(ids), text);
});

test('Qwen2 (ChatML) template: default system prompt, <|im_start|>/<|im_end|>, generation prompt', () => {
  const messages = CONVERSATION.slice(1);
  const text = applyJinjaChatTemplate(QWEN2, messages, { addGenerationPrompt: true });
  assert.equal(text,
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'
    + '<|im_start|>user\nWhat is 2+2? <|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n'
    + '<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n');
  const segments = renderChat(QWEN2, { messages, addGenerationPrompt: true });
  assert.equal(segments.map((s) => s.text).join(''), text);
  assert.deepEqual(segments.filter((s) => s.trained).map((s) => s.text), ['4<|im_end|>\n']);
  const tok = tokenizerFromJSON(qwen2Json(trainedChineseVocab()));
  const ids = tok.encode(text).ids;
  assert.equal(ids.filter((id) => id === tok.tokenToId('<|im_start|>')).length, 5);
  assert.equal(tok.decode(ids), text);
});

test('Llama 2 [INST] template: system folded into the first turn; raise_exception surfaces as an error', () => {
  const conv = [...CONVERSATION.slice(0, 3)];
  const segments = renderJinjaSegments(LLAMA2, conv, { bosToken: '<s>', eosToken: '</s>' });
  assert.deepEqual(segments, [
    { text: '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST]', trained: false },
    { text: ' 4 </s>', trained: true },
  ]);
  assert.throws(() => applyJinjaChatTemplate(LLAMA2, [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]), /chat template: .*Conversation roles must alternate/);
});

test('renderChat keeps its own renderer (and {% generation %} masks) for the subset templates', () => {
  const ctx = { messages: CONVERSATION.slice(1, 3), eosToken: '<|endoftext|>' };
  assert.deepEqual(renderChat(DEFAULT_CHAT_TEMPLATE, ctx), [
    { text: 'User: What is 2+2? \nAssistant:', trained: false },
    { text: ' 4<|endoftext|>', trained: true },
    { text: '\n', trained: false },
  ]);
});

test('chat_template, bos_token and eos_token are read from tokenizer_config.json (string, {content}, named list, chat_template.jinja)', () => {
  assert.deepEqual(chatConfigFromJSON({ chat_template: LLAMA3, bos_token: '<|begin_of_text|>', eos_token: { content: '<|eot_id|>', lstrip: false } }),
    { chatTemplate: LLAMA3, bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' });
  assert.equal(chatConfigFromJSON({ chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: QWEN2 }] }).chatTemplate, QWEN2);
  assert.equal(chatConfigFromJSON({}).chatTemplate, null);
  assert.throws(() => chatConfigFromJSON({ chat_template: 5 }), /tokenizer_config\.json: chat_template must be a string/);
  assert.throws(() => chatConfigFromJSON({ chat_template: [{ name: 'x', template: 'y' }] }), /without a template named "default"/);
  const dir = mkdtempSync(join(tmpdir(), 'primer-chat-'));
  try {
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: LLAMA3, eos_token: '</s>' }));
    assert.equal(readChatConfig(dir).chatTemplate, LLAMA3);
    writeFileSync(join(dir, 'chat_template.jinja'), QWEN2);
    assert.deepEqual(readChatConfig(dir), { chatTemplate: QWEN2, bosToken: undefined, eosToken: '</s>' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
