/**
 * `primer finetune`, `classify`, `tag` and `answer` spawned as a user runs them, on a tiny GPT that
 * Primer pre-trained on synthetic reviews: metrics printed (accuracy, macro-F1, per-class table,
 * confusion matrix; token accuracy; SQuAD EM/F1), HF-layout outputs, inference, and bad input
 * reported with file, line and column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pretrainTinyGpt, syntheticReviews, POSITIVE, NEGATIVE } from '../tasks/tiny-lm.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'primer.js');
const root = mkdtempSync(join(tmpdir(), 'primer-cli-finetune-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const gpt = pretrainTinyGpt(root, { steps: 200 });

function primer(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, encoding: 'utf8', input, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, content: string): string {
  const p = join(root, name);
  writeFileSync(p, content);
  return p;
}

const reviewsCsv = () => write('reviews.csv', 'text,label\n' + syntheticReviews(120, 11).map((r) => `${r.text},${r.label}`).join('\n') + '\n');

test('finetune a classifier from a CSV with --labels, print the full report, then classify (args and stdin)', async () => {
  const out = join(root, 'clf');
  const r = primer(['finetune', '--model', await gpt, '--data', reviewsCsv(), '--labels', '32', '--epochs', '4', '--lr', '3e-3', '--seed', '1', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /32 training examples \(--labels 32, seed 1\), 12 validation, 12 test/);
  assert.match(r.stdout, /epoch 4: train loss \d\.\d+, val accuracy [\d.]+% macro-F1 [\d.]+%/);
  const acc = Number(/\naccuracy ([\d.]+)% {3}macro-F1 ([\d.]+)%/.exec(r.stdout)![1]);
  assert.ok(acc >= 75, `test accuracy ${acc}%\n${r.stdout}`);
  assert.match(r.stdout, /class +precision +recall +f1 +support\nnegative +[\d.]+% +[\d.]+% +[\d.]+% +6\npositive +[\d.]+% +[\d.]+% +[\d.]+% +6/);
  assert.match(r.stdout, /confusion matrix \(rows: true label, columns: predicted\)\n +negative +positive\nnegative +\d+ +\d+\npositive +\d+ +\d+/);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['GPT2ForSequenceClassification']);
  assert.deepEqual(config.id2label, { 0: 'negative', 1: 'positive' });
  assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'tokenizer.json')));
  assert.ok(!existsSync(join(out, 'checkpoints')), 'the epoch checkpoint is removed; the best epoch is saved');
  const results = JSON.parse(readFileSync(join(out, 'eval_results.json'), 'utf8'));
  assert.equal(results.test.accuracy * 100, acc);

  const texts = [`the food was ${POSITIVE[0]}`, `very ${NEGATIVE[1]} service`, `it was ${POSITIVE[1]}`, `quite ${NEGATIVE[0]} film`];
  const c = primer(['classify', '--model', out, '--text', ...texts]);
  assert.equal(c.code, 0, c.stderr);
  const rows = c.stdout.trim().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(rows.map((x) => x[2]), texts);
  for (const [, p] of rows) assert.ok(Number(p) >= 0.5 && Number(p) <= 1);
  assert.ok(rows.filter((x, i) => x[0] === (i % 2 ? 'negative' : 'positive')).length >= 3, c.stdout);
  const s = primer(['classify', '--model', out, '--json'], `${texts[0]}\n\n${texts[1]}\n`);
  assert.equal(s.code, 0, s.stderr);
  const lines = s.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.ok(Math.abs(lines[0].scores.negative + lines[0].scores.positive - 1) < 1e-9);
  assert.equal(lines[0].label, rows[0]![0]);
});

test('finetune a tagger on a CoNLL file (token accuracy, per-tag F1) and tag text', async () => {
  const tagOf = (w: string) => ([...POSITIVE, ...NEGATIVE].includes(w) ? 'ADJ' : ['the', 'it'].includes(w) ? 'DET' : 'OTHER');
  const conll = write('tags.conll', syntheticReviews(80, 12).map((r) => r.text.split(' ').map((w) => `${w}\t${tagOf(w)}`).join('\n')).join('\n\n') + '\n');
  const out = join(root, 'tagger');
  const r = primer(['finetune', '--model', await gpt, '--data', conll, '--epochs', '5', '--lr', '3e-3', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const acc = Number(/token accuracy ([\d.]+)%/.exec(r.stdout)![1]);
  assert.ok(acc >= 80, `token accuracy ${acc}%\n${r.stdout}`);
  assert.match(r.stdout, /\nADJ +[\d.]+% +[\d.]+% +[\d.]+% +\d+\nDET +[\d.]+% +[\d.]+% +[\d.]+% +\d+\nOTHER /);
  assert.match(r.stdout, /\(\d+ tokens\)/);
  const t = primer(['tag', '--model', out, '--text', 'the film was great']);
  assert.equal(t.code, 0, t.stderr);
  const tagged = t.stdout.trim().split(' ').map((x) => x.split('/'));
  assert.deepEqual(tagged.map((x) => x[0]), ['the', 'film', 'was', 'great']);
  for (const [, tag] of tagged) assert.ok(['ADJ', 'DET', 'OTHER'].includes(tag!), t.stdout);
  assert.ok(tagged.filter(([w, tag]) => tag === tagOf(w!)).length >= 3, t.stdout);
});

test('finetune extractive QA on SQuAD JSON with strided windows (EM/F1), then answer', async () => {
  const data = syntheticReviews(80, 13).map((r, i) => {
    const op = r.text.split(' ').find((w) => [...POSITIVE, ...NEGATIVE].includes(w))!;
    const context = `${r.text} and that is all there is to say`;
    return { title: 't', paragraphs: [{ context, qas: [{ id: `q${i}`, question: 'how was it?', answers: [{ text: op, answer_start: context.indexOf(op) }] }] }] };
  });
  const squad = write('qa.json', JSON.stringify({ version: '1.1', data }));
  const out = join(root, 'qa');
  const r = primer(['finetune', '--model', await gpt, '--data', squad, '--epochs', '5', '--lr', '3e-3', '--max-length', '24', '--stride', '6', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const [, em, f1] = /exact match ([\d.]+)% {3}F1 ([\d.]+)% {3}\(8 questions\)/.exec(r.stdout)!.map(Number);
  assert.ok(em! >= 50 && f1! >= em!, r.stdout);
  const context = 'the service was awful and that is all there is to say';
  const a = primer(['answer', '--model', out, '--question', 'how was it?', '--context', context, '--max-length', '24', '--stride', '6', '--json']);
  assert.equal(a.code, 0, a.stderr);
  const ans = JSON.parse(a.stdout);
  assert.equal(context.slice(ans.start, ans.end), ans.answer, 'the answer is the character span of the context');
  assert.ok(ans.answer.length > 0);
});

test('bad input: ragged CSV, missing label column, unknown test label and empty text name file, line and column', async () => {
  const model = await gpt;
  const run = (data: string[], extra: string[] = []) => primer(['finetune', '--model', model, ...data, '--epochs', '1', '--out', join(root, 'bad'), ...extra]);
  let r = run(['--data', write('ragged.csv', 'text,label\nthe food,positive\nbad,negative,extra\n')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ragged\.csv:3:\d+: ragged row: 3 fields but the header has 2/);
  r = run(['--data', reviewsCsv(), '--label-column', 'sentiment']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /reviews\.csv:1:\d+: .*sentiment/);
  const testCsv = write('test.csv', 'text,label\nthe food was good,positive\nmeh,neutral\n');
  r = run(['--data', reviewsCsv(), '--val-data', testCsv.replace('test.csv', 'reviews.csv'), '--test-data', testCsv]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /test\.csv:3:5: unknown label "neutral" \(the model knows: negative, positive\)/);
  assert.doesNotMatch(r.stdout, /epoch 1/, 'checked before training');
  r = run(['--data', write('empty.csv', 'text,label\ngood,positive\n ,negative\n')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /empty\.csv:3:1: empty text in column "text"/);
  r = primer(['finetune', '--model', model, '--out', join(root, 'bad')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--task NAME .* or --data FILE is required/);
});
