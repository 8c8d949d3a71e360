/**
 * `primer chat` on a model whose context is no bigger than the default reply length (64 tokens):
 * the default is capped to fit, with one notice; an explicit --max-tokens that leaves no room is
 * refused up front with a number that works; a session that could answer nothing exits non-zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatSession, loadChatModel } from '../../src/adapt/chat.ts';
import { makeTinyModelDir } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-chat-context-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const model64 = makeTinyModelDir(root); // n_positions 64
const entry = join(import.meta.dirname, 'primer-with-adapt.ts');

function runCli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

test('ChatSession: the default reply length fits a 64-token context; an explicit one that cannot is refused with advice', () => {
  const { model, tokenizer, template } = loadChatModel(model64);
  // "User: \nAssistant:" is what every turn needs besides the message and the reply.
  const overhead = tokenizer.encode('User: \nAssistant:', null, { addSpecialTokens: false }).ids.length;
  const fair = Math.floor((64 - overhead) / 2);
  const s = new ChatSession(model, tokenizer, { template, temperature: 0 });
  assert.equal(s.maxTokens, fair);
  assert.ok(s.maxTokensCapped);
  const reply = s.reply('What color is the sky?');
  assert.equal(s.history.length, 2, `answered: ${JSON.stringify(reply)}`);
  assert.throws(() => new ChatSession(model, tokenizer, { template, maxTokens: 64 }), {
    name: 'RangeError',
    message: `--max-tokens 64 leaves no room for the prompt in a 64-token context (the chat template takes ${overhead}): use --max-tokens ${fair} or fewer, so that messages get as many tokens as replies`,
  });
  // The number it advises works.
  assert.equal(new ChatSession(model, tokenizer, { template, maxTokens: fair }).maxTokensCapped, false);
  assert.throws(() => new ChatSession(model, tokenizer, { template, system: 'be brief '.repeat(40) }), /the chat template with the system prompt takes \d+ of the model's 64 tokens, leaving no room for a message and a reply; shorten --system/);
});

test('primer chat on a 64-token model: default capped with one notice and replies; --max-tokens 64 refused up front; nothing answered exits 1', async () => {
  const [capped, refused, tooLong] = await Promise.all([
    runCli(['chat', '--model', model64, '--temperature', '0'], 'What color is the sky?\nWhat color is the snow?\n'),
    runCli(['chat', '--model', model64, '--max-tokens', '64'], 'What color is the sky?\n'),
    runCli(['chat', '--model', model64, '--max-tokens', '16'], `${'sky '.repeat(60)}\n`),
  ]);
  assert.equal(capped.code, 0, capped.stderr);
  assert.equal((capped.stderr.match(/replies capped at \d+ tokens to fit the model's 64-token context; --max-tokens sets it/g) ?? []).length, 1, capped.stderr);
  assert.equal(capped.stdout.split('\n').filter((l) => l.startsWith('assistant>')).length, 2);
  assert.doesNotMatch(capped.stdout, /\(error:/);

  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^primer: error: --max-tokens 64 leaves no room for the prompt in a 64-token context \(the chat template takes \d+\): use --max-tokens \d+ or fewer/m);
  assert.equal(refused.stdout, '', 'refused before the session starts');

  // Every message refused (too long for the context): the session answered nothing, so it failed.
  assert.equal(tooLong.code, 1, tooLong.stderr);
  assert.match(tooLong.stdout, /\(error: chat: the message does not fit the model's context of 64 tokens/);
});
