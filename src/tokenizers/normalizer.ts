/**
 * BertNormalizer, as Hugging Face `tokenizers` applies it before BERT's WordPiece:
 *
 *   1. clean_text:           drop NUL, U+FFFD and every "other" character (Unicode category C*: Cc, Cf,
 *                            Cs, Co, Cn) except \t \n \r; then map every White_Space character to ' '.
 *   2. handle_chinese_chars: put ' ' on both sides of every CJK ideograph (the ranges of HF's
 *                            `_is_chinese_char`), so the pre-tokenizer makes each one its own word.
 *   3. strip_accents:        NFD, then drop nonspacing marks (Mn). Defaults to `lowercase`, as in HF.
 *   4. lowercase:            per code point, context-free (Rust's char::to_lowercase: 'Σ' is always 'σ',
 *                            never the final 'ς' that String.prototype.toLowerCase picks by context).
 *
 * Offsets must point into the text the user gave us, so `normalizeWithOffsets` keeps, for every UTF-16
 * code unit of the normalized text, the [start, end) range of original code units it came from.
 * `normalize` is the same function without the bookkeeping (regex passes, used by training); the tests
 * check that both agree.
 *
 * Lone surrogates are never an error: with clean_text they are category Cs and dropped (exactly as
 * U+FFFD would be); without it they become U+FFFD, which is what a UTF-8 encoder (and so HF) sees.
 */

import { formatError, readBool, readObject } from './json-fields.ts';

export interface BertNormalizerOptions {
  cleanText?: boolean;
  handleChineseChars?: boolean;
  /** null/undefined: follow `lowercase` (HF's default). */
  stripAccents?: boolean | null;
  lowercase?: boolean;
}

/** Normalized text plus, per UTF-16 code unit, the original [start, end) it came from. */
export interface NormalizedText {
  text: string;
  starts: Int32Array;
  ends: Int32Array;
}

/** Hugging Face tokenizer.json `normalizer` entry for BERT. */
export interface BertNormalizerJSON {
  type: 'BertNormalizer';
  clean_text: boolean;
  handle_chinese_chars: boolean;
  strip_accents: boolean | null;
  lowercase: boolean;
}

/** CJK Unified Ideographs and extensions, and the compatibility blocks: HF's `_is_chinese_char`. */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const CHINESE_CHAR_RE =
  /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/gu;
const DROPPED_BY_CLEAN_RE = /[\0\uFFFD]|(?![\t\n\r])\p{C}/gu;
const WHITESPACE_RE = /\p{White_Space}/gu;
const LONE_SURROGATE_RE = /\p{Cs}/gu;
const PRINTABLE_ASCII_RE = /^[\t\n\r\x20-\x7e]*$/;
const NONSPACING_MARK_RE = /\p{Mn}/gu;
const IS_OTHER_RE = /^\p{C}$/u;
const IS_WHITESPACE_RE = /^\p{White_Space}$/u;
const IS_MARK_RE = /^\p{M}$/u;
const IS_NONSPACING_MARK_RE = /^\p{Mn}$/u;

// Per-code-point properties, computed once per character seen (regex tests are slow per character).
const F_KNOWN = 128;
const F_DROP = 1; // removed by clean_text: NUL, U+FFFD, category C* other than \t \n \r
const F_SPACE = 2; // White_Space
const F_MARK = 4; // M*
const F_NONSPACING = 8; // Mn
const F_DECOMPOSES = 16; // NFD(c) ≠ c
const F_LOWERS = 32; // lowercase(c) ≠ c
const bmpFlags = new Uint8Array(0x10000);
const astralFlags = new Map<number, number>();
const decompositions = new Map<number, number[]>();
const lowercasings = new Map<number, number[]>();

function computeFlags(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let f = F_KNOWN;
  if (cp === 0 || cp === 0xfffd || (cp !== 9 && cp !== 10 && cp !== 13 && IS_OTHER_RE.test(ch))) f |= F_DROP;
  if (IS_WHITESPACE_RE.test(ch)) f |= F_SPACE;
  if (IS_MARK_RE.test(ch)) f |= F_MARK;
  if (IS_NONSPACING_MARK_RE.test(ch)) f |= F_NONSPACING;
  const nfd = ch.normalize('NFD');
  if (nfd !== ch) {
    f |= F_DECOMPOSES;
    decompositions.set(cp, [...nfd].map((c) => c.codePointAt(0)!));
  }
  const lower = ch.toLowerCase();
  if (lower !== ch) {
    f |= F_LOWERS;
    lowercasings.set(cp, [...lower].map((c) => c.codePointAt(0)!));
  }
  return f;
}

function flagsOf(cp: number): number {
  if (cp < 0x10000) {
    let f = bmpFlags[cp];
    if (f === 0) bmpFlags[cp] = f = computeFlags(cp);
    return f;
  }
  let f = astralFlags.get(cp);
  if (f === undefined) astralFlags.set(cp, (f = computeFlags(cp)));
  return f;
}

