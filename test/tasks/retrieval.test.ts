/**
 * Embeddings and retrieval: unit-length mean/last-token pooled vectors that match a hand computation,
 * an index directory in sentence-transformers layout, and search where every document, used as the
 * query, ranks itself first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embedTexts, loadEmbedder } from '../../src/tasks/embed.ts';
import { buildIndex, loadIndex, readDocuments, searchIndex, topK } from '../../src/tasks/retrieval.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { pretrainTinyGpt } from './tiny-lm.ts';
import type { GPT2Model } from '../../src/models/gpt.ts';

const root = mkdtempSync(join(tmpdir(), 'primer-retrieval-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = pretrainTinyGpt(root, { steps: 30 });

const DOCS = [
  'The cat sat on the mat and purred.', 'Stock markets fell sharply on Monday.', 'A recipe for bread needs flour, water and yeast.',
  'The president spoke about the economy.', 'Rain is expected over the weekend.', 'She plays the violin in an orchestra.',
  'Quantum computers use qubits.', 'The football match ended in a draw.', 'Bees make honey from nectar.', 'He repaired the old bicycle.',
];

test('embeddings: L2-normalised masked mean of the hidden states (hand computation), padding-independent', async () => {
  const { backbone, tokenizer } = loadEmbedder(await modelDir);
  const e = embedTexts(backbone, tokenizer, DOCS.slice(0, 3), { pooling: 'mean', batchSize: 3 });
  assert.equal(e.count, 3);
  assert.equal(e.dim, 64);
  for (let i = 0; i < 3; i++) {
    const row = e.vectors.subarray(i * 64, (i + 1) * 64);
    assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5);
    // Alone (no padding) and by hand: mean over the tokens of the hidden states, then normalised.
    const ids = Int32Array.from(tokenizer.encode(DOCS[i]!).ids);
    backbone.eval();
    const h = (backbone as GPT2Model).forward(ids, 1, ids.length).data;
    const mean = Array.from({ length: 64 }, (_, c) => { let s = 0; for (let t = 0; t < ids.length; t++) s += h[t * 64 + c]!; return s / ids.length; });
    const norm = Math.hypot(...mean);
    mean.forEach((m, c) => assert.ok(Math.abs(m / norm - row[c]!) < 1e-4, `doc ${i} dim ${c}: ${row[c]} vs ${m / norm}`));
  }
  const last = embedTexts(backbone, tokenizer, [DOCS[0]!, DOCS[1]!], { pooling: 'last' });
  const lastAlone = embedTexts(backbone, tokenizer, [DOCS[0]!], { pooling: 'last' });
  lastAlone.vectors.forEach((v, c) => assert.ok(Math.abs(v - last.vectors[c]!) < 1e-4));
  assert.throws(() => embedTexts(backbone, tokenizer, ['x'], { pooling: 'cls' }), /pooling 'cls' needs a BERT model/);
  assert.throws(() => embedTexts(backbone, tokenizer, [''], {}), /text 1 has no tokens/);
});

test('topK ranks by dot product with document order breaking ties', () => {
  const v = Float32Array.from([1, 0, 0, 1, 0.6, 0.8, 1, 0]);
  assert.deepEqual(topK(v, 2, [1, 0], 3).map((h) => h.index), [0, 3, 2]);
});

test('index build + search: the sentence-transformers layout, and every document retrieves itself first', async () => {
  const docsDir = join(root, 'docs');
  mkdirSync(join(docsDir, 'sub'), { recursive: true });
  DOCS.forEach((d, i) => writeFileSync(join(docsDir, i % 2 ? 'sub' : '', `doc${i}.txt`), d + '\n'));
  writeFileSync(join(docsDir, 'ignored.bin'), 'not text');
  const documents = readDocuments(docsDir);
  assert.equal(documents.length, DOCS.length);
  assert.ok(documents.some((d) => d.id === join('sub', 'doc1.txt')));
  const out = join(root, 'index');
  const info = buildIndex({ modelDir: await modelDir, documents, out, pooling: 'mean' });
  assert.deepEqual([info.count, info.dim, info.pooling], [DOCS.length, 64, 'mean']);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'docs.jsonl', 'embeddings.safetensors', 'sentence_bert_config.json']) assert.ok(existsSync(join(out, f)), f);
  const modules = JSON.parse(readFileSync(join(out, 'modules.json'), 'utf8'));
  assert.deepEqual(modules.map((m: { type: string }) => m.type), ['sentence_transformers.models.Transformer', 'sentence_transformers.models.Pooling', 'sentence_transformers.models.Normalize']);
  const pooling = JSON.parse(readFileSync(join(out, '1_Pooling', 'config.json'), 'utf8'));
  assert.equal(pooling.word_embedding_dimension, 64);
  assert.equal(pooling.pooling_mode_mean_tokens, true);
  assert.equal(pooling.pooling_mode_cls_token, false);
  assert.deepEqual(readSafetensors(join(out, 'embeddings.safetensors')).info('embeddings').shape, [DOCS.length, 64]);

  const index = loadIndex(out);
  for (const d of documents) {
    const hits = searchIndex(index, d.text, 3);
    assert.equal(hits.length, 3);
    assert.equal(hits[0]!.id, d.id, `query "${d.text}" → ${hits.map((h) => h.id).join(', ')}`);
    assert.ok(Math.abs(hits[0]!.score - 1) < 1e-4, `self-similarity ${hits[0]!.score}`);
    assert.ok(hits[0]!.score >= hits[1]!.score && hits[1]!.score >= hits[2]!.score);
  }
  assert.throws(() => searchIndex(index, '  ', 3), /query is empty/);
  assert.throws(() => loadIndex(root), /not an index directory/);
});

test('documents from JSONL and plain text files; bad JSONL names file and line', () => {
  const jsonl = join(root, 'docs.jsonl');
  writeFileSync(jsonl, '{"id": "a", "text": "first"}\n\n{"text": "second"}\n');
  assert.deepEqual(readDocuments(jsonl), [{ id: 'a', text: 'first' }, { id: 'line 3', text: 'second' }]);
  const txt = join(root, 'lines.txt');
  writeFileSync(txt, 'one\n\ntwo\n');
  assert.deepEqual(readDocuments(txt).map((d) => d.text), ['one', 'two']);
  writeFileSync(jsonl, '{"text": "ok"}\n{"title": "no text"}\n');
  assert.throws(() => readDocuments(jsonl), /docs\.jsonl:2:1/);
});

test('JSONL documents: a byte-order mark and CRLF are read; a line that is not an object names file and line', () => {
  const jsonl = join(root, 'bom.jsonl');
  writeFileSync(jsonl, '\uFEFF{"text": "first"}\r\n{"id": 7, "text": "second"}\r\n');
  assert.deepEqual(readDocuments(jsonl), [{ id: 'line 1', text: 'first' }, { id: '7', text: 'second' }]);
  writeFileSync(jsonl, '{"text": "ok"}\nnull\n');
  assert.throws(() => readDocuments(jsonl), /^\w*Error: bom\.jsonl:2:1: expected a JSON object per line, got null$/);
  writeFileSync(jsonl, '["a"]\n');
  assert.throws(() => readDocuments(jsonl), /bom\.jsonl:1:1: expected a JSON object per line, got \["a"\]/);
  // Broken JSON is placed by column; an id used twice would make two search results indistinguishable.
  writeFileSync(jsonl, '{"text": "ok"}\n{"text": "a" "id": 2}\n');
  assert.throws(() => readDocuments(jsonl), { message: 'bom.jsonl:2:14: invalid JSON: Expected \',\' or \'}\' after property value' });
  writeFileSync(jsonl, '{"id": "a", "text": "one"}\n\n{"id": "b", "text": "two"}\n{"id": "a", "text": "three"}\n');
  assert.throws(() => readDocuments(jsonl), { message: 'bom.jsonl:4:1: id "a" is already used on line 1' });
});

test('index build: a --max-length past the model context is cut to it, so long queries and documents still embed', async () => {
  const dir = await modelDir;
  const long = Array.from({ length: 200 }, (_, i) => DOCS[i % DOCS.length]).join(' ');
  const out = join(root, 'index-long');
  const info = buildIndex({ modelDir: dir, documents: [{ id: 'a', text: DOCS[0]! }, { id: 'b', text: long }], out, maxLength: 100_000 });
  assert.equal(info.maxLength, 64, 'the context of the tiny GPT');
  assert.equal(JSON.parse(readFileSync(join(out, 'sentence_bert_config.json'), 'utf8')).max_seq_length, 64);
  const hits = searchIndex(loadIndex(out), long, 2);
  assert.equal(hits[0]!.id, 'b');
  assert.ok(Math.abs(hits[0]!.score - 1) < 1e-4, `a long query cut like its document matches it: ${hits[0]!.score}`);
  const { backbone, tokenizer } = loadEmbedder(dir);
  assert.deepEqual(embedTexts(backbone, tokenizer, [long], { maxLength: 100_000 }).vectors, embedTexts(backbone, tokenizer, [long], { maxLength: 64 }).vectors);
});
