/**
 * Where does a pre-trained BERT look? A diagnostic for the word-level plateau (issue #15):
 *
 *   node --import tsx bench/bert-attention.ts <model dir> [<prepared data dir>] [--seq 128] [--documents 64]
 *
 * prints, for every layer and head, the mean attention probability at relative offsets −3..+3 seen from
 * the masked positions of held-out MLM blocks (uniform attention = 1/T everywhere) and the mean
 * attention entropy (uniform = ln T); the row norms of the word, position and token-type embeddings
 * (the embedding LayerNorm divides their sum by its norm, so their ratio decides how much position
 * information the keys and queries get); and MLM/NSP metrics on pairs from the training split and from
 * the held-out split, sampled evenly over documents. The data directory defaults to the model's own run (<model dir>/data).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelDir } from '../src/models/load.ts';
import { loadTokenizer } from '../src/tokenizers/index.ts';
import { openShards } from '../src/data/shards.ts';
import { maskingOptionsFor } from '../src/data/mlm.ts';
import { bertSpecialIds, collateNsp, mlmEvalBatches, type BertBatch } from '../src/data/bert-batches.ts';
import { instancesFromDocument, shuffle, type SegmentedDocuments } from '../src/data/nsp.ts';
import { Rng } from '../src/util/random.ts';
import { bertInputs, evaluateBert } from '../src/train/bert-metrics.ts';
import type { Tensor } from '../src/tensor/tensor.ts';

const { values: o, positionals } = parseArgs({ allowPositionals: true, options: { seq: { type: 'string' }, documents: { type: 'string' } } });
const [modelDir, dataArg] = positionals;
if (!modelDir) throw new Error('usage: bert-attention.ts <model dir> [<prepared data dir>] [--seq 128] [--documents 64]');
const dataDir = dataArg ?? join(modelDir, 'data');
if (!existsSync(join(dataDir, 'manifest.json'))) throw new Error(`${dataDir}: no prepared shards (pass the data directory the model was trained on)`);
const loaded = loadModelDir(modelDir);
if (loaded.kind !== 'bert') throw new Error(`${modelDir}: a ${loaded.kind} model, not a BERT`);
const { model, config } = loaded;
model.eval();
const seq = Number(o.seq ?? 128);
const tokenizer = loadTokenizer(dataDir);
const ids = bertSpecialIds(tokenizer);
const data = openShards(dataDir);
const options = { batchSize: 8, maxSeqLength: seq, seed: 2, ids, masking: maskingOptionsFor(tokenizer, { probability: 0.15 }), shortSeqProb: 0.1 };

// Attention probabilities recomputed from each layer's queries and keys (the fused kernel does not return them).
const batch = mlmEvalBatches(data.val, options, 1)[0]!;
const x = bertInputs(batch);
const T = x.length, C = config.hidden_size, H = config.num_attention_heads, D = C / H;
const offsets = [-3, -2, -1, 0, 1, 2, 3];
console.log(`attention from masked positions, T = ${T} (uniform: ${(1 / T).toFixed(3)} per position, entropy ${Math.log(T).toFixed(2)})`);
console.log(`layer head ${offsets.map((d) => `${d >= 0 ? '+' : ''}${d}`.padStart(6)).join('')}  entropy`);
let hidden = model.bert.embeddings.forward(x);
for (const [li, layer] of model.bert.layers.entries()) {
  const q = layer.attentionSelf.query.forward(hidden).data, k = layer.attentionSelf.key.forward(hidden).data;
  // relative_key: q_i · d_{i−j} joins q_i · k_j (row i − j + max_position_embeddings − 1 of the distance table).
  const dist = layer.attentionSelf.distance_embedding?.weight.data;
  for (let h = 0; h < H; h++) {
    const atOffset = new Float64Array(offsets.length);
    let entropy = 0, rows = 0;
    const p = new Float64Array(T);
    for (let b = 0; b < x.batch; b++) {
      for (let i = 0; i < T; i++) {
        if (batch.labels[b * T + i]! < 0) continue;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let e = 0; e < D; e++) s += q[(b * T + i) * C + h * D + e]! * k[(b * T + j) * C + h * D + e]!;
          const r = (i - j + config.max_position_embeddings - 1) * D;
          if (dist) for (let e = 0; e < D; e++) s += q[(b * T + i) * C + h * D + e]! * dist[r + e]!;
          p[j] = x.attentionMask && !x.attentionMask[b * T + j] ? -Infinity : s / Math.sqrt(D);
          max = Math.max(max, p[j]!);
        }
        let z = 0;
        for (let j = 0; j < T; j++) z += (p[j] = Math.exp(p[j]! - max));
        for (let j = 0; j < T; j++) {
          p[j]! /= z;
          if (p[j]! > 0) entropy -= p[j]! * Math.log(p[j]!);
        }
        offsets.forEach((d, n) => { if (i + d >= 0 && i + d < T) atOffset[n] += p[i + d]!; });
        rows++;
      }
    }
    console.log(`${String(li).padStart(5)} ${String(h).padStart(4)} ${[...atOffset].map((s) => (s / rows).toFixed(3).padStart(6)).join('')}  ${(entropy / rows).toFixed(2)}`);
  }
  hidden = layer.forward(hidden, x.attentionMask ?? null);
}

function rowNorms(t: Tensor, rows = t.shape[0]!): number[] {
  return Array.from({ length: rows }, (_, r) => Math.hypot(...t.data.subarray(r * C, (r + 1) * C))).sort((a, b) => a - b);
}
const quantile = (sorted: number[], q: number) => sorted[Math.floor(q * (sorted.length - 1))]!.toFixed(3);
const e = model.bert.embeddings;
const words = rowNorms(e.word_embeddings.weight), positions = rowNorms(e.position_embeddings.weight, T);
console.log(`embedding row norms: word median ${quantile(words, 0.5)} (p90 ${quantile(words, 0.9)}), position median ${quantile(positions, 0.5)}, `
  + `token type ${rowNorms(e.token_type_embeddings.weight).map((n) => n.toFixed(3)).join(' / ')} (initialisation: ${(0.02 * Math.sqrt(C)).toFixed(3)})`);

// NSP pairs sampled evenly over documents (about 256 in all, at least 4 per document, 16 per batch), so that no single long book decides
// the figure; the held-out split is often a handful of State of the Union addresses (2 % of 251 documents).
function pairsByDocument(split: SegmentedDocuments, documents: number): BertBatch[] {
  const rng = new Rng(7);
  const shuffled = <T>(items: T[]) => (shuffle(items, rng), items);
  const chosen = shuffled(Array.from({ length: split.count }, (_, i) => i)).slice(0, documents);
  const instances = chosen.flatMap((d) => shuffled(instancesFromDocument(split, d, { maxSeqLength: seq, clsId: ids.cls, sepId: ids.sep }, rng))
    .slice(0, Math.max(4, Math.ceil(256 / chosen.length))));
  const batches: BertBatch[] = [];
  for (let i = 0; i < instances.length; i += 16) batches.push(collateNsp(instances.slice(i, i + 16), options, rng));
  return batches;
}
for (const [name, split] of [['training', data.train], ['held-out', data.val]] as const) {
  const batches = pairsByDocument(split, Number(o.documents ?? 64));
  const m = evaluateBert(model, batches);
  const pairs = batches.reduce((n, b) => n + b.batch, 0);
  console.log(`${name} pairs (${pairs} from ${Math.min(split.count, Number(o.documents ?? 64))} documents): MLM loss ${m.mlmLoss.toFixed(3)}, `
    + `MLM accuracy ${(100 * m.mlmAccuracy).toFixed(1)} %, NSP accuracy ${(100 * m.nspAccuracy!).toFixed(1)} %`);
}
