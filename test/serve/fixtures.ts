/** Tiny random-weight model directories (GPT-2, BERT, a BERT classifier) for the serving tests. */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainTokenizer } from '../../src/tokenizers/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { Bert, BertModel } from '../../src/models/bert.ts';
import { bertPreset, gptPreset } from '../../src/models/presets.ts';
import { saveModelDir } from '../../src/models/load.ts';
import { SequenceClassifier } from '../../src/models/heads.ts';
import { saveTaskModelDir } from '../../src/models/model-dir.ts';
import { Rng } from '../../src/util/random.ts';

const TEXTS = [
  'the cat sat on the mat . the dog sat on the log .',
  'a quick brown fox jumps over the lazy dog .',
  'once upon a time there was a small model that learned to write .',
  'what a wonderful day , said the happy cat .',
];

export interface Fixtures {
  root: string;
  gpt: string;
  bert: string;
  classifier: string;
}

/** Builds the three model directories once per root (reused across test files in the same run). */
export function buildFixtures(root = join(tmpdir(), `primer-serve-fixtures-${process.pid}`)): Fixtures {
  const f = { root, gpt: join(root, 'tiny-gpt'), bert: join(root, 'tiny-bert'), classifier: join(root, 'tiny-sentiment') };
  if (existsSync(f.classifier)) return f;
  mkdirSync(root, { recursive: true });
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const texts = Array(20).fill(TEXTS).flat();
  const bpe = trainTokenizer({ type: 'bpe', vocabSize: 300, texts, minFrequency: 1 });
  saveModelDir(f.gpt, new GPT(gptPreset('tiny', { vocabSize: bpe.vocabSize, layers: 2, dims: 32, heads: 2, context: 64, dropout: 0 }), 1), gptPreset('tiny', { vocabSize: bpe.vocabSize, layers: 2, dims: 32, heads: 2, context: 64, dropout: 0 }), bpe);
  const wp = trainTokenizer({ type: 'wordpiece', vocabSize: 120, texts });
  const bcfg = bertPreset('tiny', { vocabSize: wp.vocabSize, layers: 2, dims: 32, heads: 2, context: 64, dropout: 0 });
  saveModelDir(f.bert, new Bert(bcfg, 2), bcfg, wp);
  saveTaskModelDir(f.classifier, new SequenceClassifier(new BertModel(bcfg, new Rng(3)), ['negative', 'positive']), wp);
  return f;
}
