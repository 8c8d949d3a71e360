import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSft } from '../../src/adapt/sft-run.ts';
import { ChatSession, loadChatModel } from '../../src/adapt/chat.ts';
import { loadModelDir } from '../../src/models/load.ts';
import { loadLoraAdapter } from '../../src/adapt/lora.ts';
import { noGrad, withScope } from '../../src/tensor/tensor.ts';
import type { GPT } from '../../src/models/gpt.ts';
import { colorQa, makeTinyModelDir, writeJsonl } from './fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-chat-'));
const baseDir = makeTinyModelDir(root);
const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(120, 4));
const tuned = join(root, 'tuned');
const adapter = join(root, 'adapter');
const ready = (async () => {
  await runSft({ model: baseDir, data, out: tuned, steps: 300, batchSize: 8, lr: 5e-3, log: () => {}, progress: false });
  await runSft({ model: baseDir, data, out: adapter, steps: 20, batchSize: 8, lr: 1e-2, lora: { r: 4, alpha: 8, targets: 'all' }, log: () => {}, progress: false });
})();
test.after(() => rmSync(root, { recursive: true, force: true }));

const entry = join(import.meta.dirname, 'primer-with-adapt.ts');

function runCli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string; chunks: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let chunks = 0;
    child.stdout.on('data', (d) => {
      stdout += d;
      chunks++;
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, chunks }));
    child.stdin.end(stdin);
  });
}

test('a fine-tuned model answers in the chat format; replies stream piece by piece', async () => {
  await ready;
  const { model, tokenizer, template } = loadChatModel(tuned);
  const session = new ChatSession(model, tokenizer, { template, temperature: 0, maxTokens: 16 });
  const pieces = [...session.send('What color is the sky?')];
  assert.ok(pieces.length > 1, `expected several streamed pieces, got ${JSON.stringify(pieces)}`);
  assert.equal(pieces.join('').trim(), 'The sky is blue.');
  assert.deepEqual(session.history.map((m) => m.role), ['user', 'assistant']);
  assert.equal(session.history[1]!.content, 'The sky is blue.');
});

test('history is trimmed oldest-turn-first to fit the context; the system prompt stays', async () => {
  await ready;
  const { model, tokenizer, template } = loadChatModel(tuned);
  const session = new ChatSession(model, tokenizer, { template, temperature: 0, maxTokens: 16, system: 'be brief' });
  for (let i = 0; i < 4; i++) session.reply('What color is the snow?');
  // 64 positions − 16 reserved: roughly two Q/A turns fit, so older ones were dropped.
  assert.ok(session.droppedTurns > 0);
  const prompt = session.promptFor('What color is the coal?');
  assert.ok(prompt.startsWith('System: be brief\nUser: '));
  assert.ok(tokenizer.encode(prompt, null, { addSpecialTokens: false }).ids.length <= 64 - 16);
  session.reset();
  assert.equal(session.history.length, 0);
  assert.throws(() => session.promptFor('sky '.repeat(80)), /does not fit the model's context of 64 tokens/);
});

test('primer chat over piped stdin: streamed answer, /reset, /exit ends cleanly', async () => {
  await ready;
  const r = await runCli(['chat', '--model', tuned, '--temperature', '0', '--max-tokens', '16'],
    'What color is the grass?\n/reset\nWhat color is the apple?\n/exit\nnever read\n');
  assert.equal(r.code, 0, r.stderr);
  // Banner and notices on stderr, so that stdout piped elsewhere holds only the conversation.
  assert.equal(r.stderr, `chatting with ${tuned} — /reset clears the history, /exit quits\n(history cleared)\n`);
  const answers = r.stdout.split('\n').filter((l) => l.startsWith('assistant>'));
  assert.deepEqual(answers, ['assistant> The grass is green.', 'assistant> The apple is red.']);
  assert.doesNotMatch(r.stdout, /chatting with|history cleared/);
  assert.ok(r.stdout.endsWith('bye\n'));
});

test('primer chat with a LoRA adapter, and primer lora merge gives the same model', async () => {
  await ready;
  const merged = join(root, 'merged');
  const m = await runCli(['lora', 'merge', '--base', baseDir, '--adapter', adapter, '--out', merged], '');
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /merged 4 LoRA layers/);
  assert.ok(existsSync(join(merged, 'model.safetensors')));
  const ids = Int32Array.from([5, 9, 20, 33, 7, 2]);
  const logitsOf = (model: GPT) => noGrad(() => withScope(() => Float32Array.from(model.eval().forward(ids, 1, 6).logits.data)));
  const wrapped = loadModelDir(baseDir).model as GPT;
  loadLoraAdapter(wrapped, 'gpt2', adapter);
  const a = logitsOf(wrapped);
  const b = logitsOf(loadModelDir(merged).model as GPT);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  assert.ok(diff <= 1e-5, `max diff ${diff}`);

  const c = await runCli(['chat', '--model', baseDir, '--adapter', adapter, '--max-tokens', '4'], 'hi\n/exit\n');
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout.split('\n').filter((l) => l.startsWith('assistant>')).length, 1);
  const wrong = await runCli(['chat', '--model', tuned, '--adapter', adapter], '/exit\n');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /trained on a different base model/);
});
