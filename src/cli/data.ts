/** `primer data prepare | inspect`: option parsing and printing; the work is in src/data/prepare.ts and shards.ts. */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { prepareData, type PrepareProgress } from '../data/prepare.ts';
import { openShards, readManifest, type ShardSplit } from '../data/shards.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { action, choiceArg, floatArg, intArg } from './options.ts';

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const n = (x: number) => x.toLocaleString('en-US');

/** A bar on stderr when it is a terminal (MB read, MB/s, documents, tokens), else a line every ~5 s. */
function prepareProgress(): { update(p: PrepareProgress): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update(p) {
        if (p.seconds - last < 5) return;
        last = p.seconds;
        console.error(`data prepare: ${mb(p.bytesRead)}/${mb(p.totalBytes)} MB, ${(p.bytesRead / 1e6 / Math.max(p.seconds, 1e-9)).toFixed(1)} MB/s, ${n(p.documents)} documents, ${n(p.tokens)} tokens`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({
    format: 'prepare {bar} {percentage}% | {read}/{total_mb} MB | {speed} MB/s | {docs} docs | {tokens} tokens | files {files}',
    stream: process.stderr, hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(p) {
      const payload = {
        read: mb(p.bytesRead), total_mb: mb(p.totalBytes), speed: (p.bytesRead / 1e6 / Math.max(p.seconds, 1e-9)).toFixed(1),
        docs: n(p.documents), tokens: n(p.tokens), files: `${p.filesDone}/${p.files}`,
      };
      if (!started) bar.start(Math.max(1, p.totalBytes), p.bytesRead, payload);
      else bar.update(p.bytesRead, payload);
      started = true;
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

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
    `documents read: ${n(c.documentsRead)} (${mb(c.textBytes)} MB of text); removed: ${n(c.duplicates)} duplicate, ${n(c.empty)} empty, ${n(c.invalidUtf8)} with invalid UTF-8, ${n(c.incomplete)} cut by read errors`,
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
    lines.push(`  ${JSON.stringify(text.length > chars ? text.slice(0, chars) + '…' : text)}`);
    lines.push(`  first sentence: ${JSON.stringify(tokenizer.decode(Array.from(segs[0] ?? [])))}`);
  }
  return lines.join('\n');
}

export function registerDataCommands(program: Command): void {
  const group = program.command('data').description('prepare tokenized corpus shards (any size, resumable) and inspect them');

  group.command('prepare')
    .description('tokenize a corpus into shards with document and sentence boundaries, a manifest and a val split')
    .requiredOption('--tokenizer <path>', 'tokenizer.json or a directory with one (e.g. from "primer tokenizer train")')
    .requiredOption('--corpus <paths...>', 'text files or directories (.txt, .md, .jsonl, optionally .gz)')
    .requiredOption('--out <dir>', 'output directory (rerun the same command to resume an interrupted run)')
    .option('--val-fraction <x>', 'share of documents held out for validation (default 0.005)', floatArg(0, 0.99))
    .option('--workers <n>', 'encoding threads (default: all cores; 0 = main thread)', intArg(0))
    .option('--jsonl-field <name>', 'JSONL field holding the text (default "text")')
    .option('--documents <how>', 'file: a file or JSONL record is a document; blank-line: blank lines separate documents', choiceArg(['file', 'blank-line'] as const))
    .option('--shard-tokens <n>', 'training tokens per shard (default 16777216)', intArg(1))
    .option('--seed <n>', 'seed of the train/val assignment (default 0)', intArg(0))
    .action(action(async (o: { tokenizer: string; corpus: string[]; out: string; valFraction?: number; workers?: number; jsonlField?: string; documents?: 'file' | 'blank-line'; shardTokens?: number; seed?: number }) => {
      const bar = prepareProgress();
      let result;
      try {
        result = await prepareData({
          tokenizer: o.tokenizer, corpus: o.corpus, out: o.out, valFraction: o.valFraction, workers: o.workers, jsonlField: o.jsonlField,
          documents: o.documents, shardTokens: o.shardTokens, seed: o.seed, onProgress: (p) => bar.update(p),
          warn: (m) => process.stderr.write(`\r\x1b[Kwarning: ${m}\n`),
        });
      } finally {
        bar.stop();
      }
      const c = result.manifest.counts;
      if (result.alreadyComplete) {
        console.log(`${o.out} is already complete (${n(c.trainTokens)} training tokens); nothing to do`);
        return;
      }
      console.log(`${result.resumed ? 'resumed and finished' : 'finished'} in ${result.seconds.toFixed(1)} s (${result.mbPerSecond.toFixed(1)} MB/s): `
        + `${n(c.trainDocuments)} train / ${n(c.valDocuments)} val documents, ${n(c.trainTokens)} / ${n(c.valTokens)} tokens, `
        + `${result.manifest.shards.length} shard(s) in ${o.out}; removed ${n(c.duplicates)} duplicate, ${n(c.empty)} empty, ${n(c.invalidUtf8)} invalid document(s)`);
    }));

  group.command('inspect')
    .description('print statistics and decoded samples of a prepared directory')
    .argument('<dir>', 'a directory written by "primer data prepare"')
    .option('--samples <n>', 'decoded sample documents (default 3)', intArg(0))
    .action(action(async (dir: string, o: { samples?: number }) => {
      console.log(inspectData(dir, { samples: o.samples }));
    }));
}
