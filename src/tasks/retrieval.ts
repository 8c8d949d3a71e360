/**
 * A dense retrieval index: every document embedded once (embed.ts, unit vectors), queries ranked by
 * cosine similarity, cos(q, d) = q̂·d̂, exact top-k over all documents.
 *
 * An index directory is also a sentence-transformers model directory, so the same embeddings can be
 * reproduced in Python with SentenceTransformer(dir):
 *
 *   config.json, model.safetensors, tokenizer files   the backbone (module 0, Transformer, path "")
 *   modules.json, sentence_bert_config.json           the module list and max_seq_length
 *   1_Pooling/config.json                             pooling mode (mean / cls / lasttoken)
 *   2_Normalize/                                      L2 normalisation (no parameters)
 *   embeddings.safetensors                            "embeddings" [N, dim] float32
 *   docs.jsonl                                        {"id", "text"} per row, in embedding order
 *   primer_index.json                                 what built it (pooling, maxLength, count, dim)
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { TaskDataError, readTextExamples } from './data.ts';
import { contextLength, type Backbone } from '../models/heads.ts';
import { defaultMaxLength, embedTexts, loadEmbedder, type EmbeddingPooling } from './embed.ts';
import { jsonErrorLocation, readJsonFile } from '../io/json.ts';

export interface IndexedDocument {
  id: string;
  text: string;
}

const TEXT_EXTENSIONS = new Set(['.txt', '.md', '.text']);

/**
 * Documents from a directory (every .txt/.md file below it is one document, id = its relative path),
 * a JSONL file ("text" and optional "id" per line), a CSV/TSV (column "text"), or a text file (one
 * document per non-empty line, id = "line N").
 */
export function readDocuments(path: string, o: { textColumn?: string } = {}): IndexedDocument[] {
  if (!existsSync(path)) throw new RangeError(`--docs: ${path} does not exist`);
  if (statSync(path).isDirectory()) {
    const out: IndexedDocument[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir).sort()) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (TEXT_EXTENSIONS.has(extname(name).toLowerCase())) {
          const text = readFileSync(p, 'utf8').trim();
          if (text) out.push({ id: relative(path, p), text });
        }
      }
    };
    walk(path);
    if (out.length === 0) throw new RangeError(`--docs: ${path} holds no non-empty .txt or .md files`);
    return out;
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') {
    // Editors on Windows save UTF-8 with a byte-order mark, which JSON.parse rejects on line 1.
    const docs = readFileSync(path, 'utf8').replace(/^\uFEFF/, '').split('\n').flatMap((line, i) => {
      if (!line.trim()) return [];
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        const at = jsonErrorLocation(line, e);
        throw new TaskDataError(basename(path), i + 1, at?.column ?? 1, `invalid JSON: ${at?.reason ?? (e as Error).message}`);
      }
      if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new TaskDataError(basename(path), i + 1, 1, `expected a JSON object per line, got ${JSON.stringify(row)}`);
      const r = row as { text?: unknown; id?: unknown };
      const field = o.textColumn ?? 'text';
      const text = (r as Record<string, unknown>)[field];
      if (typeof text !== 'string' || !text.trim()) throw new TaskDataError(basename(path), i + 1, 1, `no non-empty string field "${field}"`);
      return [{ id: r.id === undefined ? `line ${i + 1}` : String(r.id), text, line: i + 1 }];
    });
    if (docs.length === 0) throw new RangeError(`--docs: ${path} has no non-empty lines`);
    // Search results name documents by id: two documents under one id could not be told apart.
    const seen = new Map<string, number>();
    for (const d of docs) {
      const line = d.line;
      const first = seen.get(d.id);
      if (first !== undefined) throw new TaskDataError(basename(path), line, 1, `id ${JSON.stringify(d.id)} is already used on line ${first}`);
      seen.set(d.id, line);
    }
    return docs.map(({ id, text }) => ({ id, text }));
  }
  if (ext === '.csv' || ext === '.tsv' || ext === '.tab') {
    return readTextExamples(path, { textColumn: o.textColumn, labelColumn: null }).map((x, i) => ({ id: x.id ?? `row ${i + 1}`, text: x.text }));
  }
  const docs = readFileSync(path, 'utf8').split('\n').flatMap((line, i) => (line.trim() ? [{ id: `line ${i + 1}`, text: line.trim() }] : []));
  if (docs.length === 0) throw new RangeError(`--docs: ${path} has no non-empty lines`);
  return docs;
}

/** Files of a model directory that the index carries so it is self-contained. */
const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt'];

export interface BuildIndexOptions {
  modelDir: string;
  documents: readonly IndexedDocument[];
  out: string;
  pooling?: EmbeddingPooling;
  maxLength?: number;
  batchSize?: number;
}

export interface IndexInfo {
  format: 'primer-index';
  version: 1;
  pooling: EmbeddingPooling;
  maxLength: number;
  count: number;
  dim: number;
}

