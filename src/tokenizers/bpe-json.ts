/**
 * Byte-level BPE ⇄ files: Hugging Face tokenizer.json (merges as "a b" strings, as older `tokenizers`
 * wrote them, or as ["a", "b"] pairs, as newer ones do) and the legacy vocab.json + merges.txt.
 * The pre-tokenizer is ByteLevel (GPT-2's regex) or Sequence[Split(regex), ByteLevel(use_regex: false)]
 * with any regex (Llama 3, Qwen2; see split-regex.ts); normalizers as text-normalizers.ts (Qwen2: NFC).
 * Anything Primer cannot reproduce exactly (byte fallback, dropout…) is rejected with an error naming
 * the field, rather than silently encoding differently. SentencePiece-style BPE is sp-bpe.ts.
 */
import type { BpeTokenizer } from './bpe.ts';
import { AddedVocabulary } from './added-tokens.ts';
import { BYTE_TO_CHAR, GPT2_SPLIT_PATTERN } from './bytelevel.ts';
import { BpeModel } from './bpe-model.ts';
import { formatError, readArray, readBool, readIndex, readObject, readOptionalString, readString } from './json-fields.ts';
import { postProcessorFromJSON, type PostProcessor } from './postprocess.ts';
import { SplitPreTokenizer } from './split-regex.ts';
import { NormalizerChain } from './text-normalizers.ts';

export interface BpeParts {
  model: BpeModel;
  added: AddedVocabulary;
  postProcessor: PostProcessor | null;
  addPrefixSpace: boolean;
  preTokenizerTrimOffsets: boolean;
  /** The Split pre-tokenizer, or null for GPT-2's splitting (done by the fast scanner in bytelevel.ts). */
  split: SplitPreTokenizer | null;
  normalizer: NormalizerChain;
}

/** token → id from a JSON object, checking ids are distinct non-negative integers. */
export function readVocabObject(value: unknown, field: string, file?: string): Map<string, number> {
  const vocab = new Map<string, number>();
  const owner = new Map<number, string>();
  const entries = Object.entries(readObject(value, field, file));
  // Ids index dense tables later: a sparse id like 2³¹ would allocate gigabytes, so bound them.
  const maxId = 2 * entries.length + 1024;
  for (const [token, id] of entries) {
    const f = `${field}[${JSON.stringify(token)}]`;
    readIndex(id, f, file);
    if ((id as number) > maxId) formatError(f, `id ${id} is far beyond the vocabulary size (${entries.length} tokens)`, file);
    const clash = owner.get(id as number);
    if (clash !== undefined) formatError(f, `reuses id ${id}, already given to ${JSON.stringify(clash)}`, file);
    owner.set(id as number, token);
    vocab.set(token, id as number);
  }
  return vocab;
}

/** A merge entry: "a b" or ["a", "b"]. */
function readMerge(value: unknown, field: string, file?: string): [string, string] {
  if (typeof value === 'string') {
    const parts = value.split(' ');
    if (parts.length === 2 && parts[0] !== '' && parts[1] !== '') return [parts[0], parts[1]];
  } else if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string' && value[0] && value[1]) {
    return [value[0], value[1]];
  }
  return formatError(field, `must be "a b" or ["a","b"], got ${JSON.stringify(value)?.slice(0, 60)}`, file);
}

/** Checks every merge against the vocabulary, naming the first bad entry. */
function checkMerges(vocab: Map<string, number>, merges: Array<[string, string]>, field: (i: number) => string, vocabField: string, file?: string): void {
  merges.forEach(([a, b], i) => {
    for (const part of [a, b]) if (!vocab.has(part)) formatError(field(i), `uses ${JSON.stringify(part)}, which is not in ${vocabField}`, file);
    if (!vocab.has(a + b)) formatError(field(i), `makes ${JSON.stringify(a + b)}, which is not in ${vocabField}`, file);
  });
}

export function readVocabJson(text: string, file = 'vocab.json'): Map<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return formatError('(file)', `is not valid JSON: ${(e as Error).message}`, file);
  }
  return readVocabObject(json, '(root)', file);
}

/** merges.txt: an optional "#version" line, then one "a b" per line (checked against vocab when given). */
export function readMergesTxt(text: string, file = 'merges.txt', vocab?: Map<string, number>, vocabFile = 'vocab.json'): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  const lines: number[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    merges.push(readMerge(line, `line ${i + 1}`, file));
    lines.push(i + 1);
  });
  if (vocab) checkMerges(vocab, merges, (i) => `line ${lines[i]}`, vocabFile, file);
  return merges;
}

function checkByteLevel(o: Record<string, unknown>, field: string, needRegex: boolean): { addPrefixSpace: boolean; trimOffsets: boolean } {
  const useRegex = readBool(o.use_regex, `${field}.use_regex`, true);
  if (useRegex !== needRegex) formatError(`${field}.use_regex`, needRegex ? 'must be true (GPT-2 splitting)' : 'must be false after a Split');
  return { addPrefixSpace: readBool(o.add_prefix_space, `${field}.add_prefix_space`, true), trimOffsets: readBool(o.trim_offsets, `${field}.trim_offsets`, true) };
}

interface PreTokenizerParts { addPrefixSpace: boolean; trimOffsets: boolean; split: SplitPreTokenizer | null }

