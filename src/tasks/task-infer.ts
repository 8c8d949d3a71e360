/**
 * Inference with fine-tuned task models: class probabilities for texts, a tag per word, and the
 * answer span of a question in a context of any length (split into overlapping windows as in
 * training, the best span over all windows).
 */
import type { Tokenizer } from '../tokenizers/types.ts';
import { noGrad, withScope } from '../tensor/tensor.ts';
import { softmaxRow, argmax } from '../util/math.ts';
import { contextLength, type QuestionAnswering, type SequenceClassifier, type TokenClassifier } from '../models/heads.ts';
import { collate, padTokenId } from './encode.ts';
import { predictTags, qaWindowLogits } from './finetune.ts';
import { defaultStride } from './task-eval.ts';
import { bestSpans, type Span } from './qa.ts';
import type { QAExample } from './data.ts';

export interface Classification {
  text: string;
  label: string;
  /** Probability of `label`. */
  score: number;
  /** Probability of every label. */
  scores: Record<string, number>;
}

/** Each text's most probable label and the softmax over all labels (texts cut to maxLength tokens, default 128). */
export function classifyTexts(model: SequenceClassifier, tokenizer: Tokenizer, texts: readonly string[], o: { maxLength?: number } = {}): Classification[] {
  const maxLength = Math.min(o.maxLength ?? 128, contextLength(model.backbone));
  refuseEmptyTexts('classify', texts);
  model.eval();
  return texts.map((text, i) => {
    const enc = tokenizer.encode(text, null, { maxLength });
    if (enc.ids.length === 0) throw new RangeError(`classify: text ${i + 1} (${JSON.stringify(text)}) encodes to no tokens`);
    const batch = collate([enc], padTokenId(tokenizer));
    const probs = noGrad(() => withScope(() => softmaxRow(model.forward(batch).logits.data)));
    const best = argmax(probs);
    return { text, label: model.labels.label(best), score: probs[best]!, scores: Object.fromEntries(model.labels.labels.map((l, i) => [l, probs[i]!])) };
  });
}

/**
 * Refuses empty and whitespace-only texts, numbered from 1 as given, before any is processed: a
 * byte-level tokenizer encodes blanks to real tokens, so a label for "   " would look like an answer.
 */
export function refuseEmptyTexts(command: string, texts: readonly string[]): void {
  const i = texts.findIndex((t) => !t.trim());
  if (i >= 0) throw new RangeError(`${command}: text ${i + 1} is empty${texts[i] ? ' (only whitespace)' : ''}`);
}

/**
 * Words as the tagger sees them: letter/digit runs (with inner apostrophes) and single punctuation
 * marks. Chinese has no spaces, so each Han character is a word, as BERT's basic tokenizer and
 * character-per-line Chinese CoNLL data treat it; a whole clause tagged once would hide every entity.
 * Combining marks belong to their letter (Devanagari vowel signs, decomposed accents), not punctuation.
 */
export function splitWords(text: string): string[] {
  return text.match(WORD) ?? [];
}

const WORD = /\p{Script=Han}|(?:(?!\p{Script=Han})[\p{L}\p{N}\p{M}])+(?:['’](?:(?!\p{Script=Han})[\p{L}\p{M}])+)*|[^\s\p{L}\p{N}\p{M}]/gu;

/** The tag of every word of `text` (null for a word cut off by the model's context). */
export function tagText(model: TokenClassifier, tokenizer: Tokenizer, text: string): Array<{ word: string; tag: string | null }> {
  const words = splitWords(text);
  if (words.length === 0) throw new RangeError('tag: the text has no words');
  const [tags] = predictTags(model, tokenizer, [words]);
  return words.map((word, i) => ({ word, tag: tags![i]! < 0 ? null : model.labels.label(tags![i]!) }));
}

/** tagText for each text, all checked for emptiness first so that none is tagged before an error. */
export function tagTexts(model: TokenClassifier, tokenizer: Tokenizer, texts: readonly string[]): Array<Array<{ word: string; tag: string | null }>> {
  refuseEmptyTexts('tag', texts);
  return texts.map((text) => tagText(model, tokenizer, text));
}

/**
 * The best answer span for `question` in `context`, scored as Hugging Face's question-answering
 * pipeline does: p_start·p_end in [0, 1]. Windows hold maxLength tokens (default 384, at most the
 * model's context) and overlap by `stride` tokens (default maxLength / 4), as in evaluation.
 */
export function answerQuestion(model: QuestionAnswering, tokenizer: Tokenizer, question: string, context: string, o: { maxLength?: number; stride?: number } = {}): Span {
  if (!context.trim()) throw new RangeError('answer: the context is empty');
  if (!question.trim()) throw new RangeError('answer: the question is empty');
  const maxLength = Math.min(o.maxLength ?? 384, contextLength(model.backbone));
  const stride = o.stride ?? defaultStride(maxLength);
  // Checked here so the message speaks of this question and these settings, not of a training
  // example id that the caller never gave.
  // The question and specials take the same tokens in every window: a one-character context stands in
  // for the real one (tokenized again, window by window, just below).
  const fixed = tokenizer.encode(question, 'x').sequenceIds.filter((s) => s !== 1).length;
  if (maxLength - fixed <= stride) {
    throw new RangeError(`answer: the question and special tokens take ${fixed} of the ${maxLength} tokens per window, leaving ${Math.max(0, maxLength - fixed)} for the context, `
      + `which must be more than the stride of ${stride} tokens: shorten the question, use longer windows or a smaller stride`);
  }
  const examples: QAExample[] = [{ id: 'q', question, context, answers: [] }];
  const { features, starts, ends } = qaWindowLogits(model, tokenizer, examples, { maxLength, stride });
  const cls = tokenizer.specialTokens.cls;
  const [span] = bestSpans(examples, features, starts, ends, { probability: { clsId: cls !== undefined ? tokenizer.tokenToId(cls) ?? null : null } });
  if (!span) throw new RangeError('answer: the context has no tokens');
  return span;
}
