/**
 * The WordPiece model proper (one pre-tokenized word at a time) and its decoder.
 *
 * Greedy longest-match-first (BERT / HF `WordPiece::tokenize`):
 *     if chars(word) > maxInputCharsPerWord: [UNK]
 *     start = 0
 *     while start < len(word):
 *         end = the largest end > start with (start > 0 ? "##" : "") + word[start:end] ∈ vocab
 *         if none: the whole word is [UNK]
 *         emit that piece; start = end
 * Ends only ever fall on code-point boundaries (a surrogate pair is never cut), and the search starts at
 * start + (longest token in the vocabulary) instead of the end of the word, which changes nothing but
 * the cost for long words.
 *
 * Decoding (HF's WordPiece decoder + transformers' clean_up_tokenization):
 *     text = t0 + Σ_{i>0} (t_i starts with "##" ? t_i without "##" : " " + t_i)
 *     cleanup: " ." → "."  " ?" → "?"  " !" → "!"  " ," → ","  " ' " → "'"  " n't" → "n't"  " 'm" → "'m"
 *              " do not" → " don't"  " 's" → "'s"  " 've" → "'ve"  " 're" → "'re"
 */

/** Pieces of one word: (id, start, end) triples, offsets in UTF-16 units within the word. */
export type WordPieces = Int32Array;

const CACHE_LIMIT = 200_000;

export class WordPieceModel {
  readonly vocab: ReadonlyMap<string, number>;
  /** id → token; undefined for ids the vocabulary skips. */
  readonly tokens: ReadonlyArray<string | undefined>;
  readonly unkToken: string;
  readonly unkId: number;
  readonly prefix: string;
  readonly maxInputCharsPerWord: number;
  /** Longest token in UTF-16 units: no match can be longer. */
  private readonly longestPiece: number;
  private readonly cache = new Map<string, WordPieces>();

  constructor(vocab: ReadonlyMap<string, number>, unkToken: string, prefix: string, maxInputCharsPerWord: number) {
    const unkId = vocab.get(unkToken);
    if (unkId === undefined) throw new RangeError(`WordPiece: unk token ${JSON.stringify(unkToken)} is not in the vocabulary`);
    const tokens: Array<string | undefined> = [];
    let longest = 1;
    for (const [token, id] of vocab) {
      if (tokens[id] !== undefined) throw new RangeError(`WordPiece: id ${id} is used by both ${JSON.stringify(tokens[id])} and ${JSON.stringify(token)}`);
      tokens[id] = token;
      // Whole length, prefix included: a word may itself start with the prefix characters.
      if (token.length > longest) longest = token.length;
    }
    this.vocab = vocab;
    this.tokens = tokens;
    this.unkToken = unkToken;
    this.unkId = unkId;
    this.prefix = prefix;
    this.maxInputCharsPerWord = maxInputCharsPerWord;
    this.longestPiece = longest;
  }

  get size(): number {
    return this.tokens.length;
  }

  /** The pieces of one normalized, pre-tokenized word (cached). */
  tokenizeWord(word: string): WordPieces {
    let pieces = this.cache.get(word);
    if (pieces === undefined) {
      pieces = this.greedy(word);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, pieces);
    }
    return pieces;
  }

  private greedy(word: string): WordPieces {
    const unk = Int32Array.of(this.unkId, 0, word.length);
    if (countCodePoints(word, this.maxInputCharsPerWord + 1) > this.maxInputCharsPerWord) return unk;
    const out: number[] = [];
    for (let start = 0; start < word.length; ) {
      let end = Math.min(word.length, start + this.longestPiece);
      if (splitsPair(word, end)) end--;
      let found = -1;
      while (end > start) {
        const piece = start > 0 ? this.prefix + word.slice(start, end) : word.slice(start, end);
        const id = this.vocab.get(piece);
        if (id !== undefined) {
          found = id;
          break;
        }
        end -= end - 2 >= start && splitsPair(word, end - 1) ? 2 : 1;
      }
      if (found < 0) return unk;
      out.push(found, start, end);
      start = end;
    }
    return Int32Array.from(out);
  }
}

/** True when position i falls between the two halves of a surrogate pair. */
function splitsPair(s: string, i: number): boolean {
  if (i <= 0 || i >= s.length) return false;
  const hi = s.charCodeAt(i - 1);
  const lo = s.charCodeAt(i);
  return hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff;
}

/** Code points in s, counting no further than `limit`. */
function countCodePoints(s: string, limit: number): number {
  if (s.length <= limit) {
    let n = 0;
    for (let i = 0; i < s.length; i++) if (!splitsPair(s, i)) n++;
    return n;
  }
  let n = 0;
  for (let i = 0; i < s.length && n < limit; i++) if (!splitsPair(s, i)) n++;
  return n;
}

/** transformers' clean_up_tokenization (the same list as HF's WordPiece decoder cleanup). */
export function cleanUpTokenizationSpaces(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/** CJK ideographs (as the normalizer splits them), CJK symbols/punctuation and full-width forms. */
const CJK_TOKEN_RE =
  /^[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}\u{3000}-\u{303F}\u{FF00}-\u{FFEF}]$/u;

export interface WordPieceJoinOptions {
  /** The continuing prefix glued to the previous token ("##"). */
  prefix: string;
  /** Apply cleanUpTokenizationSpaces to the joined text. */
  cleanup: boolean;
  /**
   * Not HF: leave out the space between two CJK tokens (ideograph, CJK punctuation) and between a CJK
   * token and a special token, so "今天[MASK]，" decodes as written instead of "今 天 [MASK] ，".
   */
  compactCjk: boolean;
  isSpecial: (token: string) => boolean;
}

/** Joins WordPiece tokens into text. */
export function decodeWordPieces(tokens: readonly string[], options: WordPieceJoinOptions): string {
  let text = '';
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (i === 0) text = t; // HF keeps a leading "##" on the first token
    else if (t.startsWith(options.prefix)) text += t.slice(options.prefix.length);
    else if (options.compactCjk && cjkAdjacent(tokens[i - 1], t, options.isSpecial)) text += t;
    else text += ' ' + t;
  }
  return options.cleanup ? cleanUpTokenizationSpaces(text) : text;
}

function cjkAdjacent(left: string, right: string, isSpecial: (token: string) => boolean): boolean {
  const l = CJK_TOKEN_RE.test(left);
  const r = CJK_TOKEN_RE.test(right);
  return (l && r) || (l && isSpecial(right)) || (r && isSpecial(left));
}
