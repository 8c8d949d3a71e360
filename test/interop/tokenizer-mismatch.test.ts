// import/export warn when the tokenizer and the model disagree: ids past the embedding table, and
// bos/eos ids of config.json or generation_config.json that are not the tokenizer's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained, tokenizerMismatches } from '../../src/interop/import.ts';
import { makeTinyModelDir } from '../adapt/fixtures.ts';
import { primerInProcess } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

test.after(removeTempDirs);

test('tokenizerMismatches: none for a consistent model; bos/eos ids and a too-large tokenizer are named', async () => {
  const dir = makeTinyModelDir(tempDir('mismatch'));
  assert.deepEqual(tokenizerMismatches(loadPretrained(dir)), []);
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  writeFileSync(configPath, JSON.stringify({ ...config, eos_token_id: 5 }));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: [7, 9] }));
  const p = loadPretrained(dir);
  const eos = p.tokenizer!.specialTokens.eos!;
  assert.deepEqual(tokenizerMismatches(p), [
    `config.json has eos_token_id 5 but the tokenizer's eos token ${JSON.stringify(eos)} is id 0`,
    `generation_config.json has eos_token_id [7,9] but the tokenizer's eos token ${JSON.stringify(eos)} is id 0`,
  ]);
  const r = await primerInProcess(['export', '--model', dir, '--out', tempDir('mismatch-out')]);
  assert.equal(r.error, null);
  assert.ok(r.err.includes(`warning: ${dir}: config.json has eos_token_id 5 but the tokenizer's eos token ${JSON.stringify(eos)} is id 0`), r.err.join('\n'));

  writeFileSync(configPath, JSON.stringify(config));
  const small = loadPretrained(dir);
  (small.config as { vocab_size: number }).vocab_size = 100; // as a config.json with a smaller vocabulary would say
  assert.deepEqual(tokenizerMismatches(small).filter((m) => m.startsWith('the tokenizer')),
    [`the tokenizer has ${small.tokenizer!.vocabSize} tokens but the model's vocab_size is 100: ids 100… have no embedding`]);
});
