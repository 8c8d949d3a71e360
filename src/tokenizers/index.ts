/**
 * Tokenizers: loading (Hugging Face tokenizer.json, or legacy vocab.json + merges.txt / vocab.txt) and
 * training, for byte-level BPE (GPT-2 style; Llama 3 / Qwen2 Split regexes), SentencePiece-style BPE with
 * byte fallback (Llama 2, TinyLlama) and WordPiece (BERT style).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Tokenizer } from './types.ts';
import { BpeTokenizer, type SpecialRoles } from './bpe.ts';
import { readTextChunks, trainBpe, trainBpeAsync, trainBpeFromFiles } from './bpe-train.ts';
import { WordPieceTokenizer } from './wordpiece.ts';
import { isSentencePieceBpe, SentencePieceBpeTokenizer } from './sp-bpe.ts';
import { WordPieceTrainer } from './wordpiece-train.ts';
import { formatError, isObject, readObject, readString } from './json-fields.ts';
import { describeJsonError, readJsonFile as readJsonFileAt } from '../io/json.ts';
import { writeFileAtomic } from '../io/atomic.ts';

export type { Tokenizer, Encoding, EncodeOptions } from './types.ts';
export { BpeTokenizer } from './bpe.ts';
export { WordPieceTokenizer } from './wordpiece.ts';
export { SentencePieceBpeTokenizer } from './sp-bpe.ts';
export { trainBpe, trainBpeFromFiles } from './bpe-train.ts';
export { encodeParallel } from './parallel.ts';

/** A parsed tokenizer.json: dispatches on model.type. */
export function tokenizerFromJSON(json: unknown, roles?: SpecialRoles): Tokenizer {
  const root = readObject(json, '(root)');
  const model = readObject(root.model, 'model');
  const type = readString(model.type ?? (isObject(model.merges) || Array.isArray(model.merges) ? 'BPE' : undefined), 'model.type');
  if (type === 'BPE') return isSentencePieceBpe(root) ? SentencePieceBpeTokenizer.fromJSON(json, roles) : BpeTokenizer.fromJSON(json, roles);
  if (type === 'WordPiece') return WordPieceTokenizer.fromJSON(json, roles);
  return formatError('model.type', `${JSON.stringify(type)} is not supported (BPE, WordPiece)`);
}

function readJsonFile(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    return formatError('(file)', `is ${describeJsonError(text, e)}`, basename(path));
  }
}

/**
 * Special-token roles from tokenizer_config.json / special_tokens_map.json next to the tokenizer, as
 * transformers writes them ("eos_token": "</s>" or {"content": "</s>", …}); undefined when neither exists.
 */
function readRoles(dir: string): SpecialRoles | undefined {
  let roles: Record<string, string> | undefined;
  for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    const json = readJsonFile(path);
    if (!isObject(json)) continue;
    for (const role of ['pad', 'unk', 'cls', 'sep', 'mask', 'bos', 'eos']) {
      const v = json[`${role}_token`];
      const content = typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : undefined;
      if (content !== undefined) (roles ??= {})[role] = content;
    }
  }
  return roles;
}

/** do_lower_case from tokenizer_config.json (BERT's legacy files), default true (bert-base-uncased). */
function readLowercase(dir: string): boolean {
  const path = join(dir, 'tokenizer_config.json');
  if (!existsSync(path)) return true;
  const json = readJsonFile(path);
  return isObject(json) && typeof json.do_lower_case === 'boolean' ? json.do_lower_case : true;
}

/**
 * tokenizer.save regenerates tokenizer_config.json from the tokenizer alone; the fields of the original
 * file it does not know (chat_template, model_max_length, padding_side, …) are merged back in, as
 * save_pretrained keeps them. The regenerated keys win: they describe the tokenizer actually written.
 */
export function keepTokenizerConfigFields(dir: string, original: Record<string, unknown>): void {
  const path = join(dir, 'tokenizer_config.json');
  const generated = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> : {};
  writeFileAtomic(path, JSON.stringify({ ...original, ...generated }, null, 2) + '\n');
}

