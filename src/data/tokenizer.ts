/**
 * Tokenizer plumbing for training: load tokenizer.json from a model directory, and train tokenizers
 * on corpus files read as `data prepare` and `pretrain` read them (.gz, JSONL, binary files skipped,
 * invalid UTF-8 as U+FFFD with a warning).
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer, trainTokenizerAsync, type TrainTokenizerOptions } from '../tokenizers/index.ts';
import { trainBpeAsync } from '../tokenizers/bpe-train.ts';
import { safeCutBefore } from '../tokenizers/bytelevel.ts';
import { CorpusError, listCorpusFiles, readCorpus, type CorpusOptions } from './corpus.ts';

export const END_OF_TEXT = '<|endoftext|>';

/** Loads the tokenizer of a model directory (tokenizer.json, or the legacy vocab files) or a tokenizer file. */
export function loadTokenizerJson(path: string): Tokenizer {
  return loadTokenizer(path);
}

/** Trains a byte-level BPE (GPT-2 style, <|endoftext|> = id 0) on the corpus files. */
export async function trainBpeOnCorpus(paths: readonly string[], vocabSize: number, opts: CorpusOptions = {}): Promise<Tokenizer> {
  async function* texts(): AsyncGenerator<string> {
    for await (const c of readCorpus(paths, opts)) yield c.text;
  }
  return trainBpeAsync(texts(), { vocabSize, specialTokens: [END_OF_TEXT] });
}

/** No file of the corpus holds any text (empty, whitespace only, or binary). */
export class NoTextError extends CorpusError {
  constructor(readonly files: readonly string[], options?: { cause?: unknown }) {
    super(`no text in ${files.join(', ')} (empty, whitespace only, or binary)`, options);
  }
}

/**
 * Trains a BPE or WordPiece tokenizer on corpus files, streamed. Word counts are per text, so each
 * document is passed on in pieces cut where no pre-tokenizer joins across (readCorpus cuts its chunks
 * at any space). A file without text is reported through `warn`; no text at all is a NoTextError.
 */
export async function trainTokenizerOnCorpus(paths: readonly string[], options: Omit<TrainTokenizerOptions, 'files' | 'texts'>, opts: CorpusOptions = {}): Promise<Tokenizer> {
  const warn = opts.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  const reported = new Set<string>();
  const withText = new Set<string>();
  const corpus = { ...opts, warn: (m: string) => (reported.add(m.slice(0, m.indexOf(': '))), warn(m)) };
  async function* texts(): AsyncGenerator<string> {
    let carry = '';
    for await (const c of readCorpus(paths, corpus)) {
      if (!withText.has(c.source) && /\S/.test(c.text)) withText.add(c.source);
      const text = carry + c.text;
      const cut = c.end ? text.length : safeCutBefore(text);
      if (cut > 0) yield text.slice(0, cut);
      carry = text.slice(cut);
    }
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = await trainTokenizerAsync({ ...options, texts: texts() });
  } catch (e) {
    if (e instanceof CorpusError && /the corpus is empty/.test(e.message)) throw new NoTextError(listCorpusFiles(paths), { cause: e });
    throw e;
  }
  for (const file of listCorpusFiles(paths)) if (!withText.has(file) && !reported.has(file)) warn(`${file}: no text; skipped`);
  return tokenizer;
}

/** The id of the document separator: the end-of-text token. */
export function separatorId(tokenizer: Tokenizer): number {
  const name = tokenizer.specialTokens.eos ?? tokenizer.specialTokens.sep ?? END_OF_TEXT;
  const id = tokenizer.tokenToId(name);
  if (id === undefined) throw new Error(`the tokenizer has no end-of-text token (${name}) to separate documents`);
  return id;
}
