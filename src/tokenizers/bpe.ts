/**
 * Byte-level BPE tokenizer (GPT-2, RoBERTa, Llama 3, Qwen2, and what `trainBpe` produces):
 *
 *   text → added tokens split out (atomic) → [normalizer] → pre-tokens → UTF-8 bytes → BPE merges → ids
 *
 * Pre-tokens are GPT-2's (a hand-written scanner) unless the file has a Split regex (Llama 3, Qwen2:
 * split-regex.ts); the normalizer (Qwen2: NFC) is text-normalizers.ts, offsets mapped back through it.
 *
 * `encode` builds the full Encoding (tokens, offsets, masks) through postprocess.ts; `encodeIds` is the
 * fast path used for corpus preparation and benchmarks (same ids, no per-token objects).
 * Lone surrogates are encoded as U+FFFD (EF BF BD), so encode never throws on invalid strings; decode
 * turns byte sequences that are not valid UTF-8 (e.g. half an emoji) into U+FFFD, like HF.
 *
 * Files: Hugging Face tokenizer.json (bpe-json.ts) and the legacy vocab.json + merges.txt pair.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { EncodeOptions, Encoding, Tokenizer } from './types.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { AddedVocabulary, guessSpecialRoles } from './added-tokens.ts';
import { BYTE_TO_CHAR, byteLevelToBytes, preTokenEnd, preTokenSpans } from './bytelevel.ts';
import { BpeModel } from './bpe-model.ts';
import {
  ByteLevelProcessing, emptyEncoding, encodeBatchWithPipeline, encodeWithPipeline, padSpecFromSpecialTokens, pushToken,
  type PadSpec, type PostProcessor, type SequenceEncoder,
} from './postprocess.ts';
import { bpeFromTokenizerJSON, bpeToTokenizerJSON, readMergesTxt, readVocabJson } from './bpe-json.ts';
import { originalRange } from './normalizer.ts';
import type { SplitPreTokenizer } from './split-regex.ts';
import { NormalizerChain } from './text-normalizers.ts';

export type SpecialRoles = Tokenizer['specialTokens'];

export interface BpeTokenizerOptions {
  added?: AddedVocabulary;
  postProcessor?: PostProcessor | null;
  /** Prepend ' ' to every piece of text that does not start with one (RoBERTa-style). Default false. */
  addPrefixSpace?: boolean;
  /** Role of each special token; guessed from the usual contents (<|endoftext|>, <pad>, …) when absent. */
  roles?: SpecialRoles;
  /** tokenizer.json `pre_tokenizer` trim_offsets (kept for round-tripping; offsets trimming is done by the post-processor). */
  preTokenizerTrimOffsets?: boolean;
  /** A Split pre-tokenizer replacing GPT-2's splitting (Llama 3, Qwen2). */
  split?: SplitPreTokenizer | null;
  /** tokenizer.json `normalizer` (Qwen2: NFC); default none. */
  normalizer?: NormalizerChain;
}

/** A growable Int32Array. */
class IdBuffer {
  data: Int32Array;
  length = 0;
  /** English averages ~4 characters per GPT-2 token: start at a third of the text length. */
  constructor(chars: number) {
    this.data = new Int32Array(16 + ((chars / 3) | 0));
  }
  push(id: number): void {
    if (this.length === this.data.length) this.grow(1);
    this.data[this.length++] = id;
  }
  pushAll(ids: Int32Array): void {
    if (this.length + ids.length > this.data.length) this.grow(ids.length);
    this.data.set(ids, this.length);
    this.length += ids.length;
  }
  private grow(extra: number): void {
    const bigger = new Int32Array(Math.max(this.data.length * 2, this.length + extra));
    bigger.set(this.data.subarray(0, this.length));
    this.data = bigger;
  }
}

export class BpeTokenizer implements Tokenizer, SequenceEncoder {
  readonly type = 'bpe' as const;
  readonly model: BpeModel;
  readonly added: AddedVocabulary;
  readonly postProcessor: PostProcessor | null;
  readonly addPrefixSpace: boolean;
  readonly preTokenizerTrimOffsets: boolean;
  readonly specialTokens: SpecialRoles;
  readonly split: SplitPreTokenizer | null;
  readonly normalizer: NormalizerChain;
  /** UTF-8 bytes of each model token (undefined for holes in the id range). */
  private readonly tokenBytes: Array<Uint8Array | undefined>;

  constructor(model: BpeModel, options: BpeTokenizerOptions = {}) {
    this.model = model;
    this.added = options.added ?? new AddedVocabulary();
    this.postProcessor = options.postProcessor === undefined ? new ByteLevelProcessing(false) : options.postProcessor;
    this.addPrefixSpace = options.addPrefixSpace ?? false;
    this.preTokenizerTrimOffsets = options.preTokenizerTrimOffsets ?? true;
    this.specialTokens = options.roles ?? guessSpecialRoles(this.added.list().map((t) => t.content));
    this.split = options.split ?? null;
    this.normalizer = options.normalizer ?? new NormalizerChain([]);
    // A vocabulary token outside the byte alphabet (possible in hand-made files) decodes as its own text.
    this.tokenBytes = model.tokens.map((t) => (t === undefined ? undefined : byteLevelToBytes(t) ?? new TextEncoder().encode(t)));
  }

