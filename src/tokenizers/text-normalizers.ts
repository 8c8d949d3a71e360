/**
 * The tokenizer.json normalizers of Llama/Qwen2-family tokenizers, with offsets kept:
 *   NFC / NFD / NFKC / NFKD                  (Qwen2: NFC)
 *   Prepend { prepend }                      (Llama 2 / TinyLlama: Prepend("▁"))
 *   Replace { pattern: {String|Regex}, content }   (Llama 2: Replace(" ", "▁"))
 *   Sequence { normalizers: [...] }
 * Every normalized UTF-16 unit remembers the original [start, end) it came from (NormalizedText), so
 * encodings point into the user's text. As in HF, a prepended string is aligned with the first
 * character, and a replacement with the text it replaced.
 *
 * Unicode forms are applied per segment (a character and the combining marks after it), so each output
 * unit maps to its own segment; should that ever differ from normalizing the whole string (some
 * non-starter decompositions), the whole piece is normalized at once and maps to the whole range.
 */
import { formatError, readArray, readObject, readString } from './json-fields.ts';
import { identityNormalized, type NormalizedText } from './normalizer.ts';
import { onigurumaToJs } from './split-regex.ts';

export type UnicodeForm = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';
export type TextNormalizer =
  | { type: UnicodeForm }
  | { type: 'Prepend'; prepend: string }
  | { type: 'Replace'; pattern: { String: string } | { Regex: string }; content: string };

const FORMS: readonly string[] = ['NFC', 'NFD', 'NFKC', 'NFKD'];
/** Where a new normalization segment may start: not a mark, not a Hangul vowel/trailing jamo. */
const CONTINUES_SEGMENT = /[\p{M}\u1160-\u11ff\u302e\u302f\uff9e\uff9f]/u;

function patternRegex(p: { String: string } | { Regex: string }): RegExp {
  return new RegExp('String' in p ? p.String.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') : onigurumaToJs(p.Regex), 'gu');
}

/** Builder of a NormalizedText: pushes units with their original ranges. */
class Aligned {
  readonly units: string[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  push(s: string, start: number, end: number): void {
    for (let i = 0; i < s.length; i++) {
      this.units.push(s[i]!);
      this.starts.push(start);
      this.ends.push(end);
    }
  }
  done(): NormalizedText {
    return { text: this.units.join(''), starts: Int32Array.from(this.starts), ends: Int32Array.from(this.ends) };
  }
}

function unicodeForm(n: NormalizedText, form: UnicodeForm): NormalizedText {
  const text = n.text;
  const whole = text.normalize(form);
  if (whole === text) return n;
  const out = new Aligned();
  let joined = '';
  for (let i = 0; i < text.length; ) {
    let j = i + (text.codePointAt(i)! > 0xffff ? 2 : 1);
    while (j < text.length) {
      const cp = text.codePointAt(j)!;
      if (!CONTINUES_SEGMENT.test(String.fromCodePoint(cp))) break;
      j += cp > 0xffff ? 2 : 1;
    }
    const seg = text.slice(i, j).normalize(form);
    joined += seg;
    let lo = n.starts[i]!;
    let hi = n.ends[j - 1]!;
    for (let k = i; k < j; k++) {
      lo = Math.min(lo, n.starts[k]!);
      hi = Math.max(hi, n.ends[k]!);
    }
    out.push(seg, lo, hi);
    i = j;
  }
  if (joined === whole) return out.done();
  const all = new Aligned();
  all.push(whole, n.starts[0] ?? 0, n.ends[n.ends.length - 1] ?? 0);
  return all.done();
}

function prepend(n: NormalizedText, s: string): NormalizedText {
  if (n.text.length === 0) return n;
  const out = new Aligned();
  out.push(s, n.starts[0]!, n.ends[0]!);
  for (let i = 0; i < n.text.length; i++) out.push(n.text[i]!, n.starts[i]!, n.ends[i]!);
  return out.done();
}

function replace(n: NormalizedText, re: RegExp, content: string): NormalizedText {
  const out = new Aligned();
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(n.text); m !== null; m = re.exec(n.text)) {
    const s = m.index;
    const e = s + m[0].length;
    if (e === s) {
      re.lastIndex++;
      continue;
    }
    for (let i = prev; i < s; i++) out.push(n.text[i]!, n.starts[i]!, n.ends[i]!);
    if (content.length === e - s) for (let i = 0; i < content.length; i++) out.push(content[i]!, n.starts[s + i]!, n.ends[s + i]!);
    else out.push(content, n.starts[s]!, n.ends[e - 1]!);
    prev = e;
  }
  if (prev === 0) return n;
  for (let i = prev; i < n.text.length; i++) out.push(n.text[i]!, n.starts[i]!, n.ends[i]!);
  return out.done();
}

/** A chain of normalizers (empty = identity), compiled once. */
export class NormalizerChain {
  private readonly steps: Array<(n: NormalizedText) => NormalizedText>;
  constructor(readonly normalizers: readonly TextNormalizer[]) {
    this.steps = normalizers.map((d) => {
      if (d.type === 'Prepend') return (n) => prepend(n, d.prepend);
      if (d.type === 'Replace') {
        const re = patternRegex(d.pattern);
        return (n) => replace(n, re, d.content);
      }
      return (n) => unicodeForm(n, d.type);
    });
  }

  get isIdentity(): boolean {
    return this.steps.length === 0;
  }

  /** The normalized text with its alignment to `text`. */
  apply(text: string): NormalizedText {
    return this.applyTo(identityNormalized(text));
  }

  /** The chain applied to already-aligned text (alignment composed). */
  applyTo(n: NormalizedText): NormalizedText {
    for (const step of this.steps) n = step(n);
    return n;
  }

  /** tokenizer.json `normalizer` (null when empty; a Sequence when several). */
  toJSON(): unknown {
    if (this.normalizers.length === 0) return null;
    if (this.normalizers.length === 1) return this.normalizers[0];
    return { type: 'Sequence', normalizers: this.normalizers };
  }

  /** Reads tokenizer.json `normalizer` (null, one of the supported types, or a Sequence of them). */
  static fromJSON(value: unknown, field = 'normalizer'): NormalizerChain {
    const list: TextNormalizer[] = [];
    const read = (v: unknown, f: string): void => {
      const o = readObject(v, f);
      const type = readString(o.type, `${f}.type`);
      if (type === 'Sequence') {
        readArray(o.normalizers, `${f}.normalizers`).forEach((x, i) => read(x, `${f}.normalizers[${i}]`));
      } else if (FORMS.includes(type)) {
        list.push({ type: type as UnicodeForm });
      } else if (type === 'Prepend') {
        list.push({ type, prepend: readString(o.prepend, `${f}.prepend`) });
      } else if (type === 'Replace') {
        const p = readObject(o.pattern, `${f}.pattern`);
        const pattern = typeof p.String === 'string' ? { String: p.String } : typeof p.Regex === 'string' ? { Regex: p.Regex } : formatError(`${f}.pattern`, 'must be {"String": …} or {"Regex": …}');
        try {
          patternRegex(pattern);
        } catch (e) {
          formatError(`${f}.pattern`, `cannot be used: ${(e as Error).message}`);
        }
        list.push({ type, pattern, content: readString(o.content, `${f}.content`) });
      } else {
        formatError(`${f}.type`, `${JSON.stringify(type)} is not supported here (NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence)`);
      }
    };
    if (value !== null && value !== undefined) read(value, field);
    return new NormalizerChain(list);
  }
}
