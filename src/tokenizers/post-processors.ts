/**
 * Post-processors: add a model's special tokens around one or two encoded sequences, as HF's
 * TemplateProcessing ([CLS] $A [SEP] $B:1 [SEP]:1), BertProcessing, RobertaProcessing, ByteLevel (offset
 * trimming only) and Sequence do; read and written as tokenizer.json `post_processor`.
 */
import type { Encoding } from './types.ts';
import { concatEncodings, emptyEncoding, pushToken } from './encoding-ops.ts';
import { formatError, isObject, readArray, readBool, readIndex, readObject, readString } from './json-fields.ts';

/** Adds the model's special tokens around one or two encoded sequences. */
export abstract class PostProcessor {
  /** How many tokens process() adds (truncation leaves room for them). */
  abstract addedTokens(isPair: boolean): number;
  /** The final encoding; `addSpecialTokens` false means: only concatenate (type ids 0 / 1). */
  abstract process(a: Encoding, b: Encoding | null, addSpecialTokens: boolean): Encoding;
  /** tokenizer.json `post_processor`. */
  abstract toJSON(): Record<string, unknown>;
}

/** Concatenation without specials: what every post-processor does with addSpecialTokens false. */
export function defaultProcess(a: Encoding, b: Encoding | null): Encoding {
  if (b === null) return a;
  return concatEncodings([withTypeId(a, 0), withTypeId(b, 1)]);
}

function withTypeId(enc: Encoding, typeId: number): Encoding {
  return { ...enc, typeIds: enc.typeIds.map(() => typeId) };
}

/** One element of a template: a special token or one of the input sequences, with its type id. */
export type TemplatePiece = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } };

export interface TemplateSpecial {
  id: string;
  ids: number[];
  tokens: string[];
}

export class TemplateProcessing extends PostProcessor {
  constructor(
    readonly single: TemplatePiece[],
    readonly pair: TemplatePiece[],
    readonly specialTokens: Record<string, TemplateSpecial>,
  ) {
    super();
    for (const piece of [...single, ...pair]) {
      if ('SpecialToken' in piece && !specialTokens[piece.SpecialToken.id]) {
        throw new RangeError(`TemplateProcessing: special token ${JSON.stringify(piece.SpecialToken.id)} has no id`);
      }
    }
  }

  /**
   * From HF's string form: `TemplateProcessing.fromStrings('[CLS] $A [SEP]', '[CLS] $A [SEP] $B:1 [SEP]:1',
   * [['[CLS]', 101], ['[SEP]', 102]])`. "$A"/"$B" are the sequences, ":n" sets the type id.
   */
  static fromStrings(single: string, pair: string, specials: Array<[string, number]>): TemplateProcessing {
    const parse = (template: string): TemplatePiece[] =>
      template.trim().split(/\s+/).map((item) => {
        const m = /^(.*?)(?::(\d+))?$/.exec(item)!;
        const typeId = m[2] === undefined ? 0 : Number(m[2]);
        if (m[1] === '$A' || m[1] === '$' || m[1] === '$0') return { Sequence: { id: 'A', type_id: typeId } };
        if (m[1] === '$B' || m[1] === '$1') return { Sequence: { id: 'B', type_id: typeId } };
        return { SpecialToken: { id: m[1], type_id: typeId } };
      });
    const table: Record<string, TemplateSpecial> = {};
    for (const [token, id] of specials) table[token] = { id: token, ids: [id], tokens: [token] };
    return new TemplateProcessing(parse(single), parse(pair), table);
  }

  /** BERT's template: [CLS] $A [SEP] and [CLS] $A [SEP] $B:1 [SEP]:1. */
  static bert(cls: [string, number], sep: [string, number]): TemplateProcessing {
    return TemplateProcessing.fromStrings(`${cls[0]} $A ${sep[0]}`, `${cls[0]} $A ${sep[0]} $B:1 ${sep[0]}:1`, [cls, sep]);
  }

  addedTokens(isPair: boolean): number {
    let n = 0;
    for (const piece of isPair ? this.pair : this.single) {
      if ('SpecialToken' in piece) n += this.specialTokens[piece.SpecialToken.id].ids.length;
    }
    return n;
  }

