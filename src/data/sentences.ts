/**
 * Sentence splitting for English and Chinese, for the segments of next-sentence prediction.
 *
 * A sentence ends after a terminator run (. ! ? 。 ！ ？ ！？ …) plus any closing quotes or brackets,
 * when what follows allows it:
 *   - 。！？ (full-width) end a sentence wherever they are: Chinese puts no space after them;
 *   - . ! ? need whitespace (or the end) after them, so 3.14, U.S.A and example.com stay whole,
 *     and the next word must not start with a lowercase letter ("Why?" he asked. / etc. and so on);
 *   - a period after a known abbreviation (Mr. Dr. e.g. i.e. vs. …), a single capital initial (J. K.)
 *     or a dotted acronym (U.S.) is not an end;
 *   - an ellipsis (... or …) never ends a sentence: it usually trails off mid-sentence;
 *   - a blank line always ends one (paragraphs).
 * Splitting is lossless: the pieces concatenate back to the input (whitespace after a sentence starts
 * the next one), so a document tokenized piece by piece decodes to the same text.
 */

/** Abbreviations (lowercase, without the final period) after which a period does not end a sentence. */
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'mt', 'ft', 'messrs', 'mme', 'mlle', 'rev', 'hon', 'gen', 'col', 'capt', 'lt', 'sgt',
  'cpl', 'gov', 'sen', 'rep', 'pres', 'supt', 'vs', 'etc', 'e.g', 'i.e', 'cf', 'al', 'viz', 'approx', 'no', 'nos', 'vol', 'vols', 'fig',
  'figs', 'p', 'pp', 'ch', 'sec', 'ed', 'eds', 'inc', 'ltd', 'co', 'corp', 'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept',
  'oct', 'nov', 'dec', 'a.m', 'p.m', 'u.s', 'u.k', 'u.s.a', 'ph.d', 'b.a', 'm.a', 'op', 'esp', 'dept', 'univ', 'est', 'ave', 'blvd',
]);

/** Abbreviations that may also end a sentence: they do when the next word is capitalised. */
const TERMINAL_ABBREVIATIONS = new Set(['etc', 'al', 'inc', 'ltd', 'co', 'corp']);

const CJK_TERMINATORS = '。！？';
const CLOSERS = '"\'”’»)]}」』）】〉》';

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v' || c === '\u00a0' || c === '\u3000';
}

function isLower(c: string): boolean {
  return c !== c.toUpperCase() && c === c.toLowerCase();
}

/** The word (letters, digits and inner periods) ending right before position `end`. */
function wordBefore(text: string, end: number): string {
  let s = end;
  while (s > 0 && /[\p{L}\p{N}.]/u.test(text[s - 1]!)) s--;
  return text.slice(s, end);
}

/** Whether the period at `dot` (followed by whitespace) is part of an abbreviation, given the next word. */
function isAbbreviationPeriod(text: string, dot: number, nextChar: string): boolean {
  const word = wordBefore(text, dot).replace(/^\.+/, '');
  if (word === '') return false;
  const lower = word.toLowerCase();
  if (ABBREVIATIONS.has(lower)) return !(TERMINAL_ABBREVIATIONS.has(lower) && /\p{Lu}/u.test(nextChar));
  if (/^\p{Lu}$/u.test(word)) return true; // initial: J. K. Rowling
  return /^(\p{L}\.)+\p{L}$/u.test(word); // dotted acronym: U.S, e.g, N.A.S.A
}

/** Positions where sentences start after the first (cut points), in increasing order. */
export function sentenceBoundaries(text: string): number[] {
  const cuts: number[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text[i]!;
    // Paragraph break: cut after the blank line(s), before the next text.
    if (c === '\n') {
      let j = i + 1;
      let newlines = 1;
      while (j < n && isSpace(text[j]!)) {
        if (text[j] === '\n') newlines++;
        j++;
      }
      if (newlines >= 2 && j < n && j > 0 && cuts[cuts.length - 1] !== j) {
        // The break belongs to the previous sentence only when no terminator cut was made just before it.
        const last = cuts[cuts.length - 1] ?? 0;
        if (text.slice(last, i).trim() !== '') cuts.push(j);
      }
      i = j;
      continue;
    }
    const cjk = CJK_TERMINATORS.includes(c);
    if (!cjk && c !== '.' && c !== '!' && c !== '?') {
      i++;
      continue;
    }
    // The terminator run, e.g. "?!", "。", "..."; an ellipsis never ends a sentence.
    let j = i;
    let dots = 0;
    let cjkRun = false;
    while (j < n && (text[j] === '.' || text[j] === '!' || text[j] === '?' || CJK_TERMINATORS.includes(text[j]!))) {
      if (text[j] === '.') dots++;
      if (CJK_TERMINATORS.includes(text[j]!)) cjkRun = true;
      j++;
    }
    const ellipsis = dots >= 2 || (i > 0 && text[i - 1] === '…');
    while (j < n && CLOSERS.includes(text[j]!)) j++;
    if (ellipsis || j >= n) {
      i = j;
      continue;
    }
    if (cjkRun) {
      cuts.push(j);
      i = j;
      continue;
    }
    if (!isSpace(text[j]!)) {
      i = j;
      continue;
    }
    let k = j;
    while (k < n && isSpace(text[k]!)) k++;
    if (k >= n) break;
    const next = text[k]!;
    const singlePeriod = j - i >= 1 && text[i] === '.' && dots === 1;
    if (isLower(next) || (singlePeriod && isAbbreviationPeriod(text, i, next))) {
      i = j;
      continue;
    }
    cuts.push(j);
    i = j;
  }
  return cuts;
}

/**
 * Splits text into sentences. By default lossless (pieces concatenate to the input); with
 * `trim: true`, each piece is trimmed and empty ones are dropped.
 */
export function splitSentences(text: string, options: { trim?: boolean } = {}): string[] {
  const out: string[] = [];
  let start = 0;
  for (const cut of [...sentenceBoundaries(text), text.length]) {
    if (cut > start) out.push(text.slice(start, cut));
    start = cut;
  }
  if (!options.trim) return out;
  return out.map((s) => s.trim()).filter((s) => s !== '');
}
