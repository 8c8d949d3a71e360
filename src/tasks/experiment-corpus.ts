/**
 * The pre-training corpus of the label-efficiency experiment: all of Primer's built-in English text —
 * Project Gutenberg + State of the Union (the default `primer pretrain` corpus), the Brown corpus and
 * the SpamAssassin message bodies — written as plain-text files, always without the documents the task
 * evaluates on (its val and test splits, by source document and by exact text) nor those of any
 * built-in classification task (sentiment, spam, genre) — so one pre-trained model is a fair backbone
 * for every built-in experiment — plus, when asked, the task's unlabelled train texts (domain-adaptive
 * pre-training).
 *
 * Brown documents are written one file each (sentences joined into paragraphs); e-mails go into a few
 * files with one blank line between messages, so that the corpus reader's documents stay whole.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detokenize } from './brown.ts';
import { brownDocuments, builtinEvalDocuments, spamExamples } from './builtin.ts';
import type { TextExample } from './data.ts';
import { shuffled } from './labels.ts';
import { loadExperimentData, type ExperimentDataOptions } from './experiment-data.ts';

export interface ExperimentCorpusOptions {
  /** The experiment's evaluation examples (val + test): their source documents and texts never enter the corpus. */
  heldOut: readonly TextExample[];
  /** Also leave out the evaluation documents of these built-in tasks (default: sentiment, spam, genre). */
  builtinTasks?: readonly string[];
  /** Unlabelled train texts written `domainCopies` times (each copy in its own order); none when empty. */
  domainTexts?: readonly string[];
  domainCopies?: number;
  /** Which sources to include (default all); used by the data-mix ablation. */
  sources?: ReadonlyArray<'gutenberg-sotu' | 'brown' | 'spam'>;
}

export interface ExperimentCorpus {
  files: string[];
  /** Characters per source, for the report (−1: the built-in corpus, read by pretrain()). */
  chars: Record<string, number>;
  excludedDocuments: number;
}

const EMAILS_PER_FILE = 500;

/** Writes the corpus into dir and returns the file list to pass to pretrain(). */
export function writeExperimentCorpus(dir: string, o: ExperimentCorpusOptions): ExperimentCorpus {
  mkdirSync(dir, { recursive: true });
  const sources = new Set(o.sources ?? ['gutenberg-sotu', 'brown', 'spam']);
  const heldGroups = new Set(o.heldOut.map((x) => x.group ?? x.id).filter((g): g is string => g !== undefined));
  const heldTexts = new Set(o.heldOut.map((x) => x.text.trim()));
  for (const name of o.builtinTasks ?? ['sentiment', 'spam', 'genre']) {
    const held = builtinEvalDocuments(name);
    for (const g of held.documentIds) heldGroups.add(g);
    for (const t of held.texts) heldTexts.add(t.trim());
  }
  const files: string[] = [];
  const chars: Record<string, number> = {};
  let excludedDocuments = 0;
  const write = (name: string, text: string, source: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    files.push(path);
    chars[source] = (chars[source] ?? 0) + text.length;
  };

  if (sources.has('gutenberg-sotu')) {
    // By name: pretrain() expands it, and knows the built-in files' few bad bytes (no warnings).
    files.push('builtin');
    chars['gutenberg-sotu'] = -1; // read by pretrain(), not counted here
  }
  if (sources.has('brown')) {
    brownDocuments().forEach((d, i) => {
      if (heldGroups.has(d.id)) return void excludedDocuments++;
      const sentences = d.sentences.map((s) => detokenize(s.words)).filter((s) => !heldTexts.has(s.trim()));
      // Paragraphs of ~8 sentences: Brown keeps no paragraph breaks, and a document-long line would be one giant chunk.
      const paragraphs: string[] = [];
      for (let k = 0; k < sentences.length; k += 8) paragraphs.push(sentences.slice(k, k + 8).join(' '));
      write(`brown-${String(i).padStart(3, '0')}-${d.id}.txt`, `${paragraphs.join('\n\n')}\n`, 'brown');
    });
  }
  if (sources.has('spam')) {
    const bodies: string[] = [];
    for (const x of spamExamples()) {
      if (heldGroups.has(x.group ?? x.id ?? '') || heldTexts.has(x.text.trim())) { excludedDocuments++; continue; }
      if (x.text !== '(no text)') bodies.push(x.text.replace(/\n{2,}/g, '\n'));
    }
    for (let k = 0; k < bodies.length; k += EMAILS_PER_FILE) write(`spam-bodies-${k / EMAILS_PER_FILE}.txt`, `${bodies.slice(k, k + EMAILS_PER_FILE).join('\n\n')}\n`, 'spam');
  }
  const copies = o.domainCopies ?? 10;
  const domain = (o.domainTexts ?? []).filter((t) => !heldTexts.has(t.trim()));
  if (domain.length > 0) for (let copy = 0; copy < copies; copy++) write(`domain-${copy}.txt`, `${shuffled(domain, copy).join('\n')}\n`, 'domain');
  return { files, chars, excludedDocuments };
}

/**
 * `primer experiment corpus`: the same corpus for a task (built-in or --data), written for `primer pretrain`
 * (a long-budget model pre-trained outside the experiment and passed back with --model). Returns the
 * --corpus arguments: "builtin" (Gutenberg + State of the Union, read by pretrain) and the directory.
 */
export function prepareExperimentCorpus(o: ExperimentDataOptions & { out: string; domainText?: boolean }): ExperimentCorpus & { corpusArgs: string[]; task: string } {
  const task = loadExperimentData(o);
  const corpus = writeExperimentCorpus(o.out, { heldOut: [...task.val, ...task.test], domainTexts: o.domainText ? task.train.map((x) => x.text) : [] });
  const corpusArgs = corpus.files.includes('builtin') ? ['builtin', o.out] : [o.out];
  return { ...corpus, corpusArgs, task: task.name };
}