/** Growable parallel arrays of code points and their original ranges. */
class CodePointBuffer {
  cps: number[] = [];
  starts: number[] = [];
  ends: number[] = [];
  push(cp: number, start: number, end: number): void {
    this.cps.push(cp);
    this.starts.push(start);
    this.ends.push(end);
  }
}

export class BertNormalizer {
  readonly cleanText: boolean;
  readonly handleChineseChars: boolean;
  /** As configured (null = follow lowercase); `effectiveStripAccents` is what is applied. */
  readonly stripAccents: boolean | null;
  readonly lowercase: boolean;

  constructor(options: BertNormalizerOptions = {}) {
    this.cleanText = options.cleanText ?? true;
    this.handleChineseChars = options.handleChineseChars ?? true;
    this.stripAccents = options.stripAccents ?? null;
    this.lowercase = options.lowercase ?? true;
  }

  get effectiveStripAccents(): boolean {
    return this.stripAccents ?? this.lowercase;
  }

  /** The normalized text only (fast path: whole-string regex passes). */
  normalize(text: string): string {
    let s = text;
    if (this.cleanText) s = s.replace(DROPPED_BY_CLEAN_RE, '').replace(WHITESPACE_RE, ' ');
    else s = s.replace(LONE_SURROGATE_RE, '\uFFFD');
    if (this.handleChineseChars) s = s.replace(CHINESE_CHAR_RE, ' $& ');
    if (this.effectiveStripAccents) s = s.normalize('NFD').replace(NONSPACING_MARK_RE, '');
    // Pre-mapping Σ keeps toLowerCase context-free: Final_Sigma is its only contextual rule.
    if (this.lowercase) s = s.replace(/Σ/g, 'σ').toLowerCase();
    return s;
  }

  /** The normalized text with, per UTF-16 unit, the original [start, end) range it came from. */
  normalizeWithOffsets(text: string): NormalizedText {
    // Printable ASCII (most English) maps one unit to one unit: only case and \t \n \r can change.
    if (PRINTABLE_ASCII_RE.test(text)) {
      let s = this.cleanText ? text.replace(/[\t\n\r]/g, ' ') : text;
      if (this.lowercase) s = s.toLowerCase();
      const starts = new Int32Array(text.length);
      const ends = new Int32Array(text.length);
      for (let i = 0; i < text.length; i++) {
        starts[i] = i;
        ends[i] = i + 1;
      }
      return { text: s, starts, ends };
    }
    let buf = this.cleanAndSpace(text);
    if (this.effectiveStripAccents) buf = stripAccentsOf(buf);
    if (this.lowercase) buf = lowercaseOf(buf);
    return toNormalizedText(buf);
  }

  toJSON(): BertNormalizerJSON {
    return {
      type: 'BertNormalizer',
      clean_text: this.cleanText,
      handle_chinese_chars: this.handleChineseChars,
      strip_accents: this.stripAccents,
      lowercase: this.lowercase,
    };
  }

  /** Reads tokenizer.json's `normalizer`; errors name the field. Missing flags take HF's defaults. */
  static fromJSON(json: unknown, field = 'normalizer'): BertNormalizer {
    const obj = readObject(json, field);
    if (obj.type !== 'BertNormalizer') formatError(`${field}.type`, `must be "BertNormalizer", got ${JSON.stringify(obj.type) ?? 'nothing'}`);
    const strip = obj.strip_accents;
    if (strip !== undefined && strip !== null && typeof strip !== 'boolean') {
      formatError(`${field}.strip_accents`, `must be true, false or null, got ${JSON.stringify(strip)}`);
    }
    return new BertNormalizer({
      cleanText: readBool(obj.clean_text, `${field}.clean_text`, true),
      handleChineseChars: readBool(obj.handle_chinese_chars, `${field}.handle_chinese_chars`, true),
      stripAccents: (strip as boolean | null | undefined) ?? null,
      lowercase: readBool(obj.lowercase, `${field}.lowercase`, true),
    });
  }

  /** Steps 1 and 2, one original code point at a time. */
  private cleanAndSpace(text: string): CodePointBuffer {
    const out = new CodePointBuffer();
    for (let i = 0; i < text.length; ) {
      let cp = text.codePointAt(i)!;
      const start = i;
      i += cp > 0xffff ? 2 : 1;
      if (this.cleanText) {
        const f = flagsOf(cp);
        if (f & F_DROP) continue;
        if (f & F_SPACE) cp = 0x20;
      } else if (cp >= 0xd800 && cp <= 0xdfff) {
        cp = 0xfffd;
      }
      if (this.handleChineseChars && isChineseChar(cp)) {
        out.push(0x20, start, i);
        out.push(cp, start, i);
        out.push(0x20, start, i);
      } else {
        out.push(cp, start, i);
      }
    }
    return out;
  }
}

