/**
 * Byte-level pieces of GPT-2's tokenizer: the reversible byte↔unicode map and the pre-tokenizer.
 *
 * Byte↔unicode: BPE works on strings, and GPT-2 wants every one of the 256 byte values to be a visible,
 * non-whitespace character, so bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') map to
 * themselves and the other 68 map, in byte order, to U+0100, U+0101, … (so 0x20 ' ' becomes 'Ġ' U+0120,
 * 0x0A '\n' becomes 'Ċ'). The map is sorted by code point, which is also GPT-2's id order for the bytes.
 *
 * Pre-tokenizer: GPT-2 splits text with
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * `preTokenEnd` is a hand-written scanner equivalent to that regex (several times faster than running the
 * regex). Read as rules, at position i:
 *   - "'" followed by s, t, m, d (or re, ve, ll) is a contraction token (case-sensitive);
 *   - otherwise a maximal run of letters, of numbers, or of "other" characters (neither space, letter nor
 *     number), optionally preceded by ONE U+0020 space;
 *   - a whitespace run that reaches the end of the text is one token; one that is followed by a
 *     non-space gives its last character back (`\s+(?!\S)` backtracks), so that a final ' ' can prefix
 *     the next word, and a lone non-' ' whitespace character before a word is a token of its own.
 * "\s" is Unicode White_Space, as in Python's `regex` (real GPT-2), Oniguruma (HF tokenizers) and Rust's
 * regex (tiktoken). JavaScript's \s differs on two characters: it includes U+FEFF and excludes U+0085;
 * gpt-3-encoder, which runs the regex in JS, therefore splits text containing those two characters
 * differently from GPT-2. We follow GPT-2/HF.
 *
 * Invalid text: a lone surrogate is class "other" (like U+FFFD) and is encoded as the UTF-8 of U+FFFD
 * (EF BF BD), exactly what TextEncoder, and so gpt-3-encoder, does; encode never throws on it.
 */

/** GPT-2's pre-tokenization regex, as written in tokenizer.json Split pre-tokenizers. */
export const GPT2_SPLIT_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** BYTE_TO_CHAR[b] is the character GPT-2 uses for byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
/** CHAR_TO_BYTE[charCode] is the byte a byte-level character stands for, or -1. */
export const CHAR_TO_BYTE: Int16Array = buildCharToByte();

function buildByteToChar(): string[] {
  const out = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : next++);
  }
  return out;
}

function buildCharToByte(): Int16Array {
  const map = new Int16Array(324).fill(-1);
  BYTE_TO_CHAR.forEach((ch, b) => (map[ch.charCodeAt(0)] = b));
  return map;
}

/** The byte-level string for raw bytes (e.g. [0x20, 0x68, 0x69] → 'Ġhi'). */
export function bytesToByteLevel(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** The bytes of a byte-level string, or null if it contains a character outside the 256-char alphabet. */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

/**
 * UTF-8 of text[start, end) into out (which must hold 3 bytes per code unit); returns the byte count.
 * A lone surrogate becomes EF BF BD (U+FFFD), as TextEncoder does, so invalid strings still encode.
 */
export function utf8Encode(text: string, start: number, end: number, out: Uint8Array): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 63);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < end ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          i++;
          out[n++] = 0xf0 | (c >> 18);
          out[n++] = 0x80 | ((c >> 12) & 63);
          out[n++] = 0x80 | ((c >> 6) & 63);
          out[n++] = 0x80 | (c & 63);
          continue;
        }
        c = 0xfffd;
      }
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    }
  }
  return n;
}

// Character classes of the pre-tokenizer regex.
export const OTHER = 0;
export const LETTER = 1;
export const NUMBER = 2;
export const SPACE = 3;

/** Unicode White_Space (the \s of Python `regex`, Oniguruma and Rust regex). */
export function isWhiteSpace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) || cp === 0x20 || cp === 0x85 || cp === 0xa0 || cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f ||
    cp === 0x3000
  );
}

/** Class of every BMP code unit; surrogates are OTHER (a valid pair is classified by astralClass). */
const BMP_CLASS: Uint8Array = buildBmpClasses();
const astralCache = new Map<number, number>();
const LETTER_RE = /^\p{L}$/u;
const NUMBER_RE = /^\p{N}$/u;

