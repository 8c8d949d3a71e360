/**
 * `primer finetune --data` given something it cannot read: a directory, a name whose extension says
 * no format, a missing --val-data/--test-data. Each is refused by its flag before the model loads,
 * with every supported extension and the --type way out where there is one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_EXTENSIONS, taskTypeOfFile, type TaskType } from '../../src/tasks/task-run.ts';
import { readSquad, readTextExamples, readTokenTagged } from '../../src/tasks/data.ts';
import { makeTinyModelDir } from '../adapt/fixtures.ts';
import { primerInProcess as primer } from '../helpers/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-finetune-data-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const model = makeTinyModelDir(root);
const dir = join(root, 'ds');
mkdirSync(dir);
const csv = join(root, 'train.csv');
writeFileSync(csv, 'text,label\nthe sky,blue\nthe snow,white\n');
const txt = join(root, 'data.txt');
writeFileSync(txt, 'the\tDET\nsky\tNOUN\n');
const finetune = (...args: string[]) => primer(['finetune', '--model', model, '--out', join(root, 'out'), '--epochs', '1', ...args]);

test('finetune --data DIR says it is a directory and which files it reads', async () => {
  let r = await finetune('--data', dir);
  assert.equal(r.error, `primer: error: --data ${dir} is a directory; give a file (.csv, .tsv, .jsonl, .conll, or SQuAD .json)`);
  assert.equal(r.exitCode, 1);
  r = await finetune('--data', dir, '--type', 'qa');
  assert.equal(r.error, `primer: error: --data ${dir} is a directory; give a file (SQuAD .json)`);
  // --val-data is read as the type --data implies.
  r = await finetune('--data', csv, '--val-data', dir);
  assert.equal(r.error, `primer: error: --val-data ${dir} is a directory; give a file (.csv, .tsv or .jsonl)`);
  r = await finetune('--data', csv, '--test-data', join(root, 'nope.csv'));
  assert.equal(r.error, `primer: error: --test-data ${join(root, 'nope.csv')} does not exist`);
  r = await finetune('--objective', 'sft', '--data', dir);
  assert.equal(r.error, `primer: error: --data ${dir} is a directory; give a prompt/response .jsonl file`);
  assert.equal(r.exitCode, 1);
});

test('finetune --data with an unknown extension lists every supported one and --type', async () => {
  const r = await finetune('--data', txt);
  assert.equal(r.error, `primer: error: --data ${txt}: cannot tell the format from the extension ".txt"; supported: `
    + '.csv .tsv .tab .jsonl .ndjson (text classification), .conll .conllu .iob .bio .tags (token tags) and .json (SQuAD QA); '
    + 'for a CoNLL or SQuAD file named otherwise add --type tag or --type qa');
  assert.equal(r.exitCode, 1);
  assert.doesNotMatch(r.error!, /pass format/);
  // The way out it names works: the same file trains as tags.
  const tagged = await finetune('--data', txt, '--type', 'tag');
  assert.equal(tagged.error, null);
  assert.match(tagged.out.join('\n'), /GPT2ForTokenClassification .* 1 training examples[\s\S]*model saved to /);
});

test('the extensions listed are the ones the task readers take', () => {
  for (const [type, { exts }] of Object.entries(DATA_EXTENSIONS) as Array<[TaskType, { exts: readonly string[] }]>) {
    for (const ext of exts) assert.equal(taskTypeOfFile(`x${ext}`), type, ext);
  }
  for (const ext of DATA_EXTENSIONS.classify.exts) {
    const p = join(root, `t${ext}`);
    writeFileSync(p, ext.includes('json') ? '{"text":"a","label":"b"}\n' : `text${ext === '.csv' ? ',' : '\t'}label\na${ext === '.csv' ? ',' : '\t'}b\n`);
    assert.deepEqual(readTextExamples(p).map((x) => [x.text, x.label]), [['a', 'b']], ext);
  }
});

test('the data readers name a directory instead of failing with EISDIR or an empty extension', () => {
  assert.throws(() => readTextExamples(dir), { name: 'RangeError', message: `${dir} is a directory; give a .csv, .tsv or .jsonl file` });
  assert.throws(() => readTokenTagged(dir), { name: 'RangeError', message: `${dir} is a directory; give a CoNLL (token<TAB>tag) file` });
  assert.throws(() => readSquad(dir), { name: 'RangeError', message: `${dir} is a directory; give a SQuAD .json file` });
  assert.throws(() => readTextExamples(txt), { message: 'data.txt: cannot tell the format from the extension ".txt": text examples are read from .csv, .tsv (.tab) or .jsonl (.ndjson) files' });
});