  process(a: Encoding, b: Encoding | null, addSpecialTokens: boolean): Encoding {
    if (!addSpecialTokens) return defaultProcess(a, b);
    const parts: Encoding[] = [];
    for (const piece of b === null ? this.single : this.pair) {
      if ('Sequence' in piece) {
        const seq = piece.Sequence.id === 'A' ? a : b;
        if (seq) parts.push(withTypeId(seq, piece.Sequence.type_id));
      } else {
        const special = this.specialTokens[piece.SpecialToken.id];
        const enc = emptyEncoding();
        special.ids.forEach((id, i) => pushToken(enc, id, special.tokens[i], 0, 0, null, true, piece.SpecialToken.type_id));
        parts.push(enc);
      }
    }
    return concatEncodings(parts);
  }

  toJSON(): Record<string, unknown> {
    return { type: 'TemplateProcessing', single: this.single, pair: this.pair, special_tokens: this.specialTokens };
  }
}

/** BERT's post-processor as its own tokenizer.json type: [CLS] A [SEP] (B [SEP] with type id 1). */
export class BertProcessing extends PostProcessor {
  constructor(readonly cls: [string, number], readonly sep: [string, number]) {
    super();
  }
  addedTokens(isPair: boolean): number {
    return isPair ? 3 : 2;
  }
  process(a: Encoding, b: Encoding | null, addSpecialTokens: boolean): Encoding {
    return addSpecialTokens ? TemplateProcessing.bert(this.cls, this.sep).process(a, b, true) : defaultProcess(a, b);
  }
  toJSON(): Record<string, unknown> {
    return { type: 'BertProcessing', sep: this.sep, cls: this.cls };
  }
}

/** RoBERTa's: <s> A </s> and <s> A </s> </s> B </s>, B's part with type id 1 (as HF's Rust code does). */
export class RobertaProcessing extends PostProcessor {
  constructor(readonly cls: [string, number], readonly sep: [string, number], readonly trimOffsets = true, readonly addPrefixSpace = true) {
    super();
  }
  addedTokens(isPair: boolean): number {
    return isPair ? 4 : 2;
  }
  process(a: Encoding, b: Encoding | null, addSpecialTokens: boolean): Encoding {
    if (this.trimOffsets) {
      a = trimByteLevelOffsets(a);
      b = b && trimByteLevelOffsets(b);
    }
    if (!addSpecialTokens) return defaultProcess(a, b);
    const [c, s] = [this.cls[0], this.sep[0]];
    return TemplateProcessing.fromStrings(`${c} $A ${s}`, `${c} $A ${s} ${s}:1 $B:1 ${s}:1`, [this.cls, this.sep]).process(a, b, true);
  }
  toJSON(): Record<string, unknown> {
    return { type: 'RobertaProcessing', sep: this.sep, cls: this.cls, trim_offsets: this.trimOffsets, add_prefix_space: this.addPrefixSpace };
  }
}

/** Byte-level BPE's post-processor: no specials; with trimOffsets, offsets skip leading/trailing spaces ('Ġ'). */
export class ByteLevelProcessing extends PostProcessor {
  constructor(readonly trimOffsets = false, readonly addPrefixSpace = true, readonly useRegex = true) {
    super();
  }
  addedTokens(): number {
    return 0;
  }
  process(a: Encoding, b: Encoding | null): Encoding {
    return this.trimOffsets ? defaultProcess(trimByteLevelOffsets(a), b && trimByteLevelOffsets(b)) : defaultProcess(a, b);
  }
  toJSON(): Record<string, unknown> {
    return { type: 'ByteLevel', add_prefix_space: this.addPrefixSpace, trim_offsets: this.trimOffsets, use_regex: this.useRegex };
  }
}

/** HF trims offsets by the number of leading/trailing 'Ġ' (encoded spaces) in each byte-level token. */
function trimByteLevelOffsets(enc: Encoding): Encoding {
  const offsets = enc.offsets.map(([s, e], i): [number, number] => {
    if (enc.sequenceIds[i] === null) return [s, e];
    const t = enc.tokens[i];
    let lead = 0;
    while (lead < t.length && t.charCodeAt(lead) === 0x120) lead++;
    let trail = 0;
    while (trail < t.length - lead && t.charCodeAt(t.length - 1 - trail) === 0x120) trail++;
    const start = Math.min(s + lead, e);
    return [start, Math.max(start, e - trail)];
  });
  return { ...enc, offsets };
}