/** ByteLevel, or Sequence[Split(regex), ByteLevel(use_regex: false)]. */
function readPreTokenizer(value: unknown): PreTokenizerParts {
  const field = 'pre_tokenizer';
  if (value === null || value === undefined) formatError(field, 'must be ByteLevel: Primer\'s BPE is byte-level');
  const o = readObject(value, field);
  const type = readString(o.type, `${field}.type`);
  if (type === 'ByteLevel') return { ...checkByteLevel(o, field, true), split: null };
  if (type !== 'Sequence') formatError(`${field}.type`, `${JSON.stringify(type)} is not supported for BPE (ByteLevel, or Sequence of Split + ByteLevel)`);
  const list = readArray(o.pretokenizers, `${field}.pretokenizers`);
  if (list.length === 1) {
    const only = readObject(list[0], `${field}.pretokenizers[0]`);
    if (only.type === 'ByteLevel') return { ...checkByteLevel(only, `${field}.pretokenizers[0]`, true), split: null };
  }
  if (list.length !== 2) formatError(`${field}.pretokenizers`, 'must be [Split, ByteLevel] or [ByteLevel]');
  const split = SplitPreTokenizer.fromJSON(list[0], `${field}.pretokenizers[0]`);
  const byteLevel = readObject(list[1], `${field}.pretokenizers[1]`);
  if (byteLevel.type !== 'ByteLevel') formatError(`${field}.pretokenizers[1].type`, 'must be "ByteLevel"');
  const parts = checkByteLevel(byteLevel, `${field}.pretokenizers[1]`, false);
  // HF would prepend the space to every piece the Split made, not once per text: refuse rather than differ.
  if (parts.addPrefixSpace) formatError(`${field}.pretokenizers[1].add_prefix_space`, 'must be false after a Split');
  // GPT-2's own pattern keeps the fast hand-written scanner (same pieces).
  const gpt2 = 'Regex' in split.pattern && split.pattern.Regex === GPT2_SPLIT_PATTERN && split.behavior === 'Isolated' && !split.invert;
  return { ...parts, split: gpt2 ? null : split };
}

export function bpeFromTokenizerJSON(json: unknown): BpeParts {
  const root = readObject(json, '(root)');
  const m = readObject(root.model, 'model');
  const type = readString(m.type ?? 'BPE', 'model.type');
  if (type !== 'BPE') formatError('model.type', `must be "BPE", got ${JSON.stringify(type)}`);
  if (m.dropout !== undefined && m.dropout !== null && m.dropout !== 0) formatError('model.dropout', 'is not supported (must be null)');
  for (const f of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    if (readOptionalString(m[f], `model.${f}`)) formatError(`model.${f}`, 'is not supported for byte-level BPE (must be null or "")');
  }
  if (readBool(m.byte_fallback, 'model.byte_fallback', false)) formatError('model.byte_fallback', 'is not supported (byte-level BPE needs no fallback)');
  const vocab = readVocabObject(m.vocab, 'model.vocab');
  const merges = readArray(m.merges, 'model.merges').map((v, i) => readMerge(v, `model.merges[${i}]`));
  checkMerges(vocab, merges, (i) => `model.merges[${i}]`, 'model.vocab');
  const unkToken = readOptionalString(m.unk_token, 'model.unk_token') ?? null;
  if (unkToken !== null && !vocab.has(unkToken)) formatError('model.unk_token', `${JSON.stringify(unkToken)} is not in model.vocab`);
  const normalizer = NormalizerChain.fromJSON(root.normalizer);
  if (root.decoder !== null && root.decoder !== undefined) {
    const d = readObject(root.decoder, 'decoder');
    if (d.type !== 'ByteLevel') formatError('decoder.type', `must be "ByteLevel" for byte-level BPE, got ${JSON.stringify(d.type)}`);
  }
  const pre = readPreTokenizer(root.pre_tokenizer);
  const model = new BpeModel(vocab, merges, { byteChars: BYTE_TO_CHAR, unkToken, ignoreMerges: readBool(m.ignore_merges, 'model.ignore_merges', false) });
  return {
    model, added: AddedVocabulary.fromJSON(root.added_tokens), postProcessor: postProcessorFromJSON(root.post_processor),
    addPrefixSpace: pre.addPrefixSpace, preTokenizerTrimOffsets: pre.trimOffsets, split: pre.split, normalizer,
  };
}

/** Hugging Face tokenizer.json, merges written as pairs (what current `tokenizers` writes). */
export function bpeToTokenizerJSON(tok: BpeTokenizer): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  tok.model.tokens.forEach((t, id) => t !== undefined && (vocab[t] = id));
  const unk = tok.model.unkId >= 0 ? tok.model.tokens[tok.model.unkId] : null;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tok.added.toJSON(),
    normalizer: tok.normalizer.toJSON(),
    pre_tokenizer: tok.split === null
      ? { type: 'ByteLevel', add_prefix_space: tok.addPrefixSpace, trim_offsets: tok.preTokenizerTrimOffsets, use_regex: true }
      : { type: 'Sequence', pretokenizers: [tok.split.toJSON(), { type: 'ByteLevel', add_prefix_space: false, trim_offsets: tok.preTokenizerTrimOffsets, use_regex: false }] },
    post_processor: tok.postProcessor?.toJSON() ?? null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: unk, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: tok.model.ignoreMerges, vocab,
      merges: tok.model.merges.map(([a, b]) => [a, b]),
    },
  };
}