/** sentence-transformers' module list and pooling config for an index directory. */
export function sentenceTransformersConfig(pooling: EmbeddingPooling, dim: number, maxLength: number): Record<string, unknown> {
  return {
    'modules.json': [
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
    ],
    'sentence_bert_config.json': { max_seq_length: maxLength, do_lower_case: false },
    '1_Pooling/config.json': {
      word_embedding_dimension: dim,
      pooling_mode_cls_token: pooling === 'cls',
      pooling_mode_mean_tokens: pooling === 'mean',
      pooling_mode_max_tokens: false,
      pooling_mode_mean_sqrt_len_tokens: false,
      pooling_mode_weightedmean_tokens: false,
      pooling_mode_lasttoken: pooling === 'last',
      include_prompt: true,
    },
  };
}

export function buildIndex(o: BuildIndexOptions): IndexInfo {
  if (o.documents.length === 0) throw new RangeError('index build: no documents');
  const { backbone, tokenizer } = loadEmbedder(o.modelDir);
  const pooling = o.pooling ?? 'mean';
  // Recorded in sentence_bert_config.json and reused for queries, so it must be one the model can read.
  const maxLength = Math.min(o.maxLength ?? defaultMaxLength(backbone), contextLength(backbone));
  const emb = embedTexts(backbone, tokenizer, o.documents.map((d) => d.text), { pooling, maxLength, batchSize: o.batchSize });
  mkdirSync(join(o.out, '1_Pooling'), { recursive: true });
  mkdirSync(join(o.out, '2_Normalize'), { recursive: true });
  for (const f of MODEL_FILES) if (existsSync(join(o.modelDir, f))) copyFileSync(join(o.modelDir, f), join(o.out, f));
  for (const [file, json] of Object.entries(sentenceTransformersConfig(pooling, emb.dim, maxLength))) writeJsonAtomic(join(o.out, file), json, { indent: 2 });
  writeSafetensors(join(o.out, 'embeddings.safetensors'), [{ name: 'embeddings', shape: [emb.count, emb.dim], data: emb.vectors }], { format: 'pt' });
  writeFileSync(join(o.out, 'docs.jsonl'), o.documents.map((d) => JSON.stringify({ id: d.id, text: d.text })).join('\n') + '\n');
  const info: IndexInfo = { format: 'primer-index', version: 1, pooling, maxLength, count: emb.count, dim: emb.dim };
  writeJsonAtomic(join(o.out, 'primer_index.json'), info, { indent: 2 });
  return info;
}

export interface LoadedIndex {
  info: IndexInfo;
  documents: IndexedDocument[];
  embeddings: Float32Array;
  backbone: Backbone;
  tokenizer: Tokenizer;
}

export function loadIndex(dir: string): LoadedIndex {
  const infoPath = join(dir, 'primer_index.json');
  if (!existsSync(infoPath)) throw new RangeError(`--index: ${dir} is not an index directory (no primer_index.json; build one with "primer index build")`);
  const info = readJsonFile(infoPath, (message, cause) => new RangeError(message, { cause })) as IndexInfo;
  const file = readSafetensors(join(dir, 'embeddings.safetensors'));
  const shape = file.info('embeddings').shape;
  const documents = readFileSync(join(dir, 'docs.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as IndexedDocument);
  if (shape[0] !== documents.length || shape[1] !== info.dim) {
    throw new RangeError(`${dir}: embeddings.safetensors is ${shape.join('×')} but docs.jsonl has ${documents.length} documents of dim ${info.dim}`);
  }
  return { info, documents, embeddings: file.getFloat32('embeddings'), ...loadEmbedder(dir) };
}

export interface SearchHit {
  rank: number;
  id: string;
  score: number;
  text: string;
}

/** Indices and scores of the k rows of `vectors` (N×dim unit rows) most similar to the unit vector q. */
export function topK(vectors: Float32Array, dim: number, q: ArrayLike<number>, k: number): Array<{ index: number; score: number }> {
  const n = vectors.length / dim;
  const scores: Array<{ index: number; score: number }> = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += vectors[i * dim + j]! * q[j]!;
    scores.push({ index: i, score: s });
  }
  // Ties keep document order, so results are reproducible.
  return scores.sort((a, b) => b.score - a.score || a.index - b.index).slice(0, k);
}

export function searchIndex(index: LoadedIndex, query: string, k = 5): SearchHit[] {
  if (!query.trim()) throw new RangeError('search: the query is empty');
  const q = embedTexts(index.backbone, index.tokenizer, [query], { pooling: index.info.pooling, maxLength: index.info.maxLength });
  return topK(index.embeddings, index.info.dim, q.vectors, k).map((h, r) => ({ rank: r + 1, id: index.documents[h.index]!.id, score: h.score, text: index.documents[h.index]!.text }));
}
