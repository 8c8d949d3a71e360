/**
 * Built-in instruction sets for SFT demos, derived from the built-in labelled tasks so nothing is
 * downloaded: `builtin:sentiment` turns each review into
 *   user: "Is this review positive or negative? <review>"   assistant: "positive" / "negative"
 * Reviews are cut to a few hundred characters so examples fit small contexts.
 */
import { sentimentExamples } from '../tasks/builtin.ts';
import type { ChatMessage } from './chat-template.ts';
import { SftDataError, readSftJsonl } from './sft.ts';

export const BUILTIN_INSTRUCTION_SETS = ['sentiment'] as const;

function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return `${cut.slice(0, Math.max(cut.lastIndexOf(' '), max / 2))}…`;
}

export function builtinInstructionSet(name: string): ChatMessage[][] {
  if (name !== 'sentiment') throw new SftDataError(`unknown built-in instruction set "${name}"; available: ${BUILTIN_INSTRUCTION_SETS.join(', ')}`);
  return sentimentExamples().map((e) => [
    { role: 'user', content: `Is this review positive or negative? ${shorten(e.text, 300)}` },
    { role: 'assistant', content: e.label! },
  ]);
}

/** A JSONL path, or `builtin:<name>` for a built-in instruction set. */
export function loadSftData(spec: string): ChatMessage[][] {
  return spec.startsWith('builtin:') ? builtinInstructionSet(spec.slice('builtin:'.length)) : readSftJsonl(spec);
}
