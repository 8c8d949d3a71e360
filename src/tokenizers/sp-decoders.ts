/**
 * tokenizer.json decoders of SentencePiece-style BPE (Llama 2, TinyLlama, Mistral), applied as Hugging
 * Face `tokenizers` chains them (each step maps the list of token strings to a new list):
 *   Replace { pattern: {String}, content }   "▁" → " " in every token
 *   ByteFallback                             runs of <0xNN> tokens → their UTF-8 text; a run that is not
 *                                            valid UTF-8 gives one U+FFFD per byte (the Rust crate's rule)
 *   Fuse                                     all tokens → one string
 *   Strip { content, start, stop }           remove up to start / stop copies of content at each end
 *   Metaspace { replacement, prepend_scheme } "▁" → " ", the first token's leading one dropped
 * Llama 2's chain: Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)].
 */
import { formatError, readArray, readIndex, readObject, readString } from './json-fields.ts';

export type DecoderStep =
  | { type: 'Replace'; pattern: { String: string }; content: string }
  | { type: 'ByteFallback' }
  | { type: 'Fuse' }
  | { type: 'Strip'; content: string; start: number; stop: number }
  | { type: 'Metaspace'; replacement: string; prepend_scheme: 'always' | 'first' | 'never'; split: boolean };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The byte of a "<0xNN>" token, or -1. */
export function byteOfToken(token: string): number {
  if (token.length !== 6 || !token.startsWith('<0x') || token[5] !== '>') return -1;
  const v = parseInt(token.slice(3, 5), 16);
  return /^[0-9A-Fa-f]{2}$/.test(token.slice(3, 5)) ? v : -1;
}

function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    try {
      out.push(utf8.decode(Uint8Array.from(bytes)));
    } catch {
      for (let i = 0; i < bytes.length; i++) out.push('\ufffd');
    }
    bytes = [];
  };
  for (const t of tokens) {
    const b = byteOfToken(t);
    if (b >= 0) bytes.push(b);
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

function strip(token: string, content: string, start: number, stop: number): string {
  const chars = [...token];
  let a = 0;
  while (a < start && a < chars.length && chars[a] === content) a++;
  let b = chars.length;
  while (chars.length - b < stop && b > a && chars[b - 1] === content) b--;
  return chars.slice(a, b).join('');
}

/** Runs the chain on token strings; returns the decoded text. */
export function runDecoders(steps: readonly DecoderStep[], tokens: string[]): string {
  let list = tokens;
  for (const d of steps) {
    switch (d.type) {
      case 'Replace': list = list.map((t) => t.replaceAll(d.pattern.String, d.content)); break;
      case 'ByteFallback': list = byteFallback(list); break;
      case 'Fuse': list = [list.join('')]; break;
      case 'Strip': list = list.map((t) => strip(t, d.content, d.start, d.stop)); break;
      case 'Metaspace':
        list = list.map((t, i) => {
          const s = t.replaceAll(d.replacement, ' ');
          return i === 0 && d.prepend_scheme !== 'never' && s.startsWith(' ') ? s.slice(1) : s;
        });
        break;
    }
  }
  return list.join('');
}

/** tokenizer.json `decoder` → steps (a Sequence is flattened). */
export function decodersFromJSON(value: unknown, field = 'decoder'): DecoderStep[] {
  const steps: DecoderStep[] = [];
  const read = (v: unknown, f: string): void => {
    const o = readObject(v, f);
    const type = readString(o.type, `${f}.type`);
    switch (type) {
      case 'Sequence':
        readArray(o.decoders, `${f}.decoders`).forEach((x, i) => read(x, `${f}.decoders[${i}]`));
        break;
      case 'Replace': {
        const p = readObject(o.pattern, `${f}.pattern`);
        if (typeof p.String !== 'string') formatError(`${f}.pattern`, 'must be {"String": …} (a Regex pattern is not supported in decoders)');
        steps.push({ type, pattern: { String: p.String }, content: readString(o.content, `${f}.content`) });
        break;
      }
      case 'ByteFallback':
      case 'Fuse':
        steps.push({ type });
        break;
      case 'Strip': {
        const content = readString(o.content ?? ' ', `${f}.content`);
        if ([...content].length !== 1) formatError(`${f}.content`, 'must be one character');
        steps.push({ type, content, start: readIndex(o.start ?? 0, `${f}.start`), stop: readIndex(o.stop ?? 0, `${f}.stop`) });
        break;
      }
      case 'Metaspace':
        steps.push({ type, ...readMetaspace(o, f) });
        break;
      default:
        formatError(`${f}.type`, `${JSON.stringify(type)} is not supported for SentencePiece-style BPE (Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)`);
    }
  };
  if (value !== null && value !== undefined) read(value, field);
  return steps;
}

/** Metaspace's fields (pre-tokenizer and decoder share them); old files have add_prefix_space instead of prepend_scheme. */
export function readMetaspace(o: Record<string, unknown>, f: string): { replacement: string; prepend_scheme: 'always' | 'first' | 'never'; split: boolean } {
  const replacement = readString(o.replacement ?? '\u2581', `${f}.replacement`);
  if ([...replacement].length !== 1) formatError(`${f}.replacement`, 'must be one character');
  let scheme = o.prepend_scheme;
  if (scheme === undefined || scheme === null) scheme = o.add_prefix_space === false ? 'never' : 'always';
  if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') formatError(`${f}.prepend_scheme`, `must be "always", "first" or "never", got ${JSON.stringify(scheme)}`);
  const split = o.split ?? true;
  if (typeof split !== 'boolean') formatError(`${f}.split`, 'must be true or false');
  return { replacement, prepend_scheme: scheme as 'always' | 'first' | 'never', split };
}
