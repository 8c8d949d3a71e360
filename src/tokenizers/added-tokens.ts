/**
 * Added tokens (specials such as <|endoftext|>, [CLS], [MASK], and user-added ones): they are found in
 * the raw text first and are never split by the pre-tokenizer nor merged by the model, exactly like
 * Hugging Face's AddedVocabulary. Matching is leftmost-longest: at the leftmost position where any added
 * token occurs, the longest one wins ("<|endoftext|>" beats "<|end").
 *
 * Per-token flags (HF semantics):
 *   single_word  only match when the character before and after is not a word character (letter, digit, _)
 *   lstrip       the token's span also swallows the whitespace on its left (those spaces are not encoded)
 *   rstrip       the same on the right
 *   normalized   match in the normalized text instead of the raw text. Tokenizers with a normalizer call
 *                split(text, 'raw') on the input, normalize the plain pieces, then split(piece, 'normalized');
 *                tokenizers without one just call split(text) (all tokens, one pass).
 *   special      a control token: skipped by decode({skipSpecialTokens: true}), 1 in specialTokensMask.
 */
import type { AddedTokenSpec } from './types.ts';
import { charClass, isWhiteSpace, LETTER, NUMBER } from './bytelevel.ts';
import { formatError, readArray, readBool, readIndex, readObject, readString } from './json-fields.ts';

/** One piece of split text: [start, end) in the input, and the added token's id, or -1 for plain text. */
export interface TextPiece {
  start: number;
  end: number;
  id: number;
}

type Which = 'all' | 'raw' | 'normalized';

export class AddedVocabulary {
  private readonly byContent = new Map<string, AddedTokenSpec>();
  private readonly byId = new Map<number, AddedTokenSpec>();
  private readonly patterns = new Map<Which, RegExp | null>();

  constructor(tokens: readonly AddedTokenSpec[] = []) {
    for (const t of tokens) this.add(t);
  }

  /** Adds (or replaces, by content) an added token. Its id must not be used by another added token. */
  add(token: AddedTokenSpec): void {
    if (token.content.length === 0) throw new RangeError('added token content must not be empty');
    const clash = this.byId.get(token.id);
    if (clash && clash.content !== token.content) {
      throw new RangeError(`added token ${JSON.stringify(token.content)}: id ${token.id} is already ${JSON.stringify(clash.content)}`);
    }
    const old = this.byContent.get(token.content);
    if (old) this.byId.delete(old.id);
    const full: AddedTokenSpec = {
      id: token.id, content: token.content, single_word: token.single_word ?? false, lstrip: token.lstrip ?? false,
      rstrip: token.rstrip ?? false, normalized: token.normalized ?? !(token.special ?? false), special: token.special ?? false,
    };
    this.byContent.set(full.content, full);
    this.byId.set(full.id, full);
    this.patterns.clear();
  }

  get size(): number {
    return this.byId.size;
  }

  /** All added tokens in id order (tokenizer.json `added_tokens`). */
  list(): AddedTokenSpec[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  idOf(content: string): number | undefined {
    return this.byContent.get(content)?.id;
  }

  get(id: number): AddedTokenSpec | undefined {
    return this.byId.get(id);
  }

  isSpecial(id: number): boolean {
    return this.byId.get(id)?.special === true;
  }

  /** Largest id + 1 (0 when empty): the vocabulary must be at least this big. */
  idLimit(): number {
    let n = 0;
    for (const id of this.byId.keys()) n = Math.max(n, id + 1);
    return n;
  }

  /**
   * Splits text into plain pieces (id -1) and added tokens, in order and covering the text exactly.
   * `which` picks the tokens to look for: all of them, those matched in raw text (normalized: false),
   * or those matched after normalization (normalized: true).
   */
  split(text: string, which: Which = 'all'): TextPiece[] {
    const re = this.pattern(which);
    if (re === null || text.length === 0) return text.length === 0 ? [] : [{ start: 0, end: text.length, id: -1 }];
    const pieces: TextPiece[] = [];
    let done = 0; // end of the last piece pushed
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const token = this.byContent.get(m[0])!;
      let start = m.index;
      let end = start + m[0].length;
      if (token.single_word && (isWordCharBefore(text, start) || isWordCharAt(text, end))) continue;
      if (token.lstrip) while (start > done && isWhiteSpace(text.charCodeAt(start - 1))) start--;
      if (token.rstrip) while (end < text.length && isWhiteSpace(text.charCodeAt(end))) end++;
      if (start > done) pieces.push({ start: done, end: start, id: -1 });
      pieces.push({ start, end, id: token.id });
      done = end;
      re.lastIndex = end;
    }
    if (done < text.length) pieces.push({ start: done, end: text.length, id: -1 });
    return pieces;
  }

