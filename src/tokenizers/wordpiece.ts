/**
 * WordPiece tokenizer, BERT style (Hugging Face `BertTokenizerFast` semantics):
 *
 *   text → added/special tokens split out of the raw text (atomic, e.g. [MASK])
 *        → BertNormalizer (clean, CJK spacing, accents, lowercase; offsets kept)
 *        → BertPreTokenizer (whitespace, punctuation)
 *        → greedy longest-match WordPiece with "##" continuation, [UNK] for unknown or > 100-char words
 *        → post-processor: [CLS] A [SEP] (B [SEP]), token_type_ids 0 / 1 (postprocess.ts)
 *
 * Offsets always index the caller's original string, whatever the normalizer removed or expanded.
 * Encode never throws on any string: lone surrogates and control characters are dropped by clean_text
 * (or become U+FFFD without it, usually then [UNK]).
 *
 * Decoding joins "##" pieces to the previous token, other tokens with a space, then removes the space
 * before . , ! ? and in English contractions (HF's cleanup). Chinese text therefore decodes with a space
 * between ideographs, as in HF; `decode(ids, { compactCjk: true })` leaves those spaces out.
 *
 * Files: tokenizer.json (wordpiece-json.ts), legacy vocab.txt (one token per line, id = line number).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EncodeOptions, Encoding, Tokenizer } from './types.ts';
import { AddedVocabulary, guessSpecialRoles } from './added-tokens.ts';
import { BertNormalizer, identityNormalized, originalRange, type BertNormalizerOptions, type NormalizedText } from './normalizer.ts';
import { bertPreTokenize, bertPreTokenizeWords } from './bert-pretokenizer.ts';
import { WordPieceModel, cleanUpTokenizationSpaces, decodeWordPieces } from './wordpiece-model.ts';
import {
  TemplateProcessing, emptyEncoding, encodeBatchWithPipeline, encodeWithPipeline, padSpecFromSpecialTokens, pushToken,
  type PadSpec, type PostProcessor, type SequenceEncoder,
} from './postprocess.ts';
import { wordPieceFromTokenizerJSON, wordPieceToTokenizerJSON } from './wordpiece-json.ts';
import { writeFileAtomic } from '../io/atomic.ts';

export type SpecialRoles = Tokenizer['specialTokens'];

export interface WordPieceTokenizerOptions {
  /** Tokens by id (index = id), or token → id. */
  vocab: readonly string[] | ReadonlyMap<string, number>;
  unkToken?: string;
  continuingSubwordPrefix?: string;
  maxInputCharsPerWord?: number;
  /** Default: BertNormalizer with lowercase (bert-base-uncased); null: no normalizer. */
  normalizer?: BertNormalizer | BertNormalizerOptions | null;
  /** Whether the BertPreTokenizer runs (default true; false: each piece of text is one word). */
  bertPreTokenizer?: boolean;
  /** Added tokens; default: `specialTokens` as special, raw-matched added tokens with their vocab ids. */
  added?: AddedVocabulary;
  /** Contents registered as special added tokens when `added` is not given. Default: those of [PAD] [UNK] [CLS] [SEP] [MASK] in the vocab. */
  specialTokens?: readonly string[];
  /** Default: [CLS] $A [SEP] / [CLS] $A [SEP] $B:1 [SEP]:1 when the vocabulary has [CLS] and [SEP]. */
  postProcessor?: PostProcessor | null;
  /** tokenizer.json `decoder`: WordPiece with its prefix and cleanup flag, or null (tokens joined by spaces). */
  decoder?: { prefix: string; cleanup: boolean } | null;
  roles?: SpecialRoles;
  /** tokenizer.json `truncation` / `padding`, kept as read so the file round-trips (encode takes options instead). */
  truncationJSON?: unknown;
  paddingJSON?: unknown;
}

export interface WordPieceDecodeOptions {
  skipSpecialTokens?: boolean;
  /** Remove the space before punctuation and in contractions. Default: the decoder's cleanup flag (true for BERT). */
  cleanUpTokenizationSpaces?: boolean;
  /** Not in HF: no space between CJK tokens (nor between one and a special token). Default false. */
  compactCjk?: boolean;
}

const BERT_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

function toVocabMap(vocab: readonly string[] | ReadonlyMap<string, number>): Map<string, number> {
  if (!Array.isArray(vocab)) return new Map(vocab as ReadonlyMap<string, number>);
  const map = new Map<string, number>();
  (vocab as readonly string[]).forEach((token, id) => {
    // vocab.txt semantics: a repeated line keeps its last id for lookups.
    map.set(token, id);
  });
  return map;
}

export class WordPieceTokenizer implements Tokenizer, SequenceEncoder {
  readonly type = 'wordpiece' as const;
  readonly model: WordPieceModel;
  readonly normalizer: BertNormalizer | null;
  readonly bertPreTokenizer: boolean;
  readonly added: AddedVocabulary;
  readonly postProcessor: PostProcessor | null;
  readonly decoder: { prefix: string; cleanup: boolean } | null;
  readonly specialTokens: SpecialRoles;
  readonly truncationJSON: unknown;
  readonly paddingJSON: unknown;

