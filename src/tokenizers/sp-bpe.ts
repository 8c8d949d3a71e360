/**
 * SentencePiece-style BPE, as Llama 2, TinyLlama and Mistral ship it in tokenizer.json:
 *
 *   text → added tokens split out → normalizer (Llama 2: Prepend("▁") + Replace(" ", "▁"))
 *        → pre-tokenizer (none, or Metaspace: " " → "▁", "▁" prepended, optionally split before each "▁")
 *        → BPE over characters → ids
 *
 * Unlike byte-level BPE, a word starts as its characters. A character missing from the vocabulary becomes
 * the <0xNN> tokens of its UTF-8 bytes when `byte_fallback` is on and all of them exist, otherwise the
 * unk token (consecutive unks fused into one with `fuse_unk`). Decoding runs the file's decoder chain
 * (sp-decoders.ts), e.g. Llama 2's Replace("▁", " ") → ByteFallback → Fuse → Strip(" ", 1, 0).
 *
 * When HF's two implementations differ we follow the Rust crate (what transformers uses): a run of
 * <0xNN> tokens that is not valid UTF-8 decodes to one U+FFFD per byte.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EncodeOptions, Encoding, Tokenizer } from './types.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { AddedVocabulary, guessSpecialRoles } from './added-tokens.ts';
import { BpeModel } from './bpe-model.ts';
import { readVocabObject } from './bpe-json.ts';
import { formatError, isObject, readArray, readBool, readObject, readOptionalString, readString } from './json-fields.ts';
import { originalRange, type NormalizedText } from './normalizer.ts';
import {
  emptyEncoding, encodeBatchWithPipeline, encodeWithPipeline, padSpecFromSpecialTokens, postProcessorFromJSON, pushToken,
  type PadSpec, type PostProcessor, type SequenceEncoder,
} from './postprocess.ts';
import { byteOfToken, decodersFromJSON, readMetaspace, runDecoders, type DecoderStep } from './sp-decoders.ts';
import { SplitPreTokenizer } from './split-regex.ts';
import { NormalizerChain } from './text-normalizers.ts';

type Roles = Tokenizer['specialTokens'];

export interface MetaspaceSpec {
  replacement: string;
  prepend_scheme: 'always' | 'first' | 'never';
  split: boolean;
}

export interface SentencePieceBpeOptions {
  byteFallback?: boolean;
  fuseUnk?: boolean;
  normalizer?: NormalizerChain;
  metaspace?: MetaspaceSpec | null;
  decoders?: DecoderStep[];
  added?: AddedVocabulary;
  postProcessor?: PostProcessor | null;
  roles?: Roles;
}

/** True when a tokenizer.json BPE file is SentencePiece-style (no ByteLevel pre-tokenizer), not byte-level. */
export function isSentencePieceBpe(json: Record<string, unknown>): boolean {
  const pre = json.pre_tokenizer;
  if (!isObject(pre)) return true;
  if (pre.type === 'ByteLevel') return false;
  if (pre.type === 'Sequence' && Array.isArray(pre.pretokenizers)) return !pre.pretokenizers.some((p) => isObject(p) && p.type === 'ByteLevel');
  return true;
}

/** Merge entry "a b" (split at the first space, as SentencePiece tokens hold "▁", not " ") or ["a", "b"]. */
function readMerge(value: unknown, field: string): [string, string] {
  if (typeof value === 'string') {
    const k = value.indexOf(' ');
    if (k > 0 && k < value.length - 1) return [value.slice(0, k), value.slice(k + 1)];
  } else if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string' && value[0] && value[1]) {
    return [value[0], value[1]];
  }
  return formatError(field, `must be "a b" or ["a","b"], got ${JSON.stringify(value)?.slice(0, 60)}`);
}

