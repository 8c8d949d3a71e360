/**
 * The optional built-in Chinese corpus (`--corpus builtin:zh`): classical poetry from the npm package
 * chinese-poetry@2.0.1 (Tang poems, Song ci, the Book of Songs and the primers of mengxue), converted
 * from Traditional to Simplified Chinese with opencc-js@1.4.2. Both are optionalDependencies, so an
 * install with --omit=optional stays small; asking for the corpus without them fails with a clear message.
 *
 * One poem is one document (a JSONL record) and its lines are the sentences (one per line; 。！？ split
 * them further). The conversion takes a while, so the JSONL is written once into a cache directory
 * ($PRIMER_CACHE or ~/.cache/primer) and reused.
 */
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const POETRY = 'chinese-poetry';
const OPENCC = 'opencc-js';

/** Source files below chinese-poetry/dist: name pattern per folder. */
const SOURCES: ReadonlyArray<[folder: string, pattern: RegExp]> = [
  ['quantangshi', /^poet\.tang\.\d+\.json$/],
  ['songci', /^ci\.song\.\d+\.json$/],
  ['shijing', /\.json$/],
  ['mengxue', /^(tangshisanbaishou|qianjiashi)\.json$/],
];

export const BUILTIN_ZH_DESCRIPTION = 'classical Chinese poetry (chinese-poetry@2.0.1: Tang poems, Song ci, Shijing, 唐诗三百首, 千家诗), Simplified with opencc-js@1.4.2';

/** Resolves `spec` (a file of an optional package) or explains how to install the package. */
function optionalPackage(name: string, spec = name): string {
  try {
    return require.resolve(spec);
  } catch (e) {
    throw new Error(`the built-in Chinese corpus (builtin:zh) needs the optional npm packages ${POETRY} and ${OPENCC}, and ${name} is not installed; `
      + `install them with "npm install --include=optional" (or "npm install ${POETRY}@2.0.1 ${OPENCC}@1.4.2")`, { cause: e });
  }
}

type Convert = (text: string) => string;

/**
 * A character lost in the source data: □ (U+25A1), chinese-poetry's mark for a character missing or
 * illegible in the printed collection (thousands of them, often in runs such as "□□□□□"), U+FFFD, or
 * an unpaired surrogate.
 */
const DAMAGED = /\u25A1|\uFFFD|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** opencc-js's Traditional (Hong Kong/Taiwan/OpenCC standard) → Mainland Simplified converter. */
export function traditionalToSimplified(): Convert {
  const opencc = require(optionalPackage(OPENCC)) as { Converter: (o: { from: string; to: string }) => Convert };
  return opencc.Converter({ from: 't', to: 'cn' });
}

/** Every `paragraphs` (or Shijing's `content`) array of strings in a parsed JSON file, as one poem each. */
function poemsIn(value: unknown, out: string[][]): void {
  if (Array.isArray(value)) {
    for (const v of value) poemsIn(v, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const o = value as Record<string, unknown>;
  const lines = Array.isArray(o.paragraphs) ? o.paragraphs : Array.isArray(o.content) && o.content.every((x) => typeof x === 'string') ? o.content : null;
  if (lines) {
    const text = (lines as unknown[]).filter((l): l is string => typeof l === 'string').map((l) => l.trim()).filter(Boolean);
    if (text.length) out.push(text);
    return;
  }
  for (const v of Object.values(o)) if (typeof v === 'object') poemsIn(v, out);
}

/** The poems of the corpus, Simplified, one string per poem with its lines joined by "\n". */
export function* builtinZhPoems(limitFiles = Infinity): Generator<string> {
  const root = join(dirname(optionalPackage(POETRY, `${POETRY}/package.json`)), 'dist');
  const convert = traditionalToSimplified();
  let files = 0;
  for (const [folder, pattern] of SOURCES) {
    const dir = join(root, folder);
    if (!existsSync(dir)) throw new Error(`builtin:zh: ${dir} is missing; reinstall ${POETRY}@2.0.1`);
    const names = readdirSync(dir).filter((f) => pattern.test(f)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    for (const name of names) {
      if (files++ >= limitFiles) return;
      const poems: string[][] = [];
      poemsIn(JSON.parse(readFileSync(join(dir, name), 'utf8')), poems);
      // One converter call per file: opencc-js's per-call overhead dominates on short strings.
      const converted = convert(poems.map((p) => p.join('\n')).join('\n\n')).split('\n\n');
      // Poems with a character lost in the source (□, U+FFFD, a lone surrogate) are left out: a model
      // should not learn the hole.
      for (const poem of converted) if (!DAMAGED.test(poem)) yield poem;
    }
  }
}

function cacheDir(): string {
  return process.env.PRIMER_CACHE ?? join(homedir(), '.cache', 'primer');
}

/** The corpus as one JSONL file (one poem per record, field "text"), converted on first use and cached. */
export function builtinZhCorpusFiles(): string[] {
  // "-2": the second selection of poems (□ left out); a cache written by an older Primer is not reused.
  const path = join(cacheDir(), 'builtin-zh-chinese-poetry-2.0.1-opencc-1.4.2-2.jsonl');
  if (existsSync(path)) return [path];
  const lines: string[] = [];
  for (const poem of builtinZhPoems()) lines.push(JSON.stringify({ text: poem }));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path + '.tmp', lines.join('\n') + '\n');
  renameSync(path + '.tmp', path);
  return [path];
}