/** keepTokenizerConfigFields with the fields of `from`'s tokenizer_config.json (none when it has none). */
export function carryTokenizerConfig(from: string, to: string): void {
  const path = join(from, 'tokenizer_config.json');
  if (existsSync(path)) keepTokenizerConfigFields(to, readJsonFileAt(path, (message, cause) => new Error(message, { cause })) as Record<string, unknown>);
}

/** Whether a directory holds tokenizer files loadTokenizer reads (tokenizer.json, vocab.json + merges.txt, or vocab.txt). */
export function hasTokenizerFiles(dir: string): boolean {
  return existsSync(join(dir, 'tokenizer.json')) || (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt')))
    || existsSync(join(dir, 'vocab.txt'));
}

/**
 * Loads a tokenizer from a tokenizer.json file or a directory holding tokenizer.json, or the legacy
 * files vocab.json + merges.txt (byte-level BPE) or vocab.txt (WordPiece).
 */
export function loadTokenizer(dirOrFile: string): Tokenizer {
  if (!existsSync(dirOrFile)) throw new Error(`loadTokenizer: ${dirOrFile} does not exist`);
  const isDir = statSync(dirOrFile).isDirectory();
  const dir = isDir ? dirOrFile : dirname(dirOrFile);
  const roles = readRoles(dir);
  if (!isDir) {
    const name = basename(dirOrFile);
    if (name.endsWith('.txt')) {
      try {
        return WordPieceTokenizer.fromVocabFile(dirOrFile, { lowercase: readLowercase(dir) });
      } catch (e) {
        // Any .txt is taken for a WordPiece vocab.txt; a corpus file or merges.txt given by mistake
        // should hear what was expected, not only which vocab check failed.
        throw new Error(`loadTokenizer: ${dirOrFile} was read as a WordPiece vocab.txt (one token per line) and is not one: ${(e as Error).message}. `
          + 'Give a tokenizer.json, a vocab.txt, or the directory that holds the tokenizer files', { cause: e });
      }
    }
    const json = readJsonFile(dirOrFile);
    if (isObject(json) && isObject(json.model)) return tokenizerFromJSON(json, roles);
    // A model's config.json sits beside merges.txt in every GPT run: say what it is instead of a vocab.json error.
    if (isObject(json) && ('model_type' in json || 'architectures' in json)) {
      throw new Error(`loadTokenizer: ${dirOrFile} is a model config, not a tokenizer; give its directory ${dir} or ${join(dir, 'tokenizer.json')}`);
    }
    const merges = join(dir, 'merges.txt');
    if (existsSync(merges)) return BpeTokenizer.fromFiles(dirOrFile, merges, { roles });
    throw new Error(`loadTokenizer: ${dirOrFile} is neither a tokenizer.json nor a vocab.json with merges.txt beside it`);
  }
  const tokenizerJson = join(dir, 'tokenizer.json');
  if (existsSync(tokenizerJson)) return tokenizerFromJSON(readJsonFile(tokenizerJson), roles);
  if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) {
    return BpeTokenizer.fromFiles(join(dir, 'vocab.json'), join(dir, 'merges.txt'), { roles });
  }
  if (existsSync(join(dir, 'vocab.txt'))) return WordPieceTokenizer.fromVocabFile(join(dir, 'vocab.txt'), { lowercase: readLowercase(dir) });
  throw new Error(`loadTokenizer: ${dir} has no tokenizer.json, vocab.json + merges.txt, or vocab.txt`);
}