  /** Alternation of the escaped contents, longest first, so the regex's leftmost-first is leftmost-longest. */
  private pattern(which: Which): RegExp | null {
    if (this.patterns.has(which)) return this.patterns.get(which)!;
    const contents = [...this.byContent.values()]
      .filter((t) => which === 'all' || (which === 'normalized') === t.normalized)
      .map((t) => t.content)
      .sort((a, b) => b.length - a.length);
    const re = contents.length === 0 ? null : new RegExp(contents.map(escapeRegExp).join('|'), 'g');
    this.patterns.set(which, re);
    return re;
  }

  /** tokenizer.json `added_tokens`. */
  toJSON(): Array<Required<AddedTokenSpec>> {
    return this.list().map((t) => ({
      id: t.id, content: t.content, single_word: t.single_word!, lstrip: t.lstrip!, rstrip: t.rstrip!,
      normalized: t.normalized!, special: t.special!,
    }));
  }

  /** Reads tokenizer.json `added_tokens` (absent or null means none). */
  static fromJSON(json: unknown, field = 'added_tokens'): AddedVocabulary {
    const vocab = new AddedVocabulary();
    if (json === undefined || json === null) return vocab;
    readArray(json, field).forEach((entry, i) => {
      const f = `${field}[${i}]`;
      const o = readObject(entry, f);
      const content = readString(o.content, `${f}.content`);
      if (content.length === 0) formatError(`${f}.content`, 'must not be empty');
      const id = readIndex(o.id, `${f}.id`);
      const clash = vocab.get(id);
      if (clash && clash.content !== content) formatError(`${f}.id`, `${id} is already used by ${JSON.stringify(clash.content)}`);
      const special = readBool(o.special, `${f}.special`, false);
      vocab.add({
        id, content, special, single_word: readBool(o.single_word, `${f}.single_word`, false),
        lstrip: readBool(o.lstrip, `${f}.lstrip`, false), rstrip: readBool(o.rstrip, `${f}.rstrip`, false),
        normalized: readBool(o.normalized, `${f}.normalized`, !special),
      });
    });
    return vocab;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&');
}

function isWordCp(cp: number): boolean {
  const cls = charClass(cp);
  return cls === LETTER || cls === NUMBER || cp === 0x5f;
}

function isWordCharBefore(text: string, i: number): boolean {
  if (i === 0) return false;
  const cp = text.codePointAt(i - 1)!;
  if (cp >= 0xdc00 && cp <= 0xdfff && i >= 2) return isWordCp(text.codePointAt(i - 2)!);
  return isWordCp(cp);
}

function isWordCharAt(text: string, i: number): boolean {
  return i < text.length && isWordCp(text.codePointAt(i)!);
}

/** Special-token roles guessed from the usual contents, for files that do not say (tokenizer.json does not). */
export function guessSpecialRoles(contents: Iterable<string>): {
  pad?: string; unk?: string; cls?: string; sep?: string; mask?: string; bos?: string; eos?: string;
} {
  const roles: Record<string, string> = {};
  const known: Record<string, string[]> = {
    pad: ['[PAD]', '<pad>', '<|pad|>', '<|padding|>'],
    unk: ['[UNK]', '<unk>', '<|unk|>'],
    cls: ['[CLS]', '<s>', '<cls>'],
    sep: ['[SEP]', '</s>', '<sep>'],
    mask: ['[MASK]', '<mask>', '<|mask|>'],
    bos: ['<s>', '<|endoftext|>', '<|begin_of_text|>', '<bos>', '[BOS]', '<|bos|>'],
    eos: ['</s>', '<|endoftext|>', '<|end_of_text|>', '<eos>', '[EOS]', '<|eos|>'],
  };
  const present = new Set(contents);
  for (const [role, candidates] of Object.entries(known)) {
    const hit = candidates.find((c) => present.has(c));
    if (hit !== undefined) roles[role] = hit;
  }
  return roles;
}
