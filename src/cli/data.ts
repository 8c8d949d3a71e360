/** `primer data prepare | inspect`: option parsing and printing; the work is in src/data/prepare.ts and shards.ts. */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { prepareData, type PrepareProgress } from '../data/prepare.ts';
import { inspectData } from '../data/inspect.ts';
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
        + `${result.manifest.shards.length} shard(s) in ${o.out}; removed ${n(c.duplicates)} duplicate, ${n(c.empty)} empty document(s)`
        + (c.invalidUtf8 > 0 ? `; ${n(c.invalidUtf8)} document(s) with invalid UTF-8 kept (read as U+FFFD)` : ''));
    }));

  group.command('inspect')
    .description('print statistics and decoded samples of a prepared directory')
    .argument('<dir>', 'a directory written by "primer data prepare"')
    .option('--samples <n>', 'decoded sample documents (default 3)', intArg(0))
    .action(action(async (dir: string, o: { samples?: number }) => {
      console.log(inspectData(dir, { samples: o.samples }));
    }));
}
