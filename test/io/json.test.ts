// JSON errors name the line and column (what an editor shows), not JSON.parse's character offset,
// including "Unexpected token" errors that carry no offset at all in Node 20.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeJsonError, jsonErrorLocation, readJsonFile } from '../../src/io/json.ts';

function parseError(text: string): unknown {
  try {
    JSON.parse(text);
  } catch (e) {
    return e;
  }
  throw new Error(`${JSON.stringify(text)} parsed`);
}

const describe = (text: string) => describeJsonError(text, parseError(text));

test('a missing comma is placed at the line and column of the token after it', () => {
  const text = '{\n  "model_type": "gpt2",\n  "n_embd": 128\n  "n_layer": 2\n}\n';
  assert.equal(describe(text), 'not valid JSON at line 4, column 3: Expected \',\' or \'}\' after property value');
});

test('"Unexpected token" errors (no position in the message) are located by the character', () => {
  assert.equal(describe('{\n "a": 1.5,\n "b": [1, 2,, 3]}'), 'not valid JSON at line 3, column 13: Unexpected token \',\'');
  assert.equal(describe('{"a": x}'), 'not valid JSON at line 1, column 7: Unexpected token \'x\'');
  assert.equal(describe('{\n  "a": tru}'), 'not valid JSON at line 2, column 11: Unexpected token \'}\'');
  // A valid number before the bad token must not end the search early ("1." alone is an error of its own).
  assert.equal(describe('{"a": 1.5, "b": x}'), 'not valid JSON at line 1, column 17: Unexpected token \'x\'');
});

test('a cut-short file is placed at its end; trailing text and an empty file are named', () => {
  assert.equal(describe('{\n  "a": [1, 2'), 'not valid JSON at line 2, column 13: Expected \',\' or \']\' after array element');
  assert.equal(describe('{\n  "a": "b'), 'not valid JSON at line 2, column 10: Unterminated string');
  assert.equal(describe('{"a": 1} x'), 'not valid JSON at line 1, column 10: Unexpected non-whitespace character after JSON');
  assert.equal(describe('  \n'), 'not valid JSON: the file is empty');
});

test('a "(line L column C)" in the message (newer Node versions) is taken as given', () => {
  const e = new SyntaxError('Expected \',\' or \'}\' after property value in JSON at position 40 (line 4 column 3)');
  assert.deepEqual(jsonErrorLocation('ignored', e), { line: 4, column: 3, reason: 'Expected \',\' or \'}\' after property value' });
});

test('readJsonFile: parsed value, or the caller\'s error with path, line and column', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-json-'));
  try {
    writeFileSync(join(dir, 'ok.json'), '{"a": [1, 2]}');
    assert.deepEqual(readJsonFile(join(dir, 'ok.json'), (m) => new Error(m)), { a: [1, 2] });
    writeFileSync(join(dir, 'bad.json'), '{\n  "a": 1,\n}\n');
    class MyError extends Error {}
    assert.throws(() => readJsonFile(join(dir, 'bad.json'), (m, cause) => new MyError(m, { cause })), (e: unknown) => e instanceof MyError
      && e.message === `${join(dir, 'bad.json')}: not valid JSON at line 3, column 1: Expected double-quoted property name`
      && e.cause instanceof SyntaxError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