  constructor(options: WordPieceTokenizerOptions) {
    const vocab = toVocabMap(options.vocab);
    const unk = options.unkToken ?? '[UNK]';
    const prefix = options.continuingSubwordPrefix ?? '##';
    const maxChars = options.maxInputCharsPerWord ?? 100;
    if (!Number.isSafeInteger(maxChars) || maxChars < 0) throw new RangeError(`WordPiece: maxInputCharsPerWord must be a non-negative integer, got ${maxChars}`);
    this.model = new WordPieceModel(vocab, unk, prefix, maxChars);
    // Holes in an id list (vocab.txt with repeated lines) must still map back.
    if (Array.isArray(options.vocab)) (options.vocab as readonly string[]).forEach((t, id) => ((this.model.tokens as Array<string | undefined>)[id] ??= t));
    const n = options.normalizer;
    this.normalizer = n === null ? null : n instanceof BertNormalizer ? n : new BertNormalizer(n ?? { lowercase: true });
    this.bertPreTokenizer = options.bertPreTokenizer ?? true;
    if (options.added) {
      this.added = options.added;
    } else {
      this.added = new AddedVocabulary();
      for (const content of options.specialTokens ?? BERT_SPECIALS.filter((t) => vocab.has(t))) {
        const id = vocab.get(content);
        if (id === undefined) throw new RangeError(`WordPiece: special token ${JSON.stringify(content)} is not in the vocabulary`);
        this.added.add({ id, content, special: true, normalized: false });
      }
    }
    const cls = vocab.get('[CLS]');
    const sep = vocab.get('[SEP]');
    this.postProcessor =
      options.postProcessor !== undefined ? options.postProcessor
        : cls !== undefined && sep !== undefined ? TemplateProcessing.bert(['[CLS]', cls], ['[SEP]', sep])
          : null;
    this.decoder = options.decoder === undefined ? { prefix, cleanup: true } : options.decoder;
    this.specialTokens = options.roles ?? { ...guessSpecialRoles(this.added.list().map((t) => t.content)), unk };
    this.truncationJSON = options.truncationJSON ?? null;
    this.paddingJSON = options.paddingJSON ?? null;
  }

  /** A Hugging Face tokenizer.json object (already parsed) with model.type 'WordPiece'. */
  static fromJSON(json: unknown, roles?: SpecialRoles): WordPieceTokenizer {
    return new WordPieceTokenizer({ ...wordPieceFromTokenizerJSON(json), roles });
  }

  /**
   * Legacy BERT vocab.txt (one token per line, id = line number). `lowercase` is do_lower_case
   * (bert-base-uncased: true, -cased: false); accents are stripped when lowercasing, as BertTokenizer does.
   */
  static fromVocabFile(path: string, options: { lowercase?: boolean; stripAccents?: boolean | null; unkToken?: string } = {}): WordPieceTokenizer {
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const vocab = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    const unk = options.unkToken ?? '[UNK]';
    if (!vocab.includes(unk)) throw new RangeError(`${path}: the unk token ${JSON.stringify(unk)} is not one of its lines`);
    return new WordPieceTokenizer({
      vocab, unkToken: unk,
      normalizer: { lowercase: options.lowercase ?? true, stripAccents: options.stripAccents ?? null },
    });
  }

  get vocabSize(): number {
    return Math.max(this.model.size, this.added.idLimit());
  }

  tokenToId(token: string): number | undefined {
    return this.added.idOf(token) ?? this.model.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.added.get(id)?.content ?? this.model.tokens[id];
  }

  encodeSequence(text: string, sequenceId: number): Encoding {
    const enc = emptyEncoding();
    for (const piece of this.added.split(text, this.normalizer ? 'raw' : 'all')) {
      if (piece.id >= 0) pushToken(enc, piece.id, this.idToToken(piece.id)!, piece.start, piece.end, sequenceId, this.added.isSpecial(piece.id));
      else this.encodePlain(text.slice(piece.start, piece.end), piece.start, enc, sequenceId);
    }
    return enc;
  }