export interface TrainTokenizerOptions {
  type: 'bpe' | 'wordpiece';
  vocabSize: number;
  /** Plain UTF-8 text files (read streaming for BPE); the CLI reads .gz and JSONL too, through src/data/tokenizer.ts. */
  files?: readonly string[];
  /** Or texts. */
  texts?: Iterable<string>;
  /** Default 2 for BPE (HF's ByteLevelBPETokenizer), 0 for WordPiece (HF's WordPieceTrainer). */
  minFrequency?: number;
  /** Default ['<|endoftext|>'] for BPE, [PAD] [UNK] [CLS] [SEP] [MASK] for WordPiece. */
  specialTokens?: string[];
  /** WordPiece only: lowercase and strip accents (bert-base-uncased). Default true. */
  lowercase?: boolean;
  /** (done, total) in merges (BPE) or vocabulary size (WordPiece). */
  onProgress?: (done: number, total: number) => void;
  /** WordPiece: where the warning goes when the alphabet alone exceeds vocabSize (default console.warn). */
  warn?: (message: string) => void;
}

/**
 * `files` are read as plain UTF-8 text: a compressed or JSONL corpus would be learned as its bytes and
 * JSON syntax, a directory or missing path would fail deep in a read. Each is refused by name.
 */
function checkPlainTextFiles(files: readonly string[]): void {
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`trainTokenizer: ${f} does not exist`);
    if (statSync(f).isDirectory()) throw new Error(`trainTokenizer: ${f} is a directory; list its files, or use trainTokenizerOnCorpus, which reads directories`);
    if (/\.(gz|jsonl|json|ndjson)$/i.test(f)) {
      throw new Error(`trainTokenizer: ${f} is not plain text; trainTokenizerOnCorpus (primer tokenizer train) reads .gz and JSONL corpora`);
    }
  }
}

export function trainTokenizer(options: TrainTokenizerOptions): Tokenizer {
  if (!options.files && !options.texts) throw new TypeError('trainTokenizer: give files or texts');
  const type = checkType(options);
  if (options.files) checkPlainTextFiles(options.files);
  if (type === 'bpe') {
    if (!options.texts) return trainBpeFromFiles(options.files!, bpeOptions(options));
    return trainBpe(concatSources(options.texts, options.files ?? []), bpeOptions(options));
  }
  const trainer = wordPieceTrainer(options);
  for (const t of options.texts ?? []) trainer.feed(t);
  if (options.files) trainer.feedFiles(options.files);
  return trainer.train();
}

/**
 * trainTokenizer on a stream of texts (a corpus read by src/data); each text must end where no
 * pre-tokenizer joins across (bytelevel.ts, safeCutBefore), as words are counted per text.
 */
export async function trainTokenizerAsync(options: Omit<TrainTokenizerOptions, 'files' | 'texts'> & { texts: AsyncIterable<string> }): Promise<Tokenizer> {
  if (checkType(options) === 'bpe') return trainBpeAsync(options.texts, bpeOptions(options));
  const trainer = wordPieceTrainer(options);
  for await (const t of options.texts) trainer.feed(t);
  return trainer.train();
}

type TrainSettings = Omit<TrainTokenizerOptions, 'files' | 'texts'>;

function checkType(options: TrainSettings): 'bpe' | 'wordpiece' {
  if (options.type === 'bpe' && options.lowercase) throw new RangeError('trainTokenizer: lowercase is not supported for byte-level BPE (it keeps text exactly)');
  if (options.type === 'bpe' || options.type === 'wordpiece') return options.type;
  throw new RangeError(`trainTokenizer: type must be 'bpe' or 'wordpiece', got ${JSON.stringify(options.type)}`);
}

function bpeOptions(o: TrainSettings) {
  return { vocabSize: o.vocabSize, minFrequency: o.minFrequency, specialTokens: o.specialTokens, onProgress: o.onProgress };
}

function wordPieceTrainer(o: TrainSettings): WordPieceTrainer {
  return new WordPieceTrainer({
    vocabSize: o.vocabSize, minFrequency: o.minFrequency, specialTokens: o.specialTokens,
    normalizer: { lowercase: o.lowercase ?? true }, onProgress: o.onProgress, warn: o.warn,
  });
}

function* concatSources(texts: Iterable<string>, files: readonly string[]): Generator<string> {
  yield* texts;
  for (const p of files) yield* readTextChunks(p);
}
