/**
 * Operations on Encoding values shared by all tokenizers: building, slicing, concatenating, truncating
 * (HF's "longest first" arithmetic for pairs) and padding. See postprocess.ts for the whole pipeline.
 */
import type { Encoding, Side, TruncationStrategy } from './types.ts';

export function emptyEncoding(): Encoding {
  return { ids: [], tokens: [], offsets: [], typeIds: [], attentionMask: [], specialTokensMask: [], sequenceIds: [] };
}

/** Appends one token. `sequenceId` null marks a token that the post-processor or padding added. */
export function pushToken(
  enc: Encoding, id: number, token: string, start: number, end: number,
  sequenceId: number | null, special: boolean, typeId = sequenceId ?? 0,
): void {
  enc.ids.push(id);
  enc.tokens.push(token);
  enc.offsets.push([start, end]);
  enc.typeIds.push(typeId);
  enc.attentionMask.push(1);
  enc.specialTokensMask.push(special ? 1 : 0);
  enc.sequenceIds.push(sequenceId);
}

/** Tokens [from, to) of enc, as a new Encoding. */
export function sliceEncoding(enc: Encoding, from: number, to: number): Encoding {
  return {
    ids: enc.ids.slice(from, to), tokens: enc.tokens.slice(from, to), offsets: enc.offsets.slice(from, to),
    typeIds: enc.typeIds.slice(from, to), attentionMask: enc.attentionMask.slice(from, to),
    specialTokensMask: enc.specialTokensMask.slice(from, to), sequenceIds: enc.sequenceIds.slice(from, to),
  };
}

/** Concatenation (a fresh Encoding; the inputs are left alone). */
export function concatEncodings(parts: readonly Encoding[]): Encoding {
  const out = emptyEncoding();
  for (const p of parts) {
    out.ids.push(...p.ids);
    out.tokens.push(...p.tokens);
    out.offsets.push(...p.offsets);
    out.typeIds.push(...p.typeIds);
    out.attentionMask.push(...p.attentionMask);
    out.specialTokensMask.push(...p.specialTokensMask);
    out.sequenceIds.push(...p.sequenceIds);
  }
  return out;
}

/** Keeps `length` tokens of enc, dropping them at the given side. */
export function truncateEncoding(enc: Encoding, length: number, side: Side = 'right'): Encoding {
  const n = enc.ids.length;
  if (length >= n) return enc;
  return side === 'right' ? sliceEncoding(enc, 0, Math.max(0, length)) : sliceEncoding(enc, n - Math.max(0, length), n);
}

/**
 * Shortens a (pair of) sequence(s) to at most maxLength tokens in total. For longest_first HF's rule:
 * with n1 ≤ n2 the shorter sequence is kept whole if it fits (n2 = max(n1, maxLength - n1)); if that is
 * still too long, both get maxLength/2 (the second of the original order gets the odd token).
 */
export function truncateEncodings(
  a: Encoding, b: Encoding | null, maxLength: number,
  strategy: TruncationStrategy = 'longest_first', side: Side = 'right',
): [Encoding, Encoding | null] {
  maxLength = Math.max(0, maxLength);
  const la = a.ids.length;
  const lb = b ? b.ids.length : 0;
  if (la + lb <= maxLength) return [a, b];
  if (b === null) {
    if (strategy === 'only_second') throw new RangeError('truncation only_second needs a pair of sequences');
    return [truncateEncoding(a, maxLength, side), null];
  }
  if (strategy === 'only_first' || strategy === 'only_second') {
    const other = strategy === 'only_first' ? lb : la;
    if (other >= maxLength) {
      throw new RangeError(`truncation ${strategy}: the other sequence alone has ${other} tokens, over maxLength ${maxLength}`);
    }
    const keep = Math.max(0, maxLength - other);
    return strategy === 'only_first' ? [truncateEncoding(a, keep, side), b] : [a, truncateEncoding(b, keep, side)];
  }
  let n1 = Math.min(la, lb);
  let n2 = n1 > maxLength ? n1 : Math.max(n1, maxLength - n1);
  if (n1 + n2 > maxLength) {
    n1 = Math.floor(maxLength / 2);
    n2 = n1 + (maxLength % 2);
  }
  const [ka, kb] = la > lb ? [n2, n1] : [n1, n2];
  return [truncateEncoding(a, ka, side), truncateEncoding(b, kb, side)];
}

export interface PadSpec {
  id: number;
  token: string;
  typeId?: number;
}

/** Pads enc (in place) to `length` tokens. */
export function padEncoding(enc: Encoding, length: number, pad: PadSpec, side: Side = 'right'): Encoding {
  const extra = length - enc.ids.length;
  if (extra <= 0) return enc;
  const p = emptyEncoding();
  for (let i = 0; i < extra; i++) pushToken(p, pad.id, pad.token, 0, 0, null, true, pad.typeId ?? 0);
  for (let i = 0; i < extra; i++) p.attentionMask[i] = 0;
  const merged = side === 'right' ? concatEncodings([enc, p]) : concatEncodings([p, enc]);
  Object.assign(enc, merged);
  return enc;
}
