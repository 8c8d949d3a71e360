/**
 * Shared shapes for Primer's tokenizers (byte-level BPE and WordPiece).
 *
 * Added for the shared infrastructure (BPE engineer), all optional / additive:
 *   - AddedTokenSpec: one entry of tokenizer.json `added_tokens` (HF field names); see added-tokens.ts
 *     (AddedVocabulary: atomic splitting of raw text on added/special tokens).
 *   - TruncationStrategy, Side and the extra EncodeOptions fields (truncationStrategy, truncationSide,
 *     paddingSide, padToMultipleOf); see postprocess.ts (truncation, padding, post-processors and
 *     `encodeWithPipeline` / `encodeBatchWithPipeline`, which turn a per-sequence encoder into the
 *     full Tokenizer.encode / encodeBatch behaviour).
 */

/** One encoded text (or text pair), as Hugging Face `tokenizers` returns it. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  /** [start, end) UTF-16 code-unit offsets into the source text (of its own sequence for pairs); [0,0] for added specials. */
  offsets: Array<[number, number]>;
  /** 0 for the first sequence, 1 for the second (pairs). */
  typeIds: number[];
  attentionMask: number[];
  /** 1 where the token is a special token ([CLS], <|endoftext|>, padding, …). */
  specialTokensMask: number[];
  /** Which input sequence each token came from (0, 1), or null for specials. */
  sequenceIds: Array<number | null>;
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens ([CLS] … [SEP] for BERT). Default true. */
  addSpecialTokens?: boolean;
  /** Truncate to at most this many tokens (pairs: the longest sequence is shortened first, as HF). */
  maxLength?: number;
  /** Pad to maxLength ('max_length') or to the longest in the batch ('longest'). */
  padding?: 'max_length' | 'longest' | false;
  /** How a pair is shortened to maxLength (HF names). Default 'longest_first'. */
  truncationStrategy?: TruncationStrategy;
  /** Which end loses tokens. Default 'right'. */
  truncationSide?: Side;
  /** Which end gets the padding. Default 'right'. */
  paddingSide?: Side;
  /** Round the padded length up to a multiple of this (e.g. 8 for tensor cores). */
  padToMultipleOf?: number;
}

export type TruncationStrategy = 'longest_first' | 'only_first' | 'only_second';
export type Side = 'left' | 'right';

/** One entry of tokenizer.json `added_tokens`, with Hugging Face's field names. */
export interface AddedTokenSpec {
  id: number;
  content: string;
  /** Only match when not inside a word (no letter, digit or '_' right before or after). */
  single_word?: boolean;
  /** Swallow the whitespace on the left into the token's span. */
  lstrip?: boolean;
  /** Swallow the whitespace on the right into the token's span. */
  rstrip?: boolean;
  /** Matched in the normalized text (true) or in the raw text (false, the usual for specials). */
  normalized?: boolean;
  /** A control token (<|endoftext|>, [CLS], …): skipped by decode({skipSpecialTokens}), 1 in specialTokensMask. */
  special?: boolean;
}

export interface Tokenizer {
  readonly type: 'bpe' | 'wordpiece';
  readonly vocabSize: number;
  encode(text: string, pair?: string | null, options?: EncodeOptions): Encoding;
  encodeBatch(texts: Array<string | [string, string]>, options?: EncodeOptions): Encoding[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Special tokens by role, when the tokenizer has them. */
  readonly specialTokens: {
    pad?: string; unk?: string; cls?: string; sep?: string; mask?: string; bos?: string; eos?: string;
  };
  /** Hugging Face tokenizer.json as a plain object (JSON.stringify-able). */
  toJSON(): unknown;
  /** Writes tokenizer.json (and the legacy files: vocab.json+merges.txt or vocab.txt) into dir. */
  save(dir: string): void;
}
