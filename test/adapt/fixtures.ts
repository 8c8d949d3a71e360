/** Test helpers: a tiny randomly initialised GPT model directory and a learnable synthetic Q→A set. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPT, type GPTConfig } from '../../src/models/gpt.ts';
import { saveModelDir } from '../../src/models/load.ts';
import { trainBpe } from '../../src/tokenizers/bpe-train.ts';
import { Rng } from '../../src/util/random.ts';

const COLORS: Record<string, string> = { apple: 'red', banana: 'yellow', grass: 'green', sky: 'blue', snow: 'white', coal: 'black' };

/** {"prompt": "What color is the X?", "response": "Y."} lines; the answer is a fixed function of the prompt. */
export function colorQa(n: number, seed: number): Array<{ prompt: string; response: string }> {
  const rng = new Rng(seed);
  const things = Object.keys(COLORS);
  return Array.from({ length: n }, () => {
    const t = things[rng.int(things.length)]!;
    return { prompt: `What color is the ${t}?`, response: `The ${t} is ${COLORS[t]}.` };
  });
}

export function writeJsonl(path: string, rows: readonly unknown[]): string {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

/** A 1-layer GPT (random weights) with a BPE tokenizer trained on the Q→A text, saved in HF layout. */
export function makeTinyModelDir(root: string, seed = 3): string {
  const texts = colorQa(200, 99).map((r) => `System: be brief\nUser: ${r.prompt}\nAssistant: ${r.response}`);
  const tokenizer = trainBpe(texts, { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
  const config: GPTConfig = {
    model_type: 'gpt2', vocab_size: tokenizer.vocabSize, n_positions: 64, n_embd: 32, n_layer: 1, n_head: 2,
    bos_token_id: 0, eos_token_id: 0,
  };
  const dir = join(root, 'base');
  saveModelDir(dir, new GPT(config, seed), config, tokenizer);
  return dir;
}