export class SentencePieceBpeTokenizer implements Tokenizer, SequenceEncoder {
  readonly type = 'bpe' as const;
  readonly model: BpeModel;
  readonly byteFallback: boolean;
  readonly fuseUnk: boolean;
  readonly normalizer: NormalizerChain;
  readonly metaspace: MetaspaceSpec | null;
  readonly decoders: DecoderStep[];
  readonly added: AddedVocabulary;
  readonly postProcessor: PostProcessor | null;
  readonly specialTokens: Roles;
  /** Id of <0xNN> for each byte, -1 when the vocabulary lacks it. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly isByteId: Set<number>;
  private readonly cache = new Map<string, Int32Array>();
  private readonly metaspaceChain: NormalizerChain | null;
  private readonly wordSplit: SplitPreTokenizer | null;

  constructor(model: BpeModel, options: SentencePieceBpeOptions = {}) {
    this.model = model;
    this.byteFallback = options.byteFallback ?? true;
    this.fuseUnk = options.fuseUnk ?? true;
    this.normalizer = options.normalizer ?? new NormalizerChain([]);
    this.metaspace = options.metaspace ?? null;
    this.decoders = options.decoders ?? [];
    this.added = options.added ?? new AddedVocabulary();
    this.postProcessor = options.postProcessor ?? null;
    this.specialTokens = options.roles ?? guessSpecialRoles(this.added.list().map((t) => t.content));
    model.tokens.forEach((t, id) => {
      const b = t === undefined ? -1 : byteOfToken(t);
      if (b >= 0) this.byteIds[b] = id;
    });
    this.isByteId = new Set([...this.byteIds].filter((id) => id >= 0));
    const m = this.metaspace;
    this.metaspaceChain = m ? new NormalizerChain([{ type: 'Replace', pattern: { String: ' ' }, content: m.replacement }]) : null;
    this.wordSplit = m?.split ? new SplitPreTokenizer({ String: m.replacement }, 'MergedWithNext') : null;
  }

  static fromJSON(json: unknown, roles?: Roles): SentencePieceBpeTokenizer {
    const root = readObject(json, '(root)');
    const m = readObject(root.model, 'model');
    if (readString(m.type ?? 'BPE', 'model.type') !== 'BPE') formatError('model.type', 'must be "BPE"');
    if (m.dropout !== undefined && m.dropout !== null && m.dropout !== 0) formatError('model.dropout', 'is not supported (must be null)');
    for (const f of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      if (readOptionalString(m[f], `model.${f}`)) formatError(`model.${f}`, 'is not supported (must be null or "")');
    }
    const vocab = readVocabObject(m.vocab, 'model.vocab');
    const merges = readArray(m.merges, 'model.merges').map((v, i) => readMerge(v, `model.merges[${i}]`));
    merges.forEach(([a, b], i) => {
      for (const t of [a, b, a + b]) if (!vocab.has(t)) formatError(`model.merges[${i}]`, `uses ${JSON.stringify(t)}, which is not in model.vocab`);
    });
    const unk = readOptionalString(m.unk_token, 'model.unk_token') ?? null;
    if (unk !== null && !vocab.has(unk)) formatError('model.unk_token', `${JSON.stringify(unk)} is not in model.vocab`);
    if (readBool(m.ignore_merges, 'model.ignore_merges', false)) formatError('model.ignore_merges', 'is not supported for SentencePiece-style BPE');
    let metaspace: MetaspaceSpec | null = null;
    const pre = root.pre_tokenizer;
    if (pre !== null && pre !== undefined) {
      const o = readObject(pre, 'pre_tokenizer');
      if (o.type !== 'Metaspace') formatError('pre_tokenizer.type', `${JSON.stringify(o.type)} is not supported for SentencePiece-style BPE (null or Metaspace; byte-level BPE needs ByteLevel)`);
      metaspace = readMetaspace(o, 'pre_tokenizer');
    }
    return new SentencePieceBpeTokenizer(new BpeModel(vocab, merges, { byteChars: [], unkToken: unk }), {
      byteFallback: readBool(m.byte_fallback, 'model.byte_fallback', false),
      fuseUnk: readBool(m.fuse_unk, 'model.fuse_unk', false),
      normalizer: NormalizerChain.fromJSON(root.normalizer),
      metaspace,
      decoders: decodersFromJSON(root.decoder),
      added: AddedVocabulary.fromJSON(root.added_tokens),
      postProcessor: postProcessorFromJSON(root.post_processor),
      roles,
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

  /** True when the character has no token and no complete byte fallback: it becomes unk. */
  private isUnknown(ch: string): boolean {
    if (this.model.vocab.has(ch)) return false;
    if (!this.byteFallback) return true;
    for (const b of new TextEncoder().encode(ch)) if (this.byteIds[b]! < 0) return true;
    return false;
  }

