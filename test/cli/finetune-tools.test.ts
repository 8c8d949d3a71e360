/**
 * `primer eval few-shot`, `embed`, `index build`, `search` and `experiment label-efficiency` spawned as
 * a user runs them, on a tiny GPT that Primer pre-trained on synthetic reviews.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pretrainTinyGpt } from '../tasks/tiny-lm.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'primer.js');
const root = mkdtempSync(join(tmpdir(), 'primer-cli-tools-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const gpt = pretrainTinyGpt(root, { steps: 60 });

function primer(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, encoding: 'utf8', input, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('eval few-shot on the built-in sentiment task prints accuracy per shot count and the majority baseline', async () => {
  const r = primer(['eval', 'few-shot', '--model', await gpt, '--task', 'sentiment', '--shots', '0,1', '--limit', '20', '--seed', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /few-shot sentiment with .* \(20 test examples, template "Review: \{text\}\\nSentiment:"/);
  const rows = [...r.stdout.matchAll(/^ +(\d+) +([\d.]+) +([\d.]+)% +([\d.]+)%$/gm)].map((m) => m.slice(1).map(Number));
  assert.deepEqual(rows.map((x) => x[0]), [0, 1]);
  for (const [, used, acc] of rows) assert.ok(used! <= 1 && acc! >= 0 && acc! <= 100);
  assert.match(r.stdout, /majority-class baseline \("(positive|negative)"\): 50\.0%/);
  const j = primer(['eval', 'few-shot', '--model', await gpt, '--shots', '0', '--limit', '10', '--json']);
  assert.equal(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout);
  assert.equal(report.count, 10);
  assert.equal(report.results[0].confusion.flat().reduce((a: number, b: number) => a + b, 0), 10);
  const bad = primer(['eval', 'few-shot', '--model', await gpt, '--shots', '0,x']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /expected comma-separated integers/);
});

test('embed prints one unit-length vector per text', async () => {
  const r = primer(['embed', '--model', await gpt, '--text', 'the food was good', 'awful service']);
  assert.equal(r.code, 0, r.stderr);
  const vectors = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
  assert.equal(vectors.length, 2);
  for (const v of vectors) {
    assert.equal(v.length, 64);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4);
  }
  const cls = primer(['embed', '--model', await gpt, '--text', 'x', '--pooling', 'cls']);
  assert.equal(cls.code, 1);
  assert.match(cls.stderr, /pooling 'cls' needs a BERT model/);
  // From stdin: one vector per line, the same as --text; a blank line would shift every later vector, so it is refused.
  const piped = primer(['embed', '--model', await gpt], 'the food was good\nawful service\n');
  assert.equal(piped.stdout, r.stdout);
  const gap = primer(['embed', '--model', await gpt], 'the food was good\n\nawful service\n');
  assert.equal(gap.code, 1);
  assert.equal(gap.stdout, '');
  assert.match(gap.stderr, /embed: stdin line 2 is empty; it writes one line per input line/);
  // Nothing at all on stdin is an error too, not an empty answer with exit 0.
  for (const input of ['', '\n \n']) {
    const none = primer(['embed', '--model', await gpt], input);
    assert.deepEqual([none.code, none.stdout], [1, '']);
    assert.match(none.stderr, /stdin holds no text \(pipe one text per line, or give --text\)/);
  }
});

test('index build over a directory, then search: each document is its own top hit', async () => {
  const docs = join(root, 'docs');
  mkdirSync(docs);
  const texts = ['The cat sat on the mat.', 'Stock markets fell sharply on Monday.', 'Bread needs flour, water and yeast.', 'The match ended in a draw.'];
  texts.forEach((t, i) => writeFileSync(join(docs, `d${i}.txt`), t));
  const out = join(root, 'index');
  const b = primer(['index', 'build', '--model', await gpt, '--docs', docs, '--out', out]);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /indexed 4 documents \(64-dim mean-pooled embeddings\)/);
  for (const f of ['modules.json', 'sentence_bert_config.json', join('1_Pooling', 'config.json'), 'embeddings.safetensors', 'docs.jsonl']) assert.ok(existsSync(join(out, f)), f);
  texts.forEach((t, i) => {
    const s = primer(['search', '--index', out, '--query', t, '-k', '2']);
    assert.equal(s.code, 0, s.stderr);
    const lines = s.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, new RegExp(`^1\\. 1\\.0000  d${i}\\.txt  `));
    assert.match(lines[1]!, /^2\. [-\d.]+  d\d\.txt  /);
  });
  const j = primer(['search', '--index', out, '--query', texts[2]!, '--k', '1', '--json']);
  assert.deepEqual(JSON.parse(j.stdout).map((h: { id: string; rank: number }) => [h.rank, h.id]), [[1, 'd2.txt']]);
});

test('experiment label-efficiency with --model at toy scale writes results.json, the table and the SVG', async () => {
  const out = join(root, 'exp');
  const r = primer(['experiment', 'label-efficiency', '--model', await gpt, '--task', 'sentiment', '--labels', '8,16', '--seeds', '2', '--epochs', '1', '--test-examples', '20', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| labels \| pre-trained \(%\) \| TF-IDF \+ LR \(%\) \| from scratch \(%\) \| anchors \+ TF-IDF \(%\) \| Δ \(points\) \|/);
  assert.match(r.stdout, /\| 8 \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [+-][\d.]+ \|\n\| 16 \|/);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  // 2 budgets × 2 seeds × (TF-IDF, scratch, LP-FT, probe, prompt, anchor, anchors + TF-IDF, ensemble).
  assert.equal(results.runs.length, 32);
  assert.equal(results.pretrainSeconds, null, 'the given model is used, nothing is pre-trained');
  assert.ok(readFileSync(join(out, 'label-efficiency.svg'), 'utf8').includes('</svg>'));
  assert.ok(existsSync(join(out, 'results.md')));
  // The closing line names every file written, probabilities.json included.
  assert.match(r.stdout, new RegExp(`wrote ${join(out, 'results.json')}, ${join(out, 'results.md')}, ${join(out, 'label-efficiency.svg')}, ${join(out, 'probabilities.json')}\n?$`));
  assert.ok(existsSync(join(out, 'probabilities.json')));
});
