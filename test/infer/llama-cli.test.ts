/**
 * `primer generate` and chat (loadChatModel + ChatSession, what `primer chat` runs) on a Llama model
 * directory (random weights, a BPE tokenizer): loaded with loadAnyModelDir and decoded through the KV
 * cache; the CLI's greedy text equals the library's generateText, and a chat reply is the greedy
 * continuation of the rendered prompt, cut at the next turn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { loadAnyModelDir, saveModelDir } from '../../src/models/load.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { generateText } from '../../src/infer/generate.ts';
import { ChatSession, loadChatModel } from '../../src/adapt/chat.ts';
import { colorQa } from '../adapt/fixtures.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const root = mkdtempSync(join(tmpdir(), 'primer-llama-cli-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** A 2-layer grouped-query Llama (random weights, a wide init so greedy text varies) with a BPE tokenizer. */
function llamaDir(): string {
  const texts = colorQa(200, 99).map((r) => `User: ${r.prompt}\nAssistant: ${r.response}`);
  const tokenizer = trainBpe(texts, { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  const config: LlamaConfig = {
    model_type: 'llama', vocab_size: tokenizer.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, tie_word_embeddings: true,
    initializer_range: 0.2, bos_token_id: 0, eos_token_id: 0,
  };
  const dir = join(root, 'llama');
  saveModelDir(dir, new Llama(config, 7), config, tokenizer);
  return dir;
}
const dir = llamaDir();

function primer(args: string[]) {
  const r = spawnSync(process.execPath, [join(repo, 'bin', 'primer.js'), ...args], { cwd: repo, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('primer generate on a Llama model directory prints the greedy continuation generateText gives', () => {
  const prompt = 'What color is the sky?';
  const r = primer(['generate', '--model', dir, '--prompt', prompt, '--temperature', '0', '--max-tokens', '12']);
  assert.equal(r.code, 0, r.stderr);
  const loaded = loadAnyModelDir(dir);
  assert.equal(loaded.kind, 'llama');
  const text = generateText(loaded.model as Llama, loadTokenizer(dir), prompt, { temperature: 0, maxTokens: 12 });
  assert.ok(text.length > 0, 'the continuation is not empty');
  assert.equal(r.stdout, `${prompt}${text}\n`);
});

test('a chat session over a Llama: the reply is the greedy continuation of the rendered prompt, up to the next turn', () => {
  const { model, tokenizer, template } = loadChatModel(dir);
  assert.ok(model instanceof Llama);
  const session = new ChatSession(model, tokenizer, { template, temperature: 0, maxTokens: 16 });
  const prompt = session.promptFor('What color is the snow?');
  const expected = generateText(model, tokenizer, prompt, { temperature: 0, maxTokens: 16 }).split(/\n(?:User|System|Assistant):/)[0]!.trim();
  assert.equal(session.reply('What color is the snow?'), expected);
  assert.deepEqual(session.history.map((m) => m.role), ['user', 'assistant']);
  assert.equal(session.history[1]!.content, expected);
});
