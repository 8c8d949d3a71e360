/** Test helper: a tiny GPT pre-trained by Primer on a synthetic review corpus ("Review: … good … Sentiment: positive"). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pretrain } from '../../src/train/pretrain.ts';
import { Rng } from '../../src/util/random.ts';
import type { TextExample } from '../../src/tasks/data.ts';

export const POSITIVE = ['good', 'great', 'lovely'];
export const NEGATIVE = ['bad', 'awful', 'poor'];
const NEUTRAL = ['the', 'food', 'film', 'was', 'very', 'quite', 'service', 'and', 'it'];

/** Reviews of a few neutral words and one opinion word that decides the label. */
export function syntheticReviews(n: number, seed: number): TextExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 2 + rng.int(3) }, () => NEUTRAL[rng.int(NEUTRAL.length)]!);
    const positive = i % 2 === 0;
    const opinion = positive ? POSITIVE : NEGATIVE;
    words.splice(rng.int(words.length + 1), 0, opinion[rng.int(opinion.length)]!);
    return { text: words.join(' '), label: positive ? 'positive' : 'negative', id: `r${seed}-${i}` };
  });
}

/** Pre-trains a 1-layer GPT on documents of labelled reviews; returns the run (model) directory. */
export async function pretrainTinyGpt(root: string, o: { steps?: number; dims?: number } = {}): Promise<string> {
  const corpus = join(root, 'corpus');
  mkdirSync(corpus, { recursive: true });
  for (let d = 0; d < 8; d++) {
    const text = syntheticReviews(60, d + 100).map((r) => `Review: ${r.text}\nSentiment: ${r.label}`).join('\n\n');
    writeFileSync(join(corpus, `doc${d}.txt`), text + '\n');
  }
  const out = join(root, 'gpt');
  await pretrain({
    corpus: [corpus], preset: 'tiny', layers: 1, dims: o.dims ?? 64, heads: 2, vocabSize: 300, blockSize: 64, batchSize: 8,
    steps: o.steps ?? 150, lr: 5e-3, minLr: 5e-4, warmupSteps: 10, evalEvery: 0, checkpointEvery: 0, keepCheckpoints: 1,
    valFraction: 0.1, seed: 7, out, samplePrompts: [], log: () => {}, progress: false,
  });
  return out;
}
