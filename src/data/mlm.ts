/**
 * Masked-LM inputs, made fresh for every batch (RoBERTa's dynamic masking) with a seeded Rng, using
 * google-research/bert's selection rule (create_masked_lm_predictions):
 *
 *   candidates  = positions whose token is not special ([CLS], [SEP], [PAD], [MASK]; [UNK] may be masked)
 *   n_predict   = min(maxPredictions, max(1, round(|candidates| · p)))          p = 0.15 by default
 *   words       = candidates grouped into whole words (wholeWord) or single tokens, in random order
 *   take words while the running count stays ≤ n_predict
 *   each chosen position:  80% → [MASK],  10% → a random non-special token,  10% → unchanged
 *   labels[i]   = original token where chosen, -100 elsewhere (ignored by the cross-entropy)
 *
 * A fixed count per sequence (instead of an independent coin per token) keeps the masked share at
 * p in every batch, which is what makes short runs comparable.
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import type { Rng } from '../util/random.ts';
import { IGNORE_INDEX } from '../tensor/nn-ops.ts';

export interface MaskingOptions {
  maskId: number;
  vocabSize: number;
  /** 1 for ids that are never masked nor drawn as random replacements (length ≥ vocabSize or shorter = rest not special). */
  special: Uint8Array;
  /** Share of candidate tokens to predict (default 0.15). */
  probability?: number;
  /** Mask whole words: a position whose `continuation` flag is 1 belongs to the word before it. */
  wholeWord?: boolean;
  /** 1 for ids that continue the previous token's word (WordPiece "##x", BPE tokens without "Ġ"). */
  continuation?: Uint8Array;
  /** At most this many predictions per sequence (google's max_predictions_per_seq; default unlimited). */
  maxPredictions?: number;
  /** Of the chosen positions: share replaced by [MASK] (0.8) and by a random token (0.1); the rest stay. */
  maskFraction?: number;
  randomFraction?: number;
}

export interface MaskedBatch {
  inputIds: Int32Array;
  labels: Int32Array;
  /** Positions chosen for prediction. */
  predictions: number;
}

/** Special-token ids of a tokenizer by role (all but [UNK]), as a per-id flag array. */
export function specialTokenFlags(tokenizer: Tokenizer): Uint8Array {
  const flags = new Uint8Array(tokenizer.vocabSize);
  const roles = tokenizer.specialTokens;
  for (const role of ['pad', 'cls', 'sep', 'mask', 'bos', 'eos'] as const) {
    const token = roles[role];
    const id = token === undefined ? undefined : tokenizer.tokenToId(token);
    if (id !== undefined && id < flags.length) flags[id] = 1;
  }
  return flags;
}

/** Which ids continue a word: WordPiece "##" pieces, or byte-level BPE tokens not starting with the space marker Ġ. */
export function wordContinuationFlags(tokenizer: Tokenizer, special = specialTokenFlags(tokenizer)): Uint8Array {
  const flags = new Uint8Array(tokenizer.vocabSize);
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    if (special[id]) continue;
    const t = tokenizer.idToToken(id) ?? '';
    flags[id] = tokenizer.type === 'wordpiece' ? (t.startsWith('##') ? 1 : 0) : (t.startsWith('Ġ') || t.startsWith('Ċ') ? 0 : 1);
  }
  return flags;
}

/** Masking options from a tokenizer that has a mask token; throws naming what is missing. */
export function maskingOptionsFor(tokenizer: Tokenizer, o: Partial<MaskingOptions> = {}): MaskingOptions {
  const maskToken = tokenizer.specialTokens.mask ?? '[MASK]';
  const maskId = tokenizer.tokenToId(maskToken);
  if (maskId === undefined) throw new RangeError(`masked LM: the tokenizer has no mask token (${maskToken}); train a WordPiece tokenizer or add one`);
  const special = o.special ?? specialTokenFlags(tokenizer);
  return {
    maskId, vocabSize: tokenizer.vocabSize, special,
    continuation: o.wholeWord ? (o.continuation ?? wordContinuationFlags(tokenizer, special)) : o.continuation,
    ...o,
  };
}

