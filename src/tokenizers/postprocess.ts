/**
 * Encoding assembly shared by every tokenizer, following Hugging Face `tokenizers`:
 *
 *   encode(A, B?) = pad( postProcess( truncate( encodeSequence(A, 0), encodeSequence(B, 1) ) ) )
 *
 * - encodeSequence (the model's job): the tokens of one text, offsets into that text, no template specials.
 * - truncate: to maxLength minus the specials the post-processor will add; a pair is shortened
 *   "longest first" (HF's exact arithmetic, see truncateEncodings), or only_first / only_second.
 * - postProcess: TemplateProcessing ([CLS] $A [SEP] $B:1 [SEP]:1), BertProcessing, RobertaProcessing,
 *   ByteLevel (offset trimming only) or a Sequence of them; read and written as tokenizer.json
 *   `post_processor` (post-processors.ts).
 * - pad: to maxLength ('max_length') or to the batch's longest ('longest'), optionally rounded up to a
 *   multiple; pad tokens have attention 0, special mask 1, offsets [0, 0] and sequence id null.
 */
import type { EncodeOptions, Encoding } from './types.ts';
import { defaultProcess, type PostProcessor } from './post-processors.ts';
import { padEncoding, truncateEncodings, type PadSpec } from './encoding-ops.ts';

// One import for tokenizer implementations: the Encoding operations and the post-processors.
export * from './encoding-ops.ts';
export * from './post-processors.ts';

/** What a tokenizer provides so that encodeWithPipeline can implement Tokenizer.encode / encodeBatch. */
export interface SequenceEncoder {
  /** Tokens of one input text, offsets into that text, sequenceIds all = sequenceId, no template specials. */
  encodeSequence(text: string, sequenceId: number): Encoding;
  readonly postProcessor: PostProcessor | null;
  /** The pad token, or null when the tokenizer has none (then padding throws). */
  padSpec(): PadSpec | null;
}

function finish(p: SequenceEncoder, a: Encoding, b: Encoding | null, options: EncodeOptions): Encoding {
  const add = options.addSpecialTokens ?? true;
  const pp = p.postProcessor;
  if (options.maxLength !== undefined) {
    if (!Number.isInteger(options.maxLength) || options.maxLength < 0) {
      throw new RangeError(`encode: maxLength must be a non-negative integer, got ${options.maxLength}`);
    }
    const room = options.maxLength - (add && pp ? pp.addedTokens(b !== null) : 0);
    [a, b] = truncateEncodings(a, b, room, options.truncationStrategy, options.truncationSide);
  }
  return pp ? pp.process(a, b, add) : defaultProcess(a, b);
}

function padTarget(length: number, options: EncodeOptions): number {
  const m = options.padToMultipleOf;
  return m && m > 1 ? Math.ceil(length / m) * m : length;
}

/** The usual padSpec(): the tokenizer's `pad` special token and its id, or null when it has none. */
export function padSpecFromSpecialTokens(t: { specialTokens: { pad?: string }; tokenToId(token: string): number | undefined }): PadSpec | null {
  const token = t.specialTokens.pad;
  const id = token === undefined ? undefined : t.tokenToId(token);
  return token === undefined || id === undefined ? null : { id, token };
}

function padSpecOf(p: SequenceEncoder): PadSpec {
  const spec = p.padSpec();
  if (spec === null) throw new RangeError('padding needs a pad token, and this tokenizer has none (add one, e.g. "[PAD]" or "<|pad|>")');
  return spec;
}

/** Tokenizer.encode from a sequence encoder: truncation, post-processing, padding. */
export function encodeWithPipeline(p: SequenceEncoder, text: string, pair: string | null | undefined, options: EncodeOptions = {}): Encoding {
  const a = p.encodeSequence(text, 0);
  const b = pair === null || pair === undefined ? null : p.encodeSequence(pair, 1);
  const enc = finish(p, a, b, options);
  if (options.padding === 'max_length') {
    if (options.maxLength === undefined) throw new RangeError("encode: padding 'max_length' needs maxLength");
    padEncoding(enc, padTarget(options.maxLength, options), padSpecOf(p), options.paddingSide);
  } else if (options.padding === 'longest' && options.padToMultipleOf) {
    padEncoding(enc, padTarget(enc.ids.length, options), padSpecOf(p), options.paddingSide);
  }
  return enc;
}

/** Tokenizer.encodeBatch: each input encoded alone, then padded together ('longest' = the batch's longest). */
export function encodeBatchWithPipeline(p: SequenceEncoder, inputs: Array<string | [string, string]>, options: EncodeOptions = {}): Encoding[] {
  const unpadded: EncodeOptions = { ...options, padding: false };
  const out = inputs.map((x) => (typeof x === 'string' ? encodeWithPipeline(p, x, null, unpadded) : encodeWithPipeline(p, x[0], x[1], unpadded)));
  if (options.padding === 'max_length' || options.padding === 'longest') {
    let target: number;
    if (options.padding === 'max_length') {
      if (options.maxLength === undefined) throw new RangeError("encodeBatch: padding 'max_length' needs maxLength");
      target = options.maxLength;
    } else {
      target = out.reduce((m, e) => Math.max(m, e.ids.length), 0);
    }
    target = padTarget(target, options);
    if (out.some((e) => e.ids.length < target)) {
      const spec = padSpecOf(p);
      for (const e of out) padEncoding(e, target, spec, options.paddingSide);
    }
  }
  return out;
}