/** Several post-processors in a row (e.g. ByteLevel offset trimming then a template). */
export class SequenceProcessing extends PostProcessor {
  constructor(readonly processors: PostProcessor[]) {
    super();
  }
  addedTokens(isPair: boolean): number {
    return this.processors.reduce((n, p) => n + p.addedTokens(isPair), 0);
  }
  process(a: Encoding, b: Encoding | null, addSpecialTokens: boolean): Encoding {
    // Offset-only steps keep the sequences apart; the first step that adds tokens produces the result.
    let result: Encoding | null = null;
    for (const p of this.processors) {
      if (result !== null) break;
      if (p instanceof ByteLevelProcessing) {
        if (p.trimOffsets) {
          a = trimByteLevelOffsets(a);
          b = b && trimByteLevelOffsets(b);
        }
      } else {
        result = p.process(a, b, addSpecialTokens);
      }
    }
    return result ?? defaultProcess(a, b);
  }
  toJSON(): Record<string, unknown> {
    return { type: 'Sequence', processors: this.processors.map((p) => p.toJSON()) };
  }
}

function readTokenAndId(value: unknown, field: string): [string, number] {
  const arr = readArray(value, field);
  if (arr.length !== 2) formatError(field, 'must be [token, id]');
  return [readString(arr[0], `${field}[0]`), readIndex(arr[1], `${field}[1]`)];
}

function readTemplate(value: unknown, field: string): TemplatePiece[] {
  return readArray(value, field).map((piece, i) => {
    const f = `${field}[${i}]`;
    const o = readObject(piece, f);
    if (isObject(o.SpecialToken)) {
      return { SpecialToken: { id: readString(o.SpecialToken.id, `${f}.SpecialToken.id`), type_id: readIndex(o.SpecialToken.type_id ?? 0, `${f}.SpecialToken.type_id`) } };
    }
    if (isObject(o.Sequence)) {
      const id = readString(o.Sequence.id, `${f}.Sequence.id`);
      if (id !== 'A' && id !== 'B') formatError(`${f}.Sequence.id`, 'must be "A" or "B"');
      return { Sequence: { id, type_id: readIndex(o.Sequence.type_id ?? 0, `${f}.Sequence.type_id`) } };
    }
    return formatError(f, 'must be {"SpecialToken": …} or {"Sequence": …}');
  });
}

/** Reads tokenizer.json `post_processor` (null/absent → null). */
export function postProcessorFromJSON(json: unknown, field = 'post_processor'): PostProcessor | null {
  if (json === undefined || json === null) return null;
  const o = readObject(json, field);
  const type = readString(o.type, `${field}.type`);
  switch (type) {
    case 'TemplateProcessing': {
      const specials: Record<string, TemplateSpecial> = {};
      for (const [key, value] of Object.entries(readObject(o.special_tokens ?? {}, `${field}.special_tokens`))) {
        const f = `${field}.special_tokens[${JSON.stringify(key)}]`;
        const s = readObject(value, f);
        const ids = readArray(s.ids, `${f}.ids`).map((id, i) => readIndex(id, `${f}.ids[${i}]`));
        const tokens = readArray(s.tokens, `${f}.tokens`).map((t, i) => readString(t, `${f}.tokens[${i}]`));
        if (ids.length !== tokens.length) formatError(`${f}.tokens`, 'must have as many entries as ids');
        specials[key] = { id: readString(s.id ?? key, `${f}.id`), ids, tokens };
      }
      const single = readTemplate(o.single, `${field}.single`);
      const pair = readTemplate(o.pair, `${field}.pair`);
      for (const [i, piece] of [...single, ...pair].entries()) {
        if ('SpecialToken' in piece && !specials[piece.SpecialToken.id]) {
          formatError(`${field}.special_tokens`, `has no entry for ${JSON.stringify(piece.SpecialToken.id)} used by the template (piece ${i})`);
        }
      }
      return new TemplateProcessing(single, pair, specials);
    }
    case 'BertProcessing':
      return new BertProcessing(readTokenAndId(o.cls, `${field}.cls`), readTokenAndId(o.sep, `${field}.sep`));
    case 'RobertaProcessing':
      return new RobertaProcessing(
        readTokenAndId(o.cls, `${field}.cls`), readTokenAndId(o.sep, `${field}.sep`),
        readBool(o.trim_offsets, `${field}.trim_offsets`, true), readBool(o.add_prefix_space, `${field}.add_prefix_space`, true),
      );
    case 'ByteLevel':
      return new ByteLevelProcessing(
        readBool(o.trim_offsets, `${field}.trim_offsets`, true), readBool(o.add_prefix_space, `${field}.add_prefix_space`, true),
        readBool(o.use_regex, `${field}.use_regex`, true),
      );
    case 'Sequence':
      return new SequenceProcessing(
        readArray(o.processors, `${field}.processors`).map((p, i) => postProcessorFromJSON(p, `${field}.processors[${i}]`)!),
      );
    default:
      return formatError(`${field}.type`, `${JSON.stringify(type)} is not supported (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence)`);
  }
}
