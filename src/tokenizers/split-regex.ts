/**
 * The `Split` pre-tokenizer of tokenizer.json with a `Regex` pattern (Llama 3, Qwen2, …), as Hugging Face
 * `tokenizers` applies it:
 *
 *   { "type": "Split", "pattern": { "Regex": "…" } | { "String": "…" }, "behavior": "Isolated", "invert": false }
 *
 * Patterns are written for Oniguruma (the Rust crate's engine), so they are translated to a JavaScript
 * `u` regex first; JavaScript has no inline flags, so `(?i:…)` becomes explicit case alternatives:
 *   \s \S      → \p{White_Space} / \P{White_Space} (JS \s would add U+FEFF and miss U+0085)
 *   \d \D \w   → \p{Nd}, \P{Nd}, Oniguruma's Unicode word class
 *   .          → [^\n] (Oniguruma's dot excludes only \n)
 *   (?i:…)     → every ASCII letter inside becomes [aA] (also inside classes). Oniguruma would also fold
 *                'ſ' (U+017F) with s and 'K' (U+212A) with k; @huggingface/tokenizers folds ASCII only,
 *                and so do we, so ids stay identical to it.
 *   \x{HHHH}   → \u{HHHH}
 * Constructs that would silently match differently (atomic groups, possessive quantifiers, \G, other
 * inline flags) are refused with an error naming the field.
 *
 * Behaviours follow the Rust crate: the text is cut into matches and the gaps between them (with
 * `invert`, the gaps are the "delimiters" instead); then Isolated keeps every piece, Removed drops the
 * delimiters, MergedWithPrevious / MergedWithNext glue each delimiter to the piece before / after it,
 * Contiguous joins consecutive delimiters.
 */
import { formatError, readBool, readObject, readOptionalString, readString } from './json-fields.ts';