  /** Ids of one pre-token (normalized text): characters (or their byte fallbacks, or unk), then merges. */
  encodeWord(word: string): Int32Array {
    const hit = this.cache.get(word);
    if (hit !== undefined) return hit;
    const syms: number[] = [];
    const unk = this.model.unkId;
    for (const ch of word) {
      const id = this.model.vocab.get(ch);
      if (id !== undefined) syms.push(id);
      else if (!this.isUnknown(ch)) for (const b of new TextEncoder().encode(ch)) syms.push(this.byteIds[b]!);
      else if (unk >= 0 && !(this.fuseUnk && syms[syms.length - 1] === unk)) syms.push(unk);
      // Without an unk token the character is dropped, as @huggingface/tokenizers does.
    }
    const ids = this.model.mergeIds(syms);
    // Without a pre-tokenizer (Llama 2) a whole text is one word: cache only word-sized keys.
    if (word.length <= 256) {
      if (this.cache.size >= 200_000) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  /** Normalizer, then the Metaspace pre-tokenizer: the normalized piece and its words as [start, end). */
  private preTokenize(text: string, atStart: boolean): { norm: NormalizedText; words: Array<[number, number]> } {
    let norm = this.normalizer.apply(text);
    const m = this.metaspace;
    if (m && this.metaspaceChain) {
      norm = this.metaspaceChain.applyTo(norm);
      const prepend = m.prepend_scheme === 'always' || (m.prepend_scheme === 'first' && atStart);
      if (prepend && norm.text.length > 0 && !norm.text.startsWith(m.replacement)) {
        norm = new NormalizerChain([{ type: 'Prepend', prepend: m.replacement }]).applyTo(norm);
      }
    }
    const words = this.wordSplit ? this.wordSplit.spans(norm.text) : norm.text.length > 0 ? [[0, norm.text.length] as [number, number]] : [];
    return { norm, words };
  }

  encodeIds(text: string): Int32Array {
    const out: number[] = [];
    for (const piece of this.added.split(text)) {
      if (piece.id >= 0) {
        out.push(piece.id);
        continue;
      }
      const { norm, words } = this.preTokenize(text.slice(piece.start, piece.end), piece.start === 0);
      for (const [s, e] of words) for (const id of this.encodeWord(norm.text.slice(s, e))) out.push(id);
    }
    return Int32Array.from(out);
  }

  encodeSequence(text: string, sequenceId: number): Encoding {
    const enc = emptyEncoding();
    for (const piece of this.added.split(text)) {
      if (piece.id >= 0) {
        pushToken(enc, piece.id, this.idToToken(piece.id)!, piece.start, piece.end, sequenceId, this.added.isSpecial(piece.id));
        continue;
      }
      const { norm, words } = this.preTokenize(text.slice(piece.start, piece.end), piece.start === 0);
      for (const [ws, we] of words) {
        const word = norm.text.slice(ws, we);
        let pos = 0; // position in word
        let bytesLeft = 0;
        let charEnd = 0;
        for (const id of this.encodeWord(word)) {
          let s = pos;
          let e: number;
          if (this.isByteId.has(id) && this.model.tokens[id] !== word.slice(pos, pos + 6)) {
            // One of the <0xNN> tokens of the character at pos: each gets the character's whole range.
            if (bytesLeft === 0) {
              const cp = word.codePointAt(pos)!;
              charEnd = pos + (cp > 0xffff ? 2 : 1);
              bytesLeft = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            }
            e = charEnd;
            if (--bytesLeft === 0) pos = charEnd;
          } else if (id === this.model.unkId && this.model.tokens[id] !== word.slice(pos, pos + this.model.tokens[id]!.length)) {
            // unk stands for one unknown character, or for a run of them with fuse_unk.
            do pos += word.codePointAt(pos)! > 0xffff ? 2 : 1;
            while (this.fuseUnk && pos < word.length && this.isUnknown(String.fromCodePoint(word.codePointAt(pos)!)));
            e = pos;
          } else {
            e = pos = pos + this.model.tokens[id]!.length;
          }
          const [a, b] = originalRange(norm, ws + s, ws + e);
          pushToken(enc, id, this.model.tokens[id]!, a + piece.start, b + piece.start, sequenceId, false);
        }
      }
    }
    return enc;
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

  /** Token strings through the file's decoder chain (added tokens included, unless skipped as special). */
  decode(ids: readonly number[] | Int32Array, options: { skipSpecialTokens?: boolean } = {}): string {
    const tokens: string[] = [];
    for (const id of ids) {
      const added = this.added.get(id);
      if (added !== undefined) {
        if (!(options.skipSpecialTokens && added.special)) tokens.push(added.content);
        continue;
      }
      const t = this.model.tokens[id];
      if (t === undefined) throw new RangeError(`decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      tokens.push(t);
    }
    return runDecoders(this.decoders, tokens);
  }

  toJSON(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    this.model.tokens.forEach((t, id) => t !== undefined && (vocab[t] = id));
    const unk = this.model.unkId >= 0 ? this.model.tokens[this.model.unkId] : null;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.added.toJSON(),
      normalizer: this.normalizer.toJSON(),
      pre_tokenizer: this.metaspace ? { type: 'Metaspace', ...this.metaspace } : null,
      post_processor: this.postProcessor?.toJSON() ?? null,
      decoder: this.decoders.length === 0 ? null : { type: 'Sequence', decoders: this.decoders },
      model: {
        type: 'BPE', dropout: null, unk_token: unk, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: this.fuseUnk, byte_fallback: this.byteFallback, ignore_merges: false, vocab,
        merges: this.model.merges.map(([a, b]) => [a, b]),
      },
    };
  }

  /** tokenizer.json and tokenizer_config.json (special-token roles). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(this.toJSON(), null, 2) + '\n');
    const config: Record<string, unknown> = { tokenizer_class: 'LlamaTokenizerFast', clean_up_tokenization_spaces: false };
    for (const [role, token] of Object.entries(this.specialTokens)) config[`${role}_token`] = token;
    writeFileAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  }
}