function buildBmpClasses(): Uint8Array {
  const table = new Uint8Array(0x10000);
  // One regex pass per class over a string of all BMP characters is much faster than 65536 tests.
  const chars: string[] = [];
  for (let c = 0; c < 0x10000; c++) chars.push(c >= 0xd800 && c <= 0xdfff ? ' ' : String.fromCharCode(c));
  const all = chars.join('');
  for (const m of all.matchAll(/\p{L}+/gu)) table.fill(LETTER, m.index, m.index + m[0].length);
  for (const m of all.matchAll(/\p{N}+/gu)) table.fill(NUMBER, m.index, m.index + m[0].length);
  for (let c = 0; c < 0x10000; c++) if (isWhiteSpace(c)) table[c] = SPACE;
  table.fill(OTHER, 0xd800, 0xe000);
  return table;
}

/** Class of a code point above U+FFFF (letters such as CJK Extension B, numbers, emoji = OTHER). */
export function astralClass(cp: number): number {
  let cls = astralCache.get(cp);
  if (cls === undefined) {
    const s = String.fromCodePoint(cp);
    cls = LETTER_RE.test(s) ? LETTER : NUMBER_RE.test(s) ? NUMBER : OTHER;
    astralCache.set(cp, cls);
  }
  return cls;
}

/** Class of any code point. */
export function charClass(cp: number): number {
  return cp < 0x10000 ? BMP_CLASS[cp] : astralClass(cp);
}

/** Class of the character starting at text[i] (a surrogate pair counts as one character). */
function classAt(text: string, i: number, end: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return astralClass(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
  }
  return BMP_CLASS[c];
}

/** End of the maximal run of characters of class `cls` starting at i (i itself is not checked twice). */
function runEnd(text: string, i: number, end: number, cls: number): number {
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        if (astralClass(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000) !== cls) return i;
        i += 2;
        continue;
      }
    }
    if (BMP_CLASS[c] !== cls) return i;
    i++;
  }
  return i;
}

/**
 * End of the GPT-2 pre-token that starts at text[i], looking no further than `end` (exclusive), as the
 * regex above would match it on text.slice(0, end) from position i. Requires i < end.
 */
export function preTokenEnd(text: string, i: number, end: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x27 && i + 1 < end) {
    const d = text.charCodeAt(i + 1);
    if (d === 0x73 || d === 0x74 || d === 0x6d || d === 0x64) return i + 2; // 's 't 'm 'd
    if (i + 2 < end) {
      const e = text.charCodeAt(i + 2);
      if ((d === 0x72 || d === 0x76) && e === 0x65) return i + 3; // 're 've
      if (d === 0x6c && e === 0x6c) return i + 3; // 'll
    }
  }
  if (c < 0xd800 || c > 0xdbff) {
    const cls = BMP_CLASS[c];
    if (cls !== SPACE) return runEnd(text, i + 1, end, cls);
  } else {
    return runEnd(text, i, end, classAt(text, i, end)); // astral characters are never spaces
  }
  if (c === 0x20 && i + 1 < end) {
    const next = classAt(text, i + 1, end);
    if (next !== SPACE) return runEnd(text, i + 1, end, next);
  }
  const k = runEnd(text, i + 1, end, SPACE);
  return k === end || k - i === 1 ? k : k - 1;
}

/** GPT-2 pre-tokens of text[start, end) as [start, end) pairs. */
export function preTokenSpans(text: string, start = 0, end = text.length): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (let i = start; i < end; ) {
    const j = preTokenEnd(text, i, end);
    spans.push([i, j]);
    i = j;
  }
  return spans;
}

/** GPT-2 pre-tokens of text as strings. */
export function preTokenize(text: string): string[] {
  return preTokenSpans(text).map(([s, e]) => text.slice(s, e));
}

/**
 * A position near `target` where text can be cut without changing its pre-tokenization: just before a
 * whitespace character that follows a non-whitespace one (no GPT-2 pre-token spans such a boundary and
 * the regex never looks behind). Used to split long inputs into independent chunks. Returns text.length
 * when there is no such position at or after target.
 */
export function safeCutAfter(text: string, target: number): number {
  for (let i = Math.max(1, target); i < text.length; i++) {
    // A surrogate at i - 1 belongs to an astral character or is lone: both are non-space.
    if (BMP_CLASS[text.charCodeAt(i)] === SPACE && BMP_CLASS[text.charCodeAt(i - 1)] !== SPACE) return i;
  }
  return text.length;
}

/** The last position ≤ limit where text can be cut safely (see safeCutAfter), or 0 when there is none. */
export function safeCutBefore(text: string, limit = text.length): number {
  for (let i = Math.min(limit, text.length - 1); i >= 1; i--) {
    if (BMP_CLASS[text.charCodeAt(i)] === SPACE && BMP_CLASS[text.charCodeAt(i - 1)] !== SPACE) return i;
  }
  return 0;
}
