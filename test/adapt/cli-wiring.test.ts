import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { colorQa, makeTinyModelDir, writeJsonl } from './fixtures.ts';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', '..', 'bin', 'primer.js');
const root = mkdtempSync(join(tmpdir(), 'primer-adapt-cli-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

test('primer finetune --objective sft (LoRA), then generate --chat and chat on the result', async () => {
  const base = makeTinyModelDir(root);
  const data = writeJsonl(join(root, 'qa.jsonl'), colorQa(40, 2));
  const out = join(root, 'sft');
  const ft = await run(process.execPath, [bin, 'finetune', '--objective', 'sft', '--model', base, '--data', data, '--out', out,
    '--steps', '5', '--lora-r', '2', '--lora-targets', 'all', '--merge-lora']);
  assert.match(ft.stdout, /held-out response perplexity: [\d.]+ → [\d.]+/);
  assert.ok(existsSync(join(out, 'adapter_config.json')));
  const gen = await run(process.execPath, [bin, 'generate', '--model', join(out, 'merged'), '--chat', '--prompt', 'What color is the sky?', '--max-tokens', '5', '--temperature', '0']);
  assert.ok(!gen.stdout.includes('User:'));
  assert.ok(gen.stdout.trim().length > 0);
  const help = await run(process.execPath, [bin, '--help']);
  assert.match(help.stdout, /chat \[options\]/);
  assert.match(help.stdout, /lora/);
});
