// Every JSON file a user can hand Primer (or edit by hand) is reported by line and column when broken,
// like config.json: "PATH: not valid JSON at line 3, column 8: Unexpected token 'x'" rather than
// V8's bare "Unexpected token 'x', ... is not valid JSON" or "at position 21".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPretrained } from '../../src/interop/import.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { readChatConfig } from '../../src/tokenizers/jinja-template.ts';
import { readManifest } from '../../src/data/shards.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { verifyModel } from '../../src/train/verify.ts';
import { readSquad } from '../../src/tasks/data.ts';
import { readChatTemplate } from '../../src/adapt/chat-template.ts';
import { readAdapterConfig } from '../../src/adapt/lora.ts';
import { loadIndex } from '../../src/tasks/retrieval.ts';

const BROKEN = '{\n  "a": 1,\n  "b": x\n}\n';
const WHERE = 'not valid JSON at line 3, column 8: Unexpected token \'x\'';
const fixture = join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures', 'gpt2-tiny');
const root = mkdtempSync(join(tmpdir(), 'primer-json-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** A directory holding `name` = BROKEN (plus the fixture's files where `withModel`). */
function dirWith(name: string, withModel = false): string {
  const dir = mkdtempSync(join(root, 'd-'));
  if (withModel) cpSync(fixture, dir, { recursive: true });
  mkdirSync(join(dir, name, '..'), { recursive: true });
  writeFileSync(join(dir, name), BROKEN);
  return dir;
}

const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected an error');
};

test('broken JSON files are placed by line and column, with their path', () => {
  let dir = dirWith('model.safetensors.index.json', true);
  rmSync(join(dir, 'model.safetensors')); // a sharded checkpoint: the index names the shards
  assert.equal(messageOf(() => loadPretrained(dir)), `${join(dir, 'model.safetensors.index.json')}: ${WHERE}`);
  dir = dirWith('config.json');
  assert.equal(messageOf(() => loadPretrained(dir)), `${join(dir, 'config.json')}: ${WHERE}`);
  dir = dirWith('tokenizer.json');
  assert.equal(messageOf(() => loadTokenizer(dir)), `tokenizer.json: (file) is ${WHERE}`);
  dir = dirWith('tokenizer_config.json');
  assert.equal(messageOf(() => readChatConfig(dir)), `tokenizer_config.json: (file) is ${WHERE}`);
  dir = dirWith('manifest.json');
  assert.equal(messageOf(() => readManifest(dir)), `${join(dir, 'manifest.json')}: ${WHERE}`);
  dir = dirWith('trainer_state.json');
  assert.equal(messageOf(() => readCheckpoint(dir)), `checkpoint ${dir} is corrupt: ${join(dir, 'trainer_state.json')}: ${WHERE}`);
  dir = dirWith('inputs.json', true);
  copyFileSync(join(fixture, 'expected.safetensors'), join(dir, 'expected.safetensors'));
  assert.equal(messageOf(() => verifyModel({ modelDir: dir })), `${join(dir, 'inputs.json')}: ${WHERE}`);
  dir = dirWith('tokenizer_config.json');
  assert.equal(messageOf(() => readChatTemplate(dir)), `${join(dir, 'tokenizer_config.json')}: ${WHERE}`);
  dir = dirWith('adapter_config.json');
  assert.equal(messageOf(() => readAdapterConfig(dir)), `${join(dir, 'adapter_config.json')}: ${WHERE}`);
  dir = dirWith('primer_index.json');
  assert.equal(messageOf(() => loadIndex(dir)), `${join(dir, 'primer_index.json')}: ${WHERE}`);
  dir = dirWith('squad.json');
  assert.equal(messageOf(() => readSquad(join(dir, 'squad.json'))), 'squad.json:3:8: invalid JSON: Unexpected token \'x\'');
});