function checkOptions(o: MaskingOptions): void {
  const p = o.probability ?? 0.15;
  if (!(p > 0 && p <= 1)) throw new RangeError(`masked LM: probability must be in (0, 1], got ${p}`);
  const m = o.maskFraction ?? 0.8;
  const r = o.randomFraction ?? 0.1;
  if (!(m >= 0 && r >= 0 && m + r <= 1)) throw new RangeError(`masked LM: maskFraction ${m} and randomFraction ${r} must be ≥ 0 with a sum ≤ 1`);
  if (!Number.isInteger(o.maskId) || o.maskId < 0 || o.maskId >= o.vocabSize) throw new RangeError(`masked LM: maskId ${o.maskId} is outside the vocabulary of ${o.vocabSize}`);
  if (o.wholeWord && !o.continuation) throw new RangeError('masked LM: wholeWord needs the continuation flags of the vocabulary');
}

/** Ids that may replace a masked token (10% case): every non-special id. */
function replacementIds(o: MaskingOptions): Int32Array {
  const out: number[] = [];
  for (let id = 0; id < o.vocabSize; id++) if (!o.special[id]) out.push(id);
  if (out.length === 0) throw new RangeError('masked LM: the vocabulary has no non-special token');
  return Int32Array.from(out);
}

/**
 * Masks `rows` sequences of `length` tokens (row-major `ids`, not modified). `lengths[r]`, when given,
 * limits row r to its first lengths[r] positions (the rest is padding and never chosen).
 */
export function maskTokens(ids: Int32Array, rows: number, length: number, rng: Rng, o: MaskingOptions, lengths?: ArrayLike<number>): MaskedBatch {
  if (ids.length !== rows * length) throw new RangeError(`maskTokens: ${ids.length} ids for ${rows} rows × ${length}`);
  checkOptions(o);
  const p = o.probability ?? 0.15;
  const maskShare = o.maskFraction ?? 0.8;
  const randomShare = o.randomFraction ?? 0.1;
  const maxPredictions = o.maxPredictions ?? Infinity;
  const replacements = replacementIds(o);
  const inputIds = ids.slice();
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  let predictions = 0;
  const wordStart: number[] = [];
  for (let r = 0; r < rows; r++) {
    const base = r * length;
    const n = lengths ? Math.min(length, lengths[r]!) : length;
    // Words as [start, end) runs of candidate positions.
    wordStart.length = 0;
    const wordEnd: number[] = [];
    let candidates = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[base + i]!;
      if (id < 0 || id >= o.vocabSize) throw new RangeError(`maskTokens: id ${id} at row ${r}, position ${i} is outside the vocabulary of ${o.vocabSize}`);
      if (o.special[id]) continue;
      candidates++;
      const continues = o.wholeWord && o.continuation![id] === 1 && wordEnd.length > 0 && wordEnd[wordEnd.length - 1] === i;
      if (continues) wordEnd[wordEnd.length - 1] = i + 1;
      else {
        wordStart.push(i);
        wordEnd.push(i + 1);
      }
    }
    if (candidates === 0) continue;
    const target = Math.min(maxPredictions, Math.max(1, Math.round(candidates * p)));
    // Fisher–Yates over word indices.
    const order = Int32Array.from(wordStart.keys());
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    let chosen = 0;
    for (const w of order) {
      if (chosen >= target) break;
      const size = wordEnd[w]! - wordStart[w]!;
      if (chosen + size > target) continue;
      chosen += size;
      for (let i = wordStart[w]!; i < wordEnd[w]!; i++) {
        const at = base + i;
        labels[at] = ids[at]!;
        const u = rng.next();
        if (u < maskShare) inputIds[at] = o.maskId;
        else if (u < maskShare + randomShare) inputIds[at] = replacements[rng.int(replacements.length)]!;
      }
    }
    predictions += chosen;
  }
  return { inputIds, labels, predictions };
}
