/** `primer chat` renders with the template `primer serve` uses for the same model directory. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChatModel } from '../../src/adapt/chat.ts';
import { describeModelDir } from '../../src/serve/engine.ts';
import { makeTinyModelDir } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-chat-template-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const TEMPLATE = "{% for message in messages %}<{{ message['role'] }}>{{ message['content'] }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";

test('chat_template.jinja is the template chat renders with, as serve does', () => {
  const dir = makeTinyModelDir(join(root, 'jinja'));
  writeFileSync(join(dir, 'chat_template.jinja'), TEMPLATE);
  assert.equal(describeModelDir(dir).chatTemplate, TEMPLATE);
  assert.equal(loadChatModel(dir).template, TEMPLATE);
});

test('a tokenizer_config.json list of named templates gives chat its "default" one', () => {
  const dir = makeTinyModelDir(join(root, 'named'));
  const path = join(dir, 'tokenizer_config.json');
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    // No tokenizer_config.json in the fixture: the template list is the whole file.
  }
  writeFileSync(path, JSON.stringify({ ...config, chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: TEMPLATE }] }));
  assert.equal(describeModelDir(dir).chatTemplate, TEMPLATE);
  assert.equal(loadChatModel(dir).template, TEMPLATE);
});
