/**
 * WordPiece ⇄ Hugging Face tokenizer.json (the layout of bert-base-uncased's file):
 *   normalizer BertNormalizer | null, pre_tokenizer BertPreTokenizer | null,
 *   model WordPiece {unk_token, continuing_subword_prefix, max_input_chars_per_word, vocab},
 *   post_processor TemplateProcessing | BertProcessing | null, decoder WordPiece {prefix, cleanup} | null,
 *   added_tokens.
 * Anything Primer would encode differently (another normalizer or pre-tokenizer, an added token whose id
 * disagrees with the vocabulary) is rejected with an error naming the field.
 */
import type { WordPieceTokenizer, WordPieceTokenizerOptions } from './wordpiece.ts';
import { AddedVocabulary } from './added-tokens.ts';
import { BertNormalizer } from './normalizer.ts';
import { readVocabObject } from './bpe-json.ts';
import { formatError, isObject, readArray, readBool, readIndex, readObject, readString } from './json-fields.ts';
import { postProcessorFromJSON } from './postprocess.ts';

function typeOf(value: unknown): string {
  return isObject(value) ? JSON.stringify(value.type) ?? 'no type' : 'not an object';
}

function readPreTokenizer(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  const o = readObject(value, 'pre_tokenizer');
  if (o.type === 'BertPreTokenizer') return true;
  // bert-style files written by some tools wrap it in a one-element Sequence.
  if (o.type === 'Sequence') {
    const list = readArray(o.pretokenizers, 'pre_tokenizer.pretokenizers');
    if (list.length === 1 && isObject(list[0]) && list[0].type === 'BertPreTokenizer') return true;
    return formatError('pre_tokenizer.pretokenizers', 'must be [BertPreTokenizer] for WordPiece');
  }
  return formatError('pre_tokenizer.type', `must be "BertPreTokenizer" for WordPiece, got ${typeOf(o)}`);
}

function readDecoder(value: unknown, prefix: string): { prefix: string; cleanup: boolean } | null {
  if (value === null || value === undefined) return null;
  const o = readObject(value, 'decoder');
  if (o.type !== 'WordPiece') formatError('decoder.type', `must be "WordPiece", got ${typeOf(o)}`);
  return {
    prefix: o.prefix === undefined ? prefix : readString(o.prefix, 'decoder.prefix'),
    cleanup: readBool(o.cleanup, 'decoder.cleanup', true),
  };
}

function readOptionalObject(value: unknown, field: string): unknown {
  if (value === undefined || value === null) return null;
  return readObject(value, field);
}

export function wordPieceFromTokenizerJSON(json: unknown): WordPieceTokenizerOptions {
  const root = readObject(json, '(root)');
  const m = readObject(root.model, 'model');
  const type = readString(m.type ?? 'WordPiece', 'model.type');
  if (type !== 'WordPiece') formatError('model.type', `must be "WordPiece", got ${JSON.stringify(type)}`);
  const vocab = readVocabObject(m.vocab, 'model.vocab');
  const unkToken = m.unk_token === undefined ? '[UNK]' : readString(m.unk_token, 'model.unk_token');
  if (!vocab.has(unkToken)) formatError('model.unk_token', `${JSON.stringify(unkToken)} is not in model.vocab`);
  const prefix = m.continuing_subword_prefix === undefined ? '##' : readString(m.continuing_subword_prefix, 'model.continuing_subword_prefix');
  if (prefix === '') formatError('model.continuing_subword_prefix', 'must not be empty');
  const maxChars = m.max_input_chars_per_word === undefined ? 100 : readIndex(m.max_input_chars_per_word, 'model.max_input_chars_per_word');

  const added = AddedVocabulary.fromJSON(root.added_tokens);
  if (Array.isArray(root.added_tokens)) {
    const tokenOfId = new Map<number, string>();
    for (const [token, id] of vocab) tokenOfId.set(id, token);
    root.added_tokens.forEach((entry, i) => {
      const t = entry as { content: string; id: number };
      const vocabId = vocab.get(t.content);
      if (vocabId !== undefined && vocabId !== t.id) {
        formatError(`added_tokens[${i}].id`, `is ${t.id}, but model.vocab gives ${JSON.stringify(t.content)} the id ${vocabId}`);
      }
      const owner = tokenOfId.get(t.id);
      if (vocabId === undefined && owner !== undefined) formatError(`added_tokens[${i}].id`, `is ${t.id}, already the id of ${JSON.stringify(owner)} in model.vocab`);
    });
  }

  return {
    vocab,
    unkToken,
    continuingSubwordPrefix: prefix,
    maxInputCharsPerWord: maxChars,
    normalizer: root.normalizer === null || root.normalizer === undefined ? null : BertNormalizer.fromJSON(root.normalizer),
    bertPreTokenizer: readPreTokenizer(root.pre_tokenizer),
    added,
    postProcessor: postProcessorFromJSON(root.post_processor),
    decoder: readDecoder(root.decoder, prefix),
    truncationJSON: readOptionalObject(root.truncation, 'truncation'),
    paddingJSON: readOptionalObject(root.padding, 'padding'),
  };
}

export function wordPieceToTokenizerJSON(tok: WordPieceTokenizer): Record<string, unknown> {
  const entries: Array<[string, number]> = [];
  tok.model.tokens.forEach((t, id) => {
    if (t !== undefined && tok.model.vocab.get(t) === id) entries.push([t, id]);
  });
  return {
    version: '1.0',
    truncation: tok.truncationJSON,
    padding: tok.paddingJSON,
    added_tokens: tok.added.toJSON(),
    normalizer: tok.normalizer ? tok.normalizer.toJSON() : null,
    pre_tokenizer: tok.bertPreTokenizer ? { type: 'BertPreTokenizer' } : null,
    post_processor: tok.postProcessor ? tok.postProcessor.toJSON() : null,
    decoder: tok.decoder ? { type: 'WordPiece', prefix: tok.decoder.prefix, cleanup: tok.decoder.cleanup } : null,
    model: {
      type: 'WordPiece',
      unk_token: tok.model.unkToken,
      continuing_subword_prefix: tok.model.prefix,
      max_input_chars_per_word: tok.model.maxInputCharsPerWord,
      // fromEntries defines own properties, so a token named "__proto__" stays a plain key.
      vocab: Object.fromEntries(entries),
    },
  };
}