export type SplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: readonly SplitBehavior[] = ['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}';
const ESCAPES: Record<string, string> = {
  s: '\\p{White_Space}', S: '\\P{White_Space}', d: '\\p{Nd}', D: '\\P{Nd}', w: `[${WORD}]`, W: `[^${WORD}]`,
  h: '[0-9A-Fa-f]', H: '[^0-9A-Fa-f]',
};
const CLASS_ESCAPES: Record<string, string> = { s: '\\p{White_Space}', S: '\\P{White_Space}', d: '\\p{Nd}', D: '\\P{Nd}', w: WORD, h: '0-9A-Fa-f' };
const UNSUPPORTED: Record<string, string> = { G: '\\G', A: '\\A', z: '\\z', Z: '\\Z', b: '\\b', B: '\\B', K: '\\K', R: '\\R', X: '\\X' };

export class SplitPatternError extends Error {
  override name = 'SplitPatternError';
}

/** Oniguruma pattern → JavaScript source for a `u` regex (see the top of the file). */
export function onigurumaToJs(pattern: string): string {
  let out = '';
  const foldStack: boolean[] = []; // per open group: does it turn on case folding?
  let fold = false;
  const fail = (i: number, what: string): never => {
    throw new SplitPatternError(`${what} at position ${i} of ${JSON.stringify(pattern)} is not supported`);
  };
  const letter = (c: string, inClass: boolean): string => {
    if (!fold || !/^[A-Za-z]$/.test(c)) return c;
    const pair = c.toLowerCase() + c.toUpperCase();
    return inClass ? pair : `[${pair}]`;
  };
  /** An escape at pattern[i] === '\\'; returns [translation, next index]. */
  const escape = (i: number, inClass: boolean): [string, number] => {
    const c = pattern[i + 1];
    if (c === undefined) fail(i, 'a trailing backslash');
    const braced = /^\\([pPx])\{([^}]*)\}/.exec(pattern.slice(i));
    if (braced) {
      if (braced[1] === 'x') return [`\\u{${braced[2]}}`, i + braced[0].length];
      return [braced[0], i + braced[0].length];
    }
    const table = inClass ? CLASS_ESCAPES : ESCAPES;
    if (table[c!] !== undefined) return [table[c!]!, i + 2];
    if (UNSUPPORTED[c!] !== undefined) fail(i, UNSUPPORTED[c!]!);
    if (/[A-Za-z]/.test(c!) && !'nrtfvex0cu'.includes(c!)) fail(i, `\\${c}`);
    if (c === 'x' || c === 'u' || c === 'c') {
      const m = /^\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|c[A-Za-z])/.exec(pattern.slice(i));
      if (!m) fail(i, `\\${c} without its digits`);
      return [m![0], i + m![0].length];
    }
    if (c === 'e') return ['\\x1B', i + 2];
    if (/[0-9A-Za-z]/.test(c!)) return [`\\${c}`, i + 2];
    // An escaped punctuation character: JS `u` mode only accepts escapes of syntax characters.
    return ['^$\\.*+?()[]{}|/'.includes(c!) || (inClass && c === '-') ? `\\${c}` : c!, i + 2];
  };
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i]!;
    if (c === '\\') {
      const [s, next] = escape(i, false);
      out += s;
      i = next;
    } else if (c === '[') {
      // Character class (one nesting level, as tokenizer patterns use): copy, translating escapes and folding.
      let j = i + 1;
      let body = '';
      if (pattern[j] === '^') {
        body += '^';
        j++;
      }
      if (pattern[j] === ']') {
        body += '\\]';
        j++;
      }
      for (; j < pattern.length && pattern[j] !== ']'; ) {
        if (pattern[j] === '\\') {
          const [s, next] = escape(j, true);
          body += s;
          j = next;
        } else if (pattern[j] === '[') {
          fail(j, 'a nested character class or POSIX bracket');
        } else if (pattern.startsWith('&&', j)) {
          fail(j, 'a class intersection (&&)');
        } else if (pattern[j + 1] === '-' && pattern[j + 2] !== undefined && pattern[j + 2] !== ']' && pattern[j + 2] !== '\\') {
          // A range: folded as a whole ([a-c] → a-cA-C), never letter by letter (aA-cC would be A..c).
          const [a, b] = [pattern[j]!, pattern[j + 2]!];
          body += `${a}-${b}`;
          if (fold && /^[a-z]$/.test(a) && /^[a-z]$/.test(b)) body += `${a.toUpperCase()}-${b.toUpperCase()}`;
          else if (fold && /^[A-Z]$/.test(a) && /^[A-Z]$/.test(b)) body += `${a.toLowerCase()}-${b.toLowerCase()}`;
          j += 3;
        } else {
          body += letter(pattern[j]!, true);
          j++;
        }
      }
      if (j >= pattern.length) fail(i, 'an unclosed [');
      out += `[${body}]`;
      i = j + 1;
    } else if (c === '(') {
      if (pattern[i + 1] !== '?') {
        foldStack.push(fold);
        out += '(';
        i++;
        continue;
      }
      const flags = /^\(\?([imx-]*):/.exec(pattern.slice(i));
      if (flags && flags[1] !== '') {
        if (!/^i?$/.test(flags[1]!)) fail(i, `the inline flags (?${flags[1]}:`);
        foldStack.push(fold);
        fold = true;
        out += '(?:';
        i += flags[0].length;
        continue;
      }
      const group = /^\(\?(?::|=|!|<=|<!|<[A-Za-z_]\w*>)/.exec(pattern.slice(i));
      if (!group) fail(i, pattern.slice(i, i + 3) + ' (atomic groups, inline flags, …)');
      foldStack.push(fold);
      out += group![0];
      i += group![0].length;
    } else if (c === ')') {
      if (foldStack.length === 0) fail(i, 'an unbalanced )');
      fold = foldStack.pop()!;
      out += ')';
      i++;
    } else if (c === '.') {
      out += '[^\\n]';
      i++;
    } else if (c === '^' || c === '$') {
      out += c === '^' ? '(?:(?<![\\s\\S])|(?<=\\n))' : '(?:(?=\\n)|(?![\\s\\S]))';
      i++;
    } else if ((c === '+' || c === '*' || c === '?' || c === '}') && pattern[i + 1] === '+') {
      fail(i, 'a possessive quantifier');
    } else {
      out += letter(c, false);
      i++;
    }
  }
  if (foldStack.length > 0) fail(pattern.length, 'an unclosed (');
  return out;
}