/**
 * NFD then drop Mn. NFD decomposes each code point independently but may reorder a run of combining
 * marks across original characters; such a run (base + following marks) whose NFD differs from the
 * per-character decompositions is mapped as a whole to the base-plus-marks original range.
 */
function stripAccentsOf(src: CodePointBuffer): CodePointBuffer {
  const out = new CodePointBuffer();
  const n = src.cps.length;
  for (let i = 0; i < n; ) {
    const cp = src.cps[i];
    let j = i + 1;
    while (j < n && src.cps[j] >= 0x300 && flagsOf(src.cps[j]) & F_MARK) j++;
    if (j > i + 1) {
      let perChar = '';
      let segment = '';
      for (let k = i; k < j; k++) {
        const ch = String.fromCodePoint(src.cps[k]);
        segment += ch;
        perChar += ch.normalize('NFD');
      }
      const whole = segment.normalize('NFD');
      if (whole !== perChar) {
        for (const ch of whole) {
          const c = ch.codePointAt(0)!;
          if (!(flagsOf(c) & F_NONSPACING)) out.push(c, src.starts[i], src.ends[j - 1]);
        }
        i = j;
        continue;
      }
    }
    for (let k = i; k < j; k++) {
      const c = k === i ? cp : src.cps[k];
      if (c < 0x80) {
        out.push(c, src.starts[k], src.ends[k]);
        continue;
      }
      const f = flagsOf(c);
      if (f & F_DECOMPOSES) {
        for (const d of decompositions.get(c)!) if (!(flagsOf(d) & F_NONSPACING)) out.push(d, src.starts[k], src.ends[k]);
      } else if (!(f & F_NONSPACING)) {
        out.push(c, src.starts[k], src.ends[k]);
      }
    }
    i = j;
  }
  return out;
}

/** Per code point; a character may lowercase to several ('İ' → 'i̇'), each keeping its source range. */
function lowercaseOf(src: CodePointBuffer): CodePointBuffer {
  const out = new CodePointBuffer();
  for (let i = 0; i < src.cps.length; i++) {
    const cp = src.cps[i];
    if (cp < 0x80) out.push(cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp, src.starts[i], src.ends[i]);
    else if (flagsOf(cp) & F_LOWERS) for (const l of lowercasings.get(cp)!) out.push(l, src.starts[i], src.ends[i]);
    else out.push(cp, src.starts[i], src.ends[i]);
  }
  return out;
}

function toNormalizedText(buf: CodePointBuffer): NormalizedText {
  let units = 0;
  for (const cp of buf.cps) units += cp > 0xffff ? 2 : 1;
  const starts = new Int32Array(units);
  const ends = new Int32Array(units);
  const codeUnits = new Uint16Array(units);
  let u = 0;
  for (let i = 0; i < buf.cps.length; i++) {
    const cp = buf.cps[i];
    if (cp > 0xffff) {
      const v = cp - 0x10000;
      codeUnits[u] = 0xd800 + (v >> 10);
      codeUnits[u + 1] = 0xdc00 + (v & 0x3ff);
      starts[u] = starts[u + 1] = buf.starts[i];
      ends[u] = ends[u + 1] = buf.ends[i];
      u += 2;
    } else {
      codeUnits[u] = cp;
      starts[u] = buf.starts[i];
      ends[u] = buf.ends[i];
      u++;
    }
  }
  let text = '';
  const CHUNK = 8192; // String.fromCharCode's argument count is bounded by the call stack
  for (let i = 0; i < units; i += CHUNK) text += String.fromCharCode(...codeUnits.subarray(i, i + CHUNK));
  return { text, starts, ends };
}

/** The original [start, end) covered by normalized code units [start, end) (end > start). */
export function originalRange(normalized: NormalizedText, start: number, end: number): [number, number] {
  if (end <= start) {
    const at = start < normalized.starts.length ? normalized.starts[start] : normalized.ends[normalized.ends.length - 1] ?? 0;
    return [at, at];
  }
  let lo = normalized.starts[start];
  let hi = normalized.ends[end - 1];
  // Reordered runs can map a later unit to an earlier start; take the hull.
  for (let k = start; k < end; k++) {
    if (normalized.starts[k] < lo) lo = normalized.starts[k];
    if (normalized.ends[k] > hi) hi = normalized.ends[k];
  }
  return [lo, hi];
}

/** The identity alignment, for tokenizers configured without a normalizer. */
export function identityNormalized(text: string): NormalizedText {
  const starts = new Int32Array(text.length);
  const ends = new Int32Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const pairStart = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const pairEnd = c >= 0xdc00 && c <= 0xdfff && i > 0 && (text.charCodeAt(i - 1) & 0xfc00) === 0xd800;
    starts[i] = pairEnd ? i - 1 : i;
    ends[i] = pairStart ? i + 2 : i + 1;
  }
  return { text, starts, ends };
}