  /** One stretch of text without raw-matched added tokens; offsets shifted by `base`. */
  private encodePlain(text: string, base: number, enc: Encoding, sequenceId: number): void {
    const normalized: NormalizedText = this.normalizer ? this.normalizer.normalizeWithOffsets(text) : identityNormalized(text);
    const pieces = this.normalizer ? this.added.split(normalized.text, 'normalized') : [{ start: 0, end: normalized.text.length, id: -1 }];
    for (const piece of pieces) {
      if (piece.id >= 0) {
        const [s, e] = originalRange(normalized, piece.start, piece.end);
        pushToken(enc, piece.id, this.idToToken(piece.id)!, base + s, base + e, sequenceId, this.added.isSpecial(piece.id));
        continue;
      }
      const chunk = normalized.text.slice(piece.start, piece.end);
      const words = this.bertPreTokenizer ? bertPreTokenize(chunk) : chunk.length > 0 ? [{ text: chunk, start: 0, end: chunk.length }] : [];
      for (const word of words) {
        const wp = this.model.tokenizeWord(word.text);
        for (let k = 0; k < wp.length; k += 3) {
          const from = piece.start + word.start + wp[k + 1];
          const to = piece.start + word.start + wp[k + 2];
          const [s, e] = originalRange(normalized, from, to);
          pushToken(enc, wp[k], this.model.tokens[wp[k]]!, base + s, base + e, sequenceId, false);
        }
      }
    }
  }

  /** Ids only, no post-processor specials (corpus preparation). */
  encodeIds(text: string): Int32Array {
    const ids: number[] = [];
    for (const piece of this.added.split(text, this.normalizer ? 'raw' : 'all')) {
      if (piece.id >= 0) {
        ids.push(piece.id);
        continue;
      }
      const plain = text.slice(piece.start, piece.end);
      const normalized = this.normalizer ? this.normalizer.normalize(plain) : plain;
      const inner = this.normalizer ? this.added.split(normalized, 'normalized') : [{ start: 0, end: normalized.length, id: -1 }];
      for (const p of inner) {
        if (p.id >= 0) {
          ids.push(p.id);
          continue;
        }
        const chunk = normalized.slice(p.start, p.end);
        const words = this.bertPreTokenizer ? bertPreTokenizeWords(chunk) : chunk.length > 0 ? [chunk] : [];
        for (const word of words) {
          const wp = this.model.tokenizeWord(word);
          for (let k = 0; k < wp.length; k += 3) ids.push(wp[k]);
        }
      }
    }
    return Int32Array.from(ids);
  }

  encode(text: string, pair?: string | null, options?: EncodeOptions): Encoding {
    return encodeWithPipeline(this, text, pair, options);
  }

  encodeBatch(texts: Array<string | [string, string]>, options?: EncodeOptions): Encoding[] {
    return encodeBatchWithPipeline(this, texts, options);
  }

  padSpec(): PadSpec | null {
    return padSpecFromSpecialTokens(this);
  }

  decode(ids: readonly number[] | Int32Array, options: WordPieceDecodeOptions = {}): string {
    const tokens: string[] = [];
    for (const id of ids) {
      const added = this.added.get(id);
      if (added !== undefined) {
        if (!(options.skipSpecialTokens && added.special)) tokens.push(added.content);
        continue;
      }
      const token = this.model.tokens[id];
      if (token === undefined) throw new RangeError(`decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      tokens.push(token);
    }
    const isSpecial = (t: string): boolean => {
      const id = this.added.idOf(t);
      return id !== undefined && this.added.isSpecial(id);
    };
    if (this.decoder === null) {
      const text = tokens.join(' ');
      return options.cleanUpTokenizationSpaces ? cleanUpTokenizationSpaces(text) : text;
    }
    return decodeWordPieces(tokens, {
      prefix: this.decoder.prefix,
      cleanup: options.cleanUpTokenizationSpaces ?? this.decoder.cleanup,
      compactCjk: options.compactCjk ?? false,
      isSpecial,
    });
  }

  toJSON(): Record<string, unknown> {
    return wordPieceToTokenizerJSON(this);
  }

  /** vocab.txt: every id from 0 to vocabSize - 1 on its own line (model and added tokens). */
  vocabText(): string {
    const lines: string[] = [];
    for (let id = 0; id < this.vocabSize; id++) {
      const token = this.idToToken(id) ?? '';
      if (/[\n\r]/.test(token)) throw new RangeError(`vocab.txt cannot hold token ${id} ${JSON.stringify(token)}: it contains a line break`);
      lines.push(token + '\n');
    }
    return lines.join('');
  }

  saveVocab(path: string): void {
    writeFileAtomic(path, this.vocabText(), { durable: false });
  }

  /** tokenizer.json, vocab.txt, and tokenizer_config.json (do_lower_case and special-token roles). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(this.toJSON(), null, 2) + '\n', { durable: false });
    this.saveVocab(join(dir, 'vocab.txt'));
    const config: Record<string, unknown> = {
      tokenizer_class: 'BertTokenizerFast',
      do_lower_case: this.normalizer?.lowercase ?? false,
      strip_accents: this.normalizer?.stripAccents ?? null,
      tokenize_chinese_chars: this.normalizer?.handleChineseChars ?? false,
      clean_up_tokenization_spaces: this.decoder?.cleanup ?? false,
    };
    for (const [role, token] of Object.entries(this.specialTokens)) config[`${role}_token`] = token;
    writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n', { durable: false });
  }
}