export class SplitPreTokenizer {
  readonly pattern: { Regex: string } | { String: string };
  readonly behavior: SplitBehavior;
  readonly invert: boolean;
  private readonly regex: RegExp;

  constructor(pattern: { Regex: string } | { String: string }, behavior: SplitBehavior = 'Isolated', invert = false) {
    this.pattern = pattern;
    this.behavior = behavior;
    this.invert = invert;
    const source = 'Regex' in pattern ? onigurumaToJs(pattern.Regex) : pattern.String.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    this.regex = new RegExp(source, 'gu');
  }

  /** Pieces of text as [start, end) pairs, per the behaviour (empty pieces are never returned). */
  spans(text: string): Array<[number, number]> {
    // Matches and gaps, in order, with `isDelimiter` = is a match (flipped by invert).
    const parts: Array<[number, number, boolean]> = [];
    let prev = 0;
    const re = this.regex;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const s = m.index;
      const e = s + m[0].length;
      if (e === s) {
        re.lastIndex = s + (text.codePointAt(s)! > 0xffff ? 2 : 1); // an empty match cuts nothing
        continue;
      }
      if (s > prev) parts.push([prev, s, this.invert]);
      parts.push([s, e, !this.invert]);
      prev = e;
    }
    if (prev < text.length) parts.push([prev, text.length, this.invert]);
    const out: Array<[number, number]> = [];
    switch (this.behavior) {
      case 'Isolated':
        for (const [s, e] of parts) out.push([s, e]);
        break;
      case 'Removed':
        for (const [s, e, d] of parts) if (!d) out.push([s, e]);
        break;
      case 'MergedWithPrevious': {
        let previousDelimiter = false;
        for (const [s, e, d] of parts) {
          if (d && !previousDelimiter && out.length > 0) out[out.length - 1]![1] = e;
          else out.push([s, e]);
          previousDelimiter = d;
        }
        break;
      }
      case 'MergedWithNext': {
        let pending = -1; // start of delimiters waiting for the next piece
        for (const [s, e, d] of parts) {
          if (d) {
            if (pending >= 0) out.push([pending, s]);
            pending = s;
          } else {
            out.push([pending >= 0 ? pending : s, e]);
            pending = -1;
          }
        }
        if (pending >= 0) out.push([pending, text.length]);
        break;
      }
      case 'Contiguous': {
        let inDelims = false;
        for (const [s, e, d] of parts) {
          if (d && inDelims) out[out.length - 1]![1] = e;
          else out.push([s, e]);
          inDelims = d;
        }
        break;
      }
    }
    return out;
  }

  toJSON(): Record<string, unknown> {
    return { type: 'Split', pattern: this.pattern, behavior: this.behavior, invert: this.invert };
  }

  /** tokenizer.json `{"type": "Split", …}`; errors name the field. */
  static fromJSON(value: unknown, field: string): SplitPreTokenizer {
    const o = readObject(value, field);
    if (o.type !== 'Split') formatError(`${field}.type`, `must be "Split", got ${JSON.stringify(o.type)}`);
    const p = readObject(o.pattern, `${field}.pattern`);
    const regex = readOptionalString(p.Regex, `${field}.pattern.Regex`);
    const string = readOptionalString(p.String, `${field}.pattern.String`);
    if ((regex === undefined) === (string === undefined)) formatError(`${field}.pattern`, 'must have exactly one of "Regex" and "String"');
    const behavior = readString(o.behavior ?? 'Isolated', `${field}.behavior`) as SplitBehavior;
    if (!BEHAVIORS.includes(behavior)) formatError(`${field}.behavior`, `must be one of ${BEHAVIORS.join(', ')}, got ${JSON.stringify(behavior)}`);
    const invert = readBool(o.invert, `${field}.invert`, false);
    try {
      return new SplitPreTokenizer(regex !== undefined ? { Regex: regex } : { String: string! }, behavior, invert);
    } catch (e) {
      if (e instanceof SplitPatternError || e instanceof SyntaxError) formatError(`${field}.pattern.Regex`, `cannot be used: ${e.message}`);
      throw e;
    }
  }
}
