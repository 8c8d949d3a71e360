/**
 * Child process of the kill-during-save fuzz test (kill-save.test.ts): saves checkpoints of a tiny
 * GPT back to back into RUN_DIR (keeping 2, re-saving the same step now and then to exercise the
 * swap), printing "ready" first, until it is killed.
 */
import { GPT } from '../../src/models/gpt.ts';
import { gptPreset } from '../../src/models/presets.ts';
import { AdamW } from '../../src/tensor/optim.ts';
import { decayGroups } from '../../src/train/trainer.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';

const runDir = process.argv[2]!;
const model = new GPT(gptPreset('tiny', { vocabSize: 64, layers: 1, dims: 32, heads: 2, context: 16 }), 1);
const { groups, names } = decayGroups(model, 0.1);
const optimizer = new AdamW(groups, { lr: 1e-3 });
process.stdout.write('ready\n');
for (let step = 1; ; step++) {
  const saved = step % 5 === 0 ? step - 1 : step; // every 5th save replaces the previous step: the .old- swap
  saveCheckpoint({
    runDir, model, optimizer, paramNames: names, keep: 2,
    state: { step: saved, totalSteps: 1_000_000, tokensSeen: saved, bestValLoss: null, run: {}, data: null, rngs: {} },
  });
}
