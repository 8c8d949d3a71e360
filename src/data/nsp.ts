/**
 * Next-sentence-prediction instances, built as google-research/bert's create_pretraining_data.py
 * (create_instances_from_document) builds them. A document is a list of segments (sentences, as
 * token ids). For each document:
 *
 *   max_tokens = max_seq_length − 3                       room for [CLS] A [SEP] B [SEP]
 *   target     = max_tokens, or with probability short_seq_prob a uniform length in [2, max_tokens]
 *   walk the segments, accumulating a chunk until its length ≥ target (or the document ends); then
 *     a_end  = uniform in [1, |chunk| − 1]  (1 when the chunk has one segment)
 *     A      = chunk[0 : a_end]
 *     B      = with probability ½, or always when |chunk| = 1: a random span of a random OTHER document,
 *              starting at a random segment and grown to ≥ target − |A| tokens; the chunk's unused
 *              segments chunk[a_end:] are put back (the walk steps back over them) so none is lost;
 *              otherwise B = chunk[a_end:] (the actual next sentences)
 *     truncate_seq_pair: while |A| + |B| > max_tokens, drop one token from the longer of the two, at its
 *              front or its back with equal probability
 *     tokens = [CLS] A [SEP] B [SEP],  token_type_ids = 0 for [CLS] A [SEP], 1 for B [SEP]
 *   and the whole thing is repeated dupe_factor times with fresh randomness.
 *
 * One deliberate difference: the original tries 10 times to draw a document other than the current
 * one and then uses whatever it drew; here the other document is drawn among the n − 1 others
 * directly, so a "random" B never comes from the same document.
 * Masking is not done here: it is dynamic, per batch (mlm.ts).
 */
import type { Rng } from '../util/random.ts';

/** Documents as segment lists, by index (in memory or backed by shards). */
export interface SegmentedDocuments {
  readonly count: number;
  segments(index: number): readonly Int32Array[];
}

export interface NspOptions {
  maxSeqLength: number;
  /** Probability of a shorter target length (default 0.1). */
  shortSeqProb?: number;
  /** Probability that B is a random span (default 0.5). */
  randomNextProb?: number;
  clsId: number;
  sepId: number;
}

export interface NspInstance {
  tokens: Int32Array;
  tokenTypeIds: Int32Array;
  /** True when B was taken from another document (NSP label 1). */
  isRandomNext: boolean;
  /** Where A and B came from before truncation: [document, first segment, end segment). */
  sourceA: [number, number, number];
  sourceB: [number, number, number];
}

/** Python's random.randint(a, b): inclusive on both ends. */
function randint(rng: Rng, a: number, b: number): number {
  return a + rng.int(b - a + 1);
}

function concat(segments: readonly Int32Array[], from: number, to: number): number[] {
  const out: number[] = [];
  for (let j = from; j < to; j++) for (const t of segments[j]!) out.push(t);
  return out;
}

/** google's truncate_seq_pair: shorten the longer sequence, one token at a time, at a random end. */
export function truncateSeqPair(a: number[], b: number[], maxTokens: number, rng: Rng): void {
  while (a.length + b.length > maxTokens) {
    const longer = a.length > b.length ? a : b;
    if (rng.next() < 0.5) longer.shift();
    else longer.pop();
  }
}

function checkOptions(o: NspOptions, docs: SegmentedDocuments): void {
  if (!Number.isInteger(o.maxSeqLength) || o.maxSeqLength < 5) throw new RangeError(`NSP: maxSeqLength must be an integer ≥ 5, got ${o.maxSeqLength}`);
  if (docs.count < 2) throw new RangeError(`NSP: needs at least 2 documents to draw random next sentences from, got ${docs.count}`);
}

/** The instances of one document (google's create_instances_from_document). Empty segments must be removed beforehand. */
export function instancesFromDocument(docs: SegmentedDocuments, docIndex: number, o: NspOptions, rng: Rng): NspInstance[] {
  checkOptions(o, docs);
  const document = docs.segments(docIndex);
  const maxTokens = o.maxSeqLength - 3;
  const shortProb = o.shortSeqProb ?? 0.1;
  const randomProb = o.randomNextProb ?? 0.5;
  let target = maxTokens;
  if (rng.next() < shortProb) target = randint(rng, 2, maxTokens);
  const instances: NspInstance[] = [];
  let chunkStart = 0;
  let chunkLength = 0;
  for (let i = 0; i < document.length; i++) {
    chunkLength += document[i]!.length;
    if (i !== document.length - 1 && chunkLength < target) continue;
    const chunkEnd = i + 1;
    const chunkSize = chunkEnd - chunkStart;
    const aEnd = chunkStart + (chunkSize >= 2 ? randint(rng, 1, chunkSize - 1) : 1);
    const a = concat(document, chunkStart, aEnd);
    let b: number[];
    let isRandomNext: boolean;
    let sourceB: [number, number, number];
    if (chunkSize === 1 || rng.next() < randomProb) {
      isRandomNext = true;
      const targetB = target - a.length;
      let other = rng.int(docs.count - 1);
      if (other >= docIndex) other++;
      const randomDocument = docs.segments(other);
      const start = rng.int(randomDocument.length);
      b = [];
      let j = start;
      for (; j < randomDocument.length; j++) {
        for (const t of randomDocument[j]!) b.push(t);
        if (b.length >= targetB) {
          j++;
          break;
        }
      }
      sourceB = [other, start, j];
      i -= chunkEnd - aEnd; // put the unused segments back
    } else {
      isRandomNext = false;
      b = concat(document, aEnd, chunkEnd);
      sourceB = [docIndex, aEnd, chunkEnd];
    }
    const sourceA: [number, number, number] = [docIndex, chunkStart, aEnd];
    truncateSeqPair(a, b, maxTokens, rng);
    if (a.length < 1 || b.length < 1) throw new Error(`NSP: empty segment in document ${docIndex} (remove empty segments first)`);
    const n = a.length + b.length + 3;
    const tokens = new Int32Array(n);
    const tokenTypeIds = new Int32Array(n);
    tokens[0] = o.clsId;
    tokens.set(a, 1);
    tokens[a.length + 1] = o.sepId;
    tokens.set(b, a.length + 2);
    tokens[n - 1] = o.sepId;
    tokenTypeIds.fill(1, a.length + 2);
    instances.push({ tokens, tokenTypeIds, isRandomNext, sourceA, sourceB });
    chunkStart = i + 1;
    chunkLength = 0;
  }
  return instances;
}

/** google's create_training_instances without masking: dupe_factor passes over all documents, then a shuffle. */
export function createNspInstances(docs: SegmentedDocuments, o: NspOptions & { dupeFactor?: number }, rng: Rng): NspInstance[] {
  const dupe = o.dupeFactor ?? 10;
  if (!Number.isInteger(dupe) || dupe < 1) throw new RangeError(`NSP: dupeFactor must be a positive integer, got ${dupe}`);
  const out: NspInstance[] = [];
  for (let d = 0; d < dupe; d++) {
    for (let i = 0; i < docs.count; i++) out.push(...instancesFromDocument(docs, i, o, rng));
  }
  shuffle(out, rng);
  return out;
}

export function shuffle<T>(items: T[], rng: Rng): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

/** In-memory documents; empty segments and documents without segments are dropped, as google's reader does. */
export function segmentedDocuments(documents: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>): SegmentedDocuments {
  const docs = documents
    .map((d) => d.filter((s) => s.length > 0).map((s) => Int32Array.from(s)))
    .filter((d) => d.length > 0);
  return { count: docs.length, segments: (i) => docs[i]! };
}
