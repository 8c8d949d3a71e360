/**
 * `PRIMER_PROFILE=1 node --import tsx bench/profile-step.ts [tiny|mini|small]`: five training steps
 * (forward + backward, 32×128 tokens, vocab 8192) of a GPT preset after one warm-up step, with the
 * per-op profiler's table printed at exit (PRIMER_PROFILE=shapes: one row per GEMM shape).
 */
import { GPT } from '../src/models/gpt.ts';
import { gptPreset, type PresetName } from '../src/models/presets.ts';
import { withScope } from '../src/tensor/tensor.ts';
import { activeProfiler } from '../src/backend/profile.ts';
import { mix32 } from '../src/util/random.ts';

const preset = (process.argv[2] ?? 'tiny') as PresetName;
const model = new GPT(gptPreset(preset, { vocabSize: 8192, context: 128 }), 0);
const [b, t] = [32, 128];
const ids = new Int32Array(b * t).map((_, i) => mix32(i) % 8192);
const step = () => withScope(() => {
  model.forward(ids, b, t, ids).loss!.backward();
  for (const p of model.parameters()) p.grad?.data.fill(0);
});
step();
activeProfiler()?.reset();
const t0 = performance.now();
for (let i = 0; i < 5; i++) step();
console.log(`${preset}: ${Math.round((5 * b * t) / ((performance.now() - t0) / 1000))} tokens/s (forward + backward)`);
