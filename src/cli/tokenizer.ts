/**
 * `primer tokenizer train | encode | decode`. Text comes from stdin as UTF-8 (invalid bytes become
 * U+FFFD); encode prints ids as JSON, decode prints text. `encode < f | decode` reproduces f exactly
 * (nothing is trimmed, so a trailing newline is encoded too; use --lines for one array per line).
 */
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CorpusError } from '../data/corpus.ts';
import { NoTextError, trainTokenizerOnCorpus } from '../data/tokenizer.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { encodeParallel, encodeToIds } from '../tokenizers/parallel.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { action, choiceArg, intArg } from './options.ts';

/** Inputs over this many characters get worker threads and (on a terminal) a progress bar. */
const LONG_INPUT_CHARS = 8 << 20;

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(Buffer.concat(chunks));
}

/** A progress bar on stderr when it is a terminal, else nothing. */
function progressBar(label: string): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total}`, stream: process.stderr }, Presets.shades_classic);
  let started = false;
  return {
    update(done, total) {
      if (!started) bar.start(total, 0);
      started = true;
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Bad paths as one line naming the path (before training, which may take minutes). */
export function checkTrainPaths(inputs: readonly string[], out: string): void {
  for (const p of inputs) {
    if (!existsSync(p)) throw new RangeError(`tokenizer train: --input ${p} does not exist`);
    if (statSync(p).isDirectory()) throw new RangeError(`tokenizer train: --input ${p} is a directory (give text files, or the files in it: ${join(p, '*.txt')})`);
  }
  if (existsSync(out) && !statSync(out).isDirectory()) throw new RangeError(`tokenizer train: --out ${out} is a file, not a directory`);
}

function splitLines(input: string): string[] {
  const lines = input.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export interface EncodeCommandOptions {
  /** One JSON array per input line (else the whole input is one text). */
  lines?: boolean;
  /** Lines are "first<TAB>second" pairs (implies lines). */
  pair?: boolean;
  addSpecialTokens?: boolean;
}

/** The output of `tokenizer encode` for an input text: JSON arrays of ids, one per line of output. */
export async function encodeCommand(tokenizer: Tokenizer, input: string, options: EncodeCommandOptions = {}): Promise<string> {
  const add = options.addSpecialTokens ?? true;
  if (options.pair) {
    return splitLines(input).map((line, i) => {
      const tab = line.indexOf('\t');
      if (tab < 0) throw new RangeError(`tokenizer encode --pair: line ${i + 1} has no tab between the two texts`);
      return JSON.stringify(tokenizer.encode(line.slice(0, tab), line.slice(tab + 1), { addSpecialTokens: add }).ids) + '\n';
    }).join('');
  }
  if (!options.lines) return JSON.stringify(Array.from(encodeToIds(tokenizer, input, add))) + '\n';
  const lines = splitLines(input);
  let ids: Int32Array[];
  if (input.length > LONG_INPUT_CHARS) {
    const bar = progressBar('encode');
    try {
      ids = await encodeParallel(tokenizer, lines, { addSpecialTokens: add, onProgress: bar.update });
    } finally {
      bar.stop();
    }
  } else {
    ids = lines.map((l) => encodeToIds(tokenizer, l, add));
  }
  return ids.map((a) => JSON.stringify(Array.from(a)) + '\n').join('');
}

function checkIds(value: unknown, where: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new RangeError(`tokenizer decode: ${where} must be an array of non-negative integer ids`);
  }
  return value as number[];
}

/**
 * The output of `tokenizer decode`: input is one JSON array of ids (prints the text as is), a JSON array
 * of arrays, or JSON lines of arrays (prints one decoded text per line).
 */
export function decodeCommand(tokenizer: Tokenizer, input: string, options: { skipSpecialTokens?: boolean } = {}): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch {
    parsed = splitLines(input).filter((l) => l.trim() !== '').map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new RangeError(`tokenizer decode: line ${i + 1} is not JSON (expected an array of ids)`);
      }
    });
    if ((parsed as unknown[]).length === 0) throw new RangeError('tokenizer decode: no ids on stdin');
    return (parsed as unknown[]).map((ids, i) => tokenizer.decode(checkIds(ids, `line ${i + 1}`), options) + '\n').join('');
  }
  if (Array.isArray(parsed) && parsed.length > 0 && parsed.every(Array.isArray)) {
    return parsed.map((ids, i) => tokenizer.decode(checkIds(ids, `array ${i + 1}`), options) + '\n').join('');
  }
  return tokenizer.decode(checkIds(parsed, 'the input'), options);
}

export function registerTokenizerCommands(program: Command): void {
  const group = program.command('tokenizer').description('train tokenizers (byte-level BPE, WordPiece) and encode or decode with them');

  group.command('train')
    .description('train a tokenizer on text files and write tokenizer.json (+ legacy files) into --out')
    .requiredOption('--type <type>', 'bpe (GPT-2 style, byte-level) or wordpiece (BERT style)', choiceArg(['bpe', 'wordpiece'] as const))
    .requiredOption('--vocab-size <n>', 'final vocabulary size, special tokens included (wordpiece keeps every character of the input '
      + 'and its "##" form, as Hugging Face does, even when they alone are more: then it warns and the vocabulary is larger)', intArg(1))
    .requiredOption('--input <files...>', 'text files, read as "data prepare" reads them (.txt, .md, .jsonl, optionally .gz; invalid UTF-8 as U+FFFD)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--min-frequency <n>', 'merge only pairs seen at least this often (default: 2 for bpe, 0 for wordpiece)', intArg(0))
    .option('--lowercase', 'wordpiece: lowercase and strip accents, like bert-base-uncased (the default)')
    .option('--no-lowercase', 'wordpiece: keep case and accents, like bert-base-cased')
    .option('--special-tokens <tokens...>', 'special tokens, ids 0, 1, … (default: <|endoftext|> for bpe; [PAD] [UNK] [CLS] [SEP] [MASK] for wordpiece)')
    .action(action(async (opts: { type: 'bpe' | 'wordpiece'; vocabSize: number; input: string[]; out: string; minFrequency?: number; lowercase?: boolean; specialTokens?: string[] }) => {
      checkTrainPaths(opts.input, opts.out);
      const bar = progressBar(opts.type === 'bpe' ? 'merges' : 'vocab');
      const start = performance.now();
      const warn = (m: string) => process.stderr.write(`\r\x1b[Kwarning: ${m}\n`);
      let tokenizer: Tokenizer;
      try {
        tokenizer = await trainTokenizerOnCorpus(opts.input, {
          type: opts.type, vocabSize: opts.vocabSize, minFrequency: opts.minFrequency,
          lowercase: opts.lowercase, specialTokens: opts.specialTokens, onProgress: bar.update, warn,
        }, { warn });
      } catch (e) {
        if (e instanceof NoTextError) throw new CorpusError(`tokenizer train: --input ${e.files.join(' ')} has no text (empty, whitespace only, or binary)`);
        throw e;
      } finally {
        bar.stop();
      }
      tokenizer.save(opts.out);
      const seconds = ((performance.now() - start) / 1000).toFixed(1);
      console.error(`trained a ${opts.type} tokenizer with ${tokenizer.vocabSize} tokens in ${seconds} s → ${opts.out}`);
    }));

  group.command('encode')
    .description('encode stdin; prints the ids as a JSON array (one array per line with --lines)')
    .requiredOption('--tokenizer <path>', 'tokenizer.json, or a directory with tokenizer.json / vocab.json+merges.txt / vocab.txt')
    .option('--lines', 'encode each input line separately')
    .option('--pair', 'each line is "first<TAB>second", encoded as a pair (implies --lines)')
    .option('--no-special-tokens', 'do not add the special tokens of the post-processor ([CLS], [SEP], …)')
    .action(action(async (opts: { tokenizer: string; lines?: boolean; pair?: boolean; specialTokens: boolean }) => {
      const tokenizer = loadTokenizer(opts.tokenizer);
      const input = await readStdin();
      process.stdout.write(await encodeCommand(tokenizer, input, { lines: opts.lines, pair: opts.pair, addSpecialTokens: opts.specialTokens }));
    }));

  group.command('decode')
    .description('decode ids from stdin (a JSON array, an array of arrays, or JSON lines)')
    .requiredOption('--tokenizer <path>', 'tokenizer.json, or a directory with tokenizer.json / vocab.json+merges.txt / vocab.txt')
    .option('--skip-special-tokens', 'leave special tokens out of the text')
    .action(action(async (opts: { tokenizer: string; skipSpecialTokens?: boolean }) => {
      const tokenizer = loadTokenizer(opts.tokenizer);
      process.stdout.write(decodeCommand(tokenizer, await readStdin(), { skipSpecialTokens: opts.skipSpecialTokens }));
    }));
}
