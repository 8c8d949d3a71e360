/**
 * `primer verify` with an inputs.json that does not fit the model: the error names the file given with
 * --inputs, the field and the position, instead of a native kernel message ("embedding: ids[2] = 5 is
 * out of range [0, 2)") that says neither which file nor which field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyModel } from '../../src/train/verify.ts';
import { primerInProcess } from '../helpers/cli.ts';
import { fixtures } from '../interop/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'primer-verify-inputs-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function inputs(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

test('ids outside the vocabulary, token types and labels are named by file, field and position', () => {
  const cases: Array<[string, string, unknown, string]> = [
    ['gpt2-tiny', 'gpt-ids.json', { input_ids: [[1, 2, 99999]] }, 'field "input_ids" [0][2] = 99999 is not a token id of this model (0..511)'],
    ['gpt2-tiny', 'gpt-labels.json', { input_ids: [[1, 2, 3]], labels: [[1, -100, 512]] }, 'field "labels" [0][2] = 512 is not a token id of this model (0..511) or -100 (ignored)'],
    ['llama-tiny', 'llama-ids.json', { input_ids: [[1, 97]] }, 'field "input_ids" [0][1] = 97 is not a token id of this model (0..96)'],
    ['bert-tiny', 'bert-types.json', { input_ids: [[2, 5, 3]], token_type_ids: [[0, 0, 5]] }, 'field "token_type_ids" [0][2] = 5 is not a token type of this model (0..1)'],
    ['bert-tiny', 'bert-mask.json', { input_ids: [[2, 5, 3]], attention_mask: [[1, 1, 2]] }, 'field "attention_mask" [0][2] = 2 is not 0 or 1'],
    ['bert-tiny', 'bert-nsp.json', { input_ids: [[2, 5, 3]], next_sentence_label: [3] }, 'field "next_sentence_label" [0] = 3 is not 0 or 1 or -100 (ignored)'],
  ];
  for (const [model, name, value, message] of cases) {
    const path = inputs(name, value);
    assert.throws(() => verifyModel({ modelDir: join(fixtures, model), inputs: path }), (e: Error) => {
      assert.equal(e.message, `${path}: ${message}`);
      return true;
    });
  }
});

test('rows of different lengths name the file given with --inputs', async () => {
  const path = inputs('ragged.json', { input_ids: [[1, 2], [3]] });
  const r = await primerInProcess(['verify', '--model', join(fixtures, 'gpt2-tiny'), '--inputs', path]);
  assert.equal(r.exitCode, 1);
  assert.equal(r.error, `primer: error: ${path}: field "input_ids" must be 2×2 like input_ids (row 1 has 1 ids)`);
});