  /** GPT-2 layout: vocabulary + merge list, with the given special tokens added (specials keep vocab ids). */
  static fromVocabAndMerges(vocab: Map<string, number>, merges: Array<[string, string]>, options: BpeTokenizerOptions & { specialTokens?: string[]; unkToken?: string | null } = {}): BpeTokenizer {
    const model = new BpeModel(vocab, merges, { byteChars: BYTE_TO_CHAR, unkToken: options.unkToken });
    const added = options.added ?? new AddedVocabulary();
    let next = Math.max(model.size, added.idLimit());
    for (const content of options.specialTokens ?? []) {
      if (added.idOf(content) !== undefined) continue;
      added.add({ id: vocab.get(content) ?? next++, content, special: true, normalized: false });
    }
    return new BpeTokenizer(model, { ...options, added });
  }

  /** Legacy GPT-2 files. '<|endoftext|>' is registered as a special token when the vocabulary has it. */
  static fromFiles(vocabJsonPath: string, mergesTxtPath: string, options: BpeTokenizerOptions & { specialTokens?: string[]; unkToken?: string | null } = {}): BpeTokenizer {
    // Errors name the files given: loadTokenizer passes any JSON file that has merges.txt beside it.
    const vocab = readVocabJson(readFileSync(vocabJsonPath, 'utf8'), basename(vocabJsonPath));
    const merges = readMergesTxt(readFileSync(mergesTxtPath, 'utf8'), basename(mergesTxtPath), vocab, basename(vocabJsonPath));
    const specials = options.specialTokens ?? (vocab.has('<|endoftext|>') ? ['<|endoftext|>'] : []);
    return BpeTokenizer.fromVocabAndMerges(vocab, merges, { ...options, specialTokens: specials });
  }

