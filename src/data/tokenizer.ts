/**
 * Tokenizer plumbing for training: load tokenizer.json from a model directory, and train the
 * byte-level BPE used by `primer pretrain` on a corpus.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import { trainBpeAsync } from '../tokenizers/bpe-train.ts';
import { readCorpus, type CorpusOptions } from './corpus.ts';

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

/** The id of the document separator: the end-of-text token. */
export function separatorId(tokenizer: Tokenizer): number {
  const name = tokenizer.specialTokens.eos ?? tokenizer.specialTokens.sep ?? END_OF_TEXT;
  const id = tokenizer.tokenToId(name);
  if (id === undefined) throw new Error(`the tokenizer has no end-of-text token (${name}) to separate documents`);
  return id;
}
