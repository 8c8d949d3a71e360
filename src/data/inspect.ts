/** The report of `primer data inspect`: counts, length statistics and decoded samples of a prepared directory. */
import { openShards, readManifest, type ShardSplit } from './shards.ts';
import { loadTokenizer } from '../tokenizers/index.ts';

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const n = (x: number) => x.toLocaleString('en-US');

function lengthStats(split: ShardSplit, maxShards: number): string {
  const lengths: number[] = [];
  let segments = 0;
  for (let s = 0; s < Math.min(split.shards.length, maxShards); s++) {
    const data = split.load(s);
    for (let d = 0; d + 1 < data.docOffsets.length; d++) lengths.push(data.docOffsets[d + 1]! - data.docOffsets[d]!);
    segments += data.segOffsets.length - 1;
  }
  if (lengths.length === 0) return 'no documents';
  lengths.sort((a, b) => a - b);
  const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
  const scope = split.shards.length > maxShards ? ` (first ${maxShards} shards)` : '';
  return `tokens per document: min ${lengths[0]}, median ${lengths[lengths.length >> 1]}, mean ${mean.toFixed(1)}, max ${lengths[lengths.length - 1]}; `
    + `${(segments / lengths.length).toFixed(1)} sentences per document${scope}`;
}

/** At most `chars` UTF-16 units and "…" when cut; never half of a surrogate pair (an emoji, a rare CJK character). */
function clip(text: string, chars: number): string {
  if (text.length <= chars) return text;
  const end = /[\uD800-\uDBFF]/.test(text[chars - 1] ?? '') ? chars - 1 : chars;
  return text.slice(0, end) + '…';
}

/** The report printed by `primer data inspect`. */
export function inspectData(dir: string, options: { samples?: number; chars?: number } = {}): string {
  const manifest = readManifest(dir);
  const data = openShards(dir, { allowIncomplete: true });
  const tokenizer = loadTokenizer(dir);
  const c = manifest.counts;
  const bySource = (status: string) => manifest.sources.filter((s) => s.status === status).length;
  const lines = [
    `${dir}: ${manifest.complete ? 'complete' : 'INCOMPLETE (resume with the same "primer data prepare" command)'}`,
    `tokenizer: ${manifest.tokenizer.type}, ${n(manifest.tokenizer.vocabSize)} tokens (sha256 ${manifest.tokenizer.sha256.slice(0, 12)}…); ids stored as ${manifest.dtype}`,
    `sources: ${manifest.sources.length} file(s): ${bySource('done')} read, ${bySource('skipped')} without text, ${bySource('error')} unreadable or failed, ${bySource('pending')} pending`,
    `documents read: ${n(c.documentsRead)} (${mb(c.textBytes)} MB of text); removed: ${n(c.duplicates)} duplicate, ${n(c.empty)} empty, ${n(c.incomplete)} cut by read errors; ${n(c.invalidUtf8)} kept with invalid UTF-8 read as U+FFFD`,
    `train: ${n(c.trainDocuments)} documents, ${n(c.trainTokens)} tokens in ${data.train.shards.length} shard(s); ${lengthStats(data.train, 4)}`,
    `val:   ${n(c.valDocuments)} documents, ${n(c.valTokens)} tokens in ${data.val.shards.length} shard(s) (val fraction ${manifest.options.valFraction})`,
  ];
  if (manifest.warnings.length) lines.push(`warnings (${manifest.warnings.length}):`, ...manifest.warnings.slice(0, 10).map((w) => `  ${w}`));
  const samples = Math.min(options.samples ?? 3, data.train.count);
  const chars = options.chars ?? 300;
  for (let i = 0; i < samples; i++) {
    const index = Math.floor((i * data.train.count) / Math.max(1, samples));
    const segs = data.train.segments(index);
    const text = tokenizer.decode(Array.from(data.train.document(index)));
    lines.push('', `sample ${i + 1}: train document ${index} (${data.train.document(index).length} tokens, ${segs.length} sentences)`);
    lines.push(`  ${JSON.stringify(clip(text, chars))}`);
    // A document without sentence boundaries is one sentence: uncut, it would print the whole document.
    lines.push(`  first sentence: ${JSON.stringify(clip(tokenizer.decode(Array.from(segs[0] ?? [])), chars))}`);
  }
  return lines.join('\n');
}