  /** A Hugging Face tokenizer.json object (already parsed) with model.type 'BPE'. */
  static fromJSON(json: unknown, roles?: SpecialRoles): BpeTokenizer {
    const parts = bpeFromTokenizerJSON(json);
    return new BpeTokenizer(parts.model, { ...parts, roles });
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

  /** Ids only (no specials from the post-processor): the fast path. */
  encodeIds(text: string): Int32Array {
    const out = new IdBuffer(text.length);
    for (const piece of this.added.split(text)) {
      if (piece.id >= 0) out.push(piece.id);
      else if (this.split || !this.normalizer.isIdentity) this.encodeGeneral(text.slice(piece.start, piece.end), out);
      else if (this.addPrefixSpace && text.charCodeAt(piece.start) !== 0x20) this.encodePlain(' ' + text.slice(piece.start, piece.end), 0, piece.end - piece.start + 1, out);
      else this.encodePlain(text, piece.start, piece.end, out);
    }
    return out.data.slice(0, out.length);
  }

  /** Normalizer and Split regex (when the file has them) applied to one piece of plain text. */
  private preTokenize(piece: string): { text: string; spans: Array<[number, number]> } {
    let text = this.addPrefixSpace && piece.charCodeAt(0) !== 0x20 ? ' ' + piece : piece;
    if (!this.normalizer.isIdentity) text = this.normalizer.apply(text).text;
    return { text, spans: this.split ? this.split.spans(text) : preTokenSpans(text) };
  }

  private encodeGeneral(piece: string, out: IdBuffer): void {
    const { text, spans } = this.preTokenize(piece);
    for (const [s, e] of spans) {
      const ids = this.model.encodeWord(text, s, e);
      if (typeof ids === 'number') out.push(ids);
      else out.pushAll(ids);
    }
  }

  private encodePlain(text: string, start: number, end: number, out: IdBuffer): void {
    const model = this.model;
    for (let i = start; i < end; ) {
      const j = preTokenEnd(text, i, end);
      let ids = model.cached(text.slice(i, j));
      if (ids === undefined) ids = model.encodeWord(text, i, j);
      if (typeof ids === 'number') out.push(ids);
      else out.pushAll(ids);
      i = j;
    }
  }

  encodeSequence(text: string, sequenceId: number): Encoding {
    const enc = emptyEncoding();
    for (const piece of this.added.split(text)) {
      if (piece.id >= 0) {
        pushToken(enc, piece.id, this.idToToken(piece.id)!, piece.start, piece.end, sequenceId, this.added.isSpecial(piece.id));
      } else if (this.split || !this.normalizer.isIdentity) {
        this.encodeGeneralWithOffsets(text.slice(piece.start, piece.end), piece.start, enc, sequenceId);
      } else if (this.addPrefixSpace && text.charCodeAt(piece.start) !== 0x20) {
        // The added space has no source character: its offsets collapse onto the piece's start.
        this.encodePlainWithOffsets(' ' + text.slice(piece.start, piece.end), 0, piece.end - piece.start + 1, piece.start - 1, piece.start, enc, sequenceId);
      } else {
        this.encodePlainWithOffsets(text, piece.start, piece.end, 0, 0, enc, sequenceId);
      }
    }
    return enc;
  }

  /** encodeGeneral with offsets: computed in the normalized text, then mapped back to the piece. */
  private encodeGeneralWithOffsets(piece: string, pieceStart: number, enc: Encoding, sequenceId: number): void {
    const prefixed = this.addPrefixSpace && piece.charCodeAt(0) !== 0x20;
    const norm = this.normalizer.apply(prefixed ? ' ' + piece : piece);
    const spans = this.split ? this.split.spans(norm.text) : preTokenSpans(norm.text);
    const first = enc.ids.length;
    for (const [s, e] of spans) this.encodePlainWithOffsets(norm.text, s, e, 0, 0, enc, sequenceId, true);
    const shift = pieceStart - (prefixed ? 1 : 0);
    for (let k = first; k < enc.ids.length; k++) {
      const [a, b] = originalRange(norm, enc.offsets[k]![0], enc.offsets[k]![1]);
      enc.offsets[k] = [Math.max(pieceStart, a + shift), Math.max(pieceStart, b + shift)];
    }
  }

  /**
   * Tokens with offsets: a token covering bytes [b0, b1) of a pre-token gets the UTF-16 range of the
   * characters those bytes belong to (a character split over two tokens gives both its full range, as
   * in HF). Offsets are shifted by `shift` and clamped below at `floor`. `whole`: [start, end) is already one pre-token.
   */
  private encodePlainWithOffsets(text: string, start: number, end: number, shift: number, floor: number, enc: Encoding, sequenceId: number, whole = false): void {
    const charStart: number[] = [];
    const charEnd: number[] = [];
    for (let i = start; i < end; ) {
      const j = whole ? end : preTokenEnd(text, i, end);
      const v = this.model.encodeWord(text, i, j);
      const ids = typeof v === 'number' ? [v] : v;
      charStart.length = charEnd.length = 0;
      for (let k = i; k < j; k++) {
        const c = text.charCodeAt(k);
        const pair = c >= 0xd800 && c <= 0xdbff && k + 1 < j && (text.charCodeAt(k + 1) & 0xfc00) === 0xdc00;
        const bytes = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
        for (let b = 0; b < bytes; b++) {
          charStart.push(k);
          charEnd.push(k + (pair ? 2 : 1));
        }
        if (pair) k++;
      }
      let b = 0;
      for (const id of ids) {
        const len = this.tokenBytes[id]?.length ?? 1;
        const s = Math.max(floor, charStart[Math.min(b, charStart.length - 1)] + shift);
        const e = Math.max(floor, charEnd[Math.min(b + len, charEnd.length) - 1] + shift);
        pushToken(enc, id, this.model.tokens[id]!, s, e, sequenceId, false);
        b += len;
      }
      i = j;
    }
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

  /** Model tokens are byte strings joined and UTF-8 decoded (invalid bytes → U+FFFD); added tokens are their text. */
  decode(ids: readonly number[] | Int32Array, options: { skipSpecialTokens?: boolean } = {}): string {
    const parts: string[] = [];
    let bytes = new Uint8Array(256);
    let n = 0;
    const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    for (const id of ids) {
      const added = this.added.get(id);
      if (added !== undefined) {
        if (options.skipSpecialTokens && added.special) continue;
        parts.push(decoder.decode(bytes.subarray(0, n)), added.content);
        n = 0;
        continue;
      }
      const tb = this.tokenBytes[id];
      if (tb === undefined) {
        if (id >= 0 && id === this.model.unkId) continue;
        throw new RangeError(`decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      }
      if (n + tb.length > bytes.length) {
        const bigger = new Uint8Array(Math.max(bytes.length * 2, n + tb.length));
        bigger.set(bytes.subarray(0, n));
        bytes = bigger;
      }
      bytes.set(tb, n);
      n += tb.length;
    }
    parts.push(decoder.decode(bytes.subarray(0, n)));
    return parts.join('');
  }

  toJSON(): Record<string, unknown> {
    return bpeToTokenizerJSON(this);
  }

  /** tokenizer.json, vocab.json + merges.txt, and tokenizer_config.json (special-token roles). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(this.toJSON(), null, 2) + '\n');
    const vocab: Record<string, number> = {};
    this.model.tokens.forEach((t, id) => t !== undefined && (vocab[t] = id));
    for (const t of this.added.list()) if (!(t.content in vocab)) vocab[t.content] = t.id;
    writeFileAtomic(join(dir, 'vocab.json'), JSON.stringify(vocab) + '\n');
    writeFileAtomic(join(dir, 'merges.txt'), '#version: 0.2\n' + this.model.merges.map(([a, b]) => `${a} ${b}\n`).join(''));
    const config: Record<string, unknown> = { tokenizer_class: 'GPT2TokenizerFast', add_prefix_space: this.addPrefixSpace };
    for (const [role, token] of Object.entries(this.specialTokens)) config[`${role}_token`] = token;
    writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  }
}
