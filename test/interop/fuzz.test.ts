/**
 * Bad input never crashes the importer: 1400 seeded mutations of config.json, tokenizer.json,
 * safetensors headers and model.safetensors.index.json each either load or throw an InteropError with
 * a known code — never a TypeError/RangeError from deep inside, never a hang (every case is timed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained, InteropError } from '../../src/interop/import.ts';
import { modelTensors } from '../../src/models/load.ts';
import { GPT } from '../../src/models/gpt.ts';
import { createTaskModel } from '../../src/models/heads.ts';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { mutateJson, mutateSafetensors } from './fuzz.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { removeTempDirs, tempDir, writeModel, writeShards } from './helpers.ts';

test.after(removeTempDirs);

const CODES = new Set(['NOT_FOUND', 'BAD_CONFIG', 'UNSUPPORTED_ARCHITECTURE', 'PICKLE_REFUSED', 'NO_WEIGHTS', 'BAD_INDEX', 'BAD_WEIGHTS',
  'UNSUPPORTED_DTYPE', 'MISSING_TENSORS', 'UNEXPECTED_TENSORS', 'SHAPE_MISMATCH', 'TIED_MISMATCH', 'BAD_TOKENIZER']);
const texts = Array.from({ length: 30 }, (_, i) => `the quick brown fox ${i} jumps over the lazy dog ${i * 7}`);

/** A tiny GPT-2 with a byte-level BPE tokenizer, and a tiny BERT classifier with a WordPiece one. */
function bases(): string[] {
  const gptConfig = { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 300, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2, bos_token_id: 0, eos_token_id: 0 } as const;
  const gpt = writeModel(tempDir('fuzz-gpt'), gptConfig, modelTensors(new GPT({ ...gptConfig })));
  trainTokenizer({ type: 'bpe', vocabSize: 300, texts, specialTokens: ['<|endoftext|>'] }).save(gpt);
  const bertConfig = {
    architectures: ['BertForSequenceClassification'], model_type: 'bert', vocab_size: 120, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2,
    intermediate_size: 16, max_position_embeddings: 16, type_vocab_size: 2, id2label: { 0: 'no', 1: 'yes' }, label2id: { no: 0, yes: 1 },
  };
  const bert = writeModel(tempDir('fuzz-bert'), bertConfig, modelTensors(createTaskModel(bertConfig)));
  trainTokenizer({ type: 'wordpiece', vocabSize: 120, texts }).save(bert);
  return [gpt, bert];
}

/** The tiny GPT-2 split into 3 shards with a model.safetensors.index.json. */
function shardedBase(): string {
  const config = { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 300, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2 } as const;
  const dir = tempDir('fuzz-sharded');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeShards(dir, modelTensors(new GPT({ ...config })), 3);
  return dir;
}

interface Outcome { loaded: number; codes: Map<string, number>; failures: string[]; slowest: number }

/** Runs `cases` mutations of one file of each base directory (restored after each case). */
function fuzzFile(dirs: string[], file: string, cases: number, seed: number, mutate: (bytes: Buffer, rnd: () => number) => Uint8Array | string, o: Outcome): void {
  for (const dir of dirs) {
    const original = readFileSync(join(dir, file));
    copyFileSync(join(dir, file), join(dir, `${file}.orig`));
    for (let i = 0; i < cases; i++) {
      const caseSeed = seed * 1_000_003 + i;
      writeFileSync(join(dir, file), mutate(original, seededRandom(caseSeed)));
      const started = performance.now();
      try {
        loadPretrained(dir);
        o.loaded++;
      } catch (e) {
        // A wrapped cause must itself be a deliberate parse error, not a TypeError from deep inside a parser.
        const cause = e instanceof InteropError ? (e.cause as Error | undefined) : undefined;
        const deliberate = !cause || cause instanceof SyntaxError || cause.name === 'TokenizerFormatError' || 'code' in cause;
        if (e instanceof InteropError && CODES.has(e.code) && deliberate) o.codes.set(e.code, (o.codes.get(e.code) ?? 0) + 1);
        else if (e instanceof InteropError) o.failures.push(`${file} seed ${caseSeed}: ${e.code} caused by ${cause?.stack?.split('\n').slice(0, 3).join(' | ')}`);
        else o.failures.push(`${file} seed ${caseSeed}: ${(e as Error)?.stack?.split('\n').slice(0, 3).join(' | ') ?? String(e)}`);
      }
      o.slowest = Math.max(o.slowest, performance.now() - started);
    }
    writeFileSync(join(dir, file), original);
  }
}

test('1400 fuzzed config.json / tokenizer.json / safetensors headers / shard indexes each load or give a typed InteropError', { timeout: 120_000 }, (t) => {
  const dirs = bases();
  for (const dir of dirs) assert.ok(loadPretrained(dir).tokenizer); // the unmutated bases load
  const o: Outcome = { loaded: 0, codes: new Map(), failures: [], slowest: 0 };
  const json = (bytes: Buffer, rnd: () => number) => mutateJson(bytes.toString('utf8'), rnd);
  fuzzFile(dirs, 'config.json', 200, 1, json, o);
  fuzzFile(dirs, 'tokenizer.json', 200, 2, json, o);
  fuzzFile(dirs, 'model.safetensors', 200, 3, (bytes, rnd) => mutateSafetensors(bytes, rnd), o);
  const sharded = shardedBase();
  assert.equal(loadPretrained(sharded).shards, 3);
  fuzzFile([sharded], 'model.safetensors.index.json', 200, 4, json, o);
  t.diagnostic(`loaded ${o.loaded}; errors by code ${JSON.stringify(Object.fromEntries(o.codes))}; slowest case ${o.slowest.toFixed(1)} ms`);
  const errors = [...o.codes.values()].reduce((a, b) => a + b, 0);
  assert.deepEqual(o.failures.slice(0, 10), [], `${o.failures.length} cases escaped as untyped errors`);
  assert.equal(o.loaded + errors, 1400);
  assert.ok(errors >= 700, `only ${errors} of 1400 mutations were rejected`);
  for (const code of ['BAD_CONFIG', 'BAD_TOKENIZER', 'BAD_WEIGHTS', 'BAD_INDEX', 'SHAPE_MISMATCH']) assert.ok(o.codes.has(code), `no case gave ${code}: ${JSON.stringify([...o.codes])}`);
  assert.ok(o.slowest < 5000, `slowest case took ${o.slowest} ms`);
});
