/**
 * BertPreTokenizer: split on whitespace (removed), then make every punctuation character a word of its
 * own. Punctuation is HF's `is_bert_punc`: ASCII punctuation (33–47, 58–64, 91–96, 123–126, which
 * includes symbols like $ + < = > ^ ` | ~) or any Unicode P* category. Whitespace is Unicode White_Space
 * (Rust's char::is_whitespace).
 *
 * One regex does both splits: a word is either a single punctuation character or a maximal run of
 * characters that are neither punctuation nor whitespace.
 */

const PUNCT = String.raw`!-\/:-@\[-\x60{-~\p{P}`;
const WORD_RE = new RegExp(String.raw`[${PUNCT}]|[^${PUNCT}\p{White_Space}]+`, 'gu');
const PUNCT_RE = new RegExp(String.raw`^[${PUNCT}]$`, 'u');

/** One pre-token: its text and [start, end) UTF-16 offsets in the string it was cut from. */
export interface PreToken {
  text: string;
  start: number;
  end: number;
}

export function isBertPunctuation(ch: string): boolean {
  return PUNCT_RE.test(ch);
}

export function bertPreTokenize(text: string): PreToken[] {
  const out: PreToken[] = [];
  WORD_RE.lastIndex = 0;
  for (let m = WORD_RE.exec(text); m !== null; m = WORD_RE.exec(text)) {
    out.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** Words only, no offsets (training's hot loop). */
export function bertPreTokenizeWords(text: string): string[] {
  return text.match(WORD_RE) ?? [];
}

/** Hugging Face tokenizer.json `pre_tokenizer` entry. */
export const BERT_PRE_TOKENIZER_JSON = { type: 'BertPreTokenizer' } as const;

export function checkBertPreTokenizerJSON(json: unknown, field = 'pre_tokenizer'): void {
  if (json === null || typeof json !== 'object' || (json as { type?: unknown }).type !== 'BertPreTokenizer') {
    const got = json === null || typeof json !== 'object' ? String(json) : JSON.stringify((json as { type?: unknown }).type);
    throw new TypeError(`${field}.type: expected "BertPreTokenizer", got ${got}`);
  }
}
