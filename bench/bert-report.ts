/**
 * Judgement and BENCHMARKS.md text of `npm run bench:bert` (bench/bert.ts) from its results: per-arm
 * distributions of escape steps and final held-out loss over seeds, and the tests between arms.
 * Kept apart from the runs so that `--from-results bench/results/bert.json` can re-render the section
 * (e.g. with another --escape-margin) without re-training.
 */
import type { ArmRun, CurvePoint, Recipe } from './bert-primer.ts';
import { formatP, mannWhitneyU, mean, meanStd, signTest, welchT, wilcoxonSignedRank } from './stats.ts';

export type Arm = 'primer' | 'torch' | 'same';
export interface Done extends ArmRun { arm: Arm; seed: number; torch?: string; escape: number | null }

export interface BertResults {
  command: string;
  date: string;
  machine: string;
  mode: string;
  load_average: [number, number];
  wall_seconds: number;
  recipe: Recipe;
  seeds: number[];
  arms: Arm[];
  vocab: number;
  plateau: { unigram_entropy: number; context_free: number; margin: number; threshold: number };
  runs: Done[];
}

/** First evaluation step whose held-out MLM loss is ≤ threshold; null if none. */
export const escapeStep = (curve: CurvePoint[], threshold: number) => curve.find((c) => c.heldout_mlm_loss <= threshold)?.step ?? null;

/** Summaries per arm and the tests between arms. */
export function analyse(res: BertResults) {
  const runsOf = (arm: Arm) => res.seeds.map((s) => res.runs.find((d) => d.arm === arm && d.seed === s)).filter((d): d is Done => d !== undefined);
  const esc = (r: Done) => r.escape ?? Infinity; // never escaped ranks after every escape
  const loss = (x: Done[]) => x.map((r) => r.heldout_mlm_loss);
  const summaries = res.arms.map((arm) => {
    const runs = runsOf(arm);
    const escaped = runs.filter((r) => r.escape !== null).map((r) => r.escape!);
    const sorted = runs.map(esc).sort((a, b) => a - b);
    const median = runs.length ? sorted[(runs.length - 1) >> 1]! : Infinity; // lower median
    return {
      arm, n: runs.length, escaped: escaped.length, escape_steps: runs.map((r) => r.escape), escape_mean: escaped.length ? mean(escaped) : null,
      escape_median: Number.isFinite(median) ? median : null, loss: meanStd(loss(runs)), loss_mean: mean(loss(runs)),
      acc: meanStd(runs.map((r) => 100 * r.heldout_mlm_acc), 1),
      nsp_acc: res.recipe.nsp ? meanStd(runs.map((r) => 100 * (r.heldout_nsp_acc ?? NaN)), 1) : undefined,
      tokens_per_sec: Math.round(mean(runs.map((r) => r.tokens_per_sec))),
    };
  });
  const [P, T, S] = [runsOf('primer'), runsOf('torch'), runsOf('same')];
  const tests = {
    primer_vs_torch: P.length && T.length ? {
      relative_gap: (mean(loss(P)) - mean(loss(T))) / mean(loss(T)),
      loss_mann_whitney: mannWhitneyU(loss(P), loss(T)), loss_welch: P.length > 1 && T.length > 1 ? welchT(loss(P), loss(T)) : null,
      escape_mann_whitney: mannWhitneyU(P.map(esc), T.map(esc)),
    } : null,
    same_vs_torch: S.length && S.length === T.length ? {
      loss_wilcoxon: wilcoxonSignedRank(loss(S), loss(T)), loss_sign: signTest(loss(S), loss(T)), escape_sign: signTest(S.map(esc), T.map(esc)),
      max_abs_loss_diff: Math.max(...S.map((r, i) => Math.abs(r.heldout_mlm_loss - T[i]!.heldout_mlm_loss))),
    } : null,
  };
  return { runsOf, summaries, tests };
}

/** The body of the BENCHMARKS.md section (report.ts adds the machine/command/date header). */
export function renderSection(res: BertResults): string {
  const { runsOf, summaries, tests } = analyse(res);
  const { recipe: rc, arms, seeds, plateau } = res;
  const P = runsOf('primer');
  const torchVersion = runsOf('torch')[0]?.torch ?? '';
  const names: Record<Arm, string> = { primer: 'Primer', torch: `PyTorch ${torchVersion} (ref_bert.py)`, same: "Primer from ref_bert.py's start" };
  const pct = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(1)}%`);
  const escCell = (e: number | null) => (e === null ? `none (> ${rc.steps})` : String(e));
  const perSeed = seeds.map((s) => `| ${s} | ${arms.map((a) => {
    const r = res.runs.find((d) => d.arm === a && d.seed === s);
    if (!r) return rc.nsp ? ' | | | ' : ' | | ';
    return `${escCell(r.escape)} | ${r.heldout_mlm_loss.toFixed(4)} | ${pct(r.heldout_mlm_acc)}${rc.nsp ? ` | ${pct(r.heldout_nsp_acc)}` : ''}`;
  }).join(' | ')} |`);
  const cols = rc.nsp ? 4 : 3;
  const steps = (P[0]?.curve ?? []).map((c) => c.step);
  const lossAt = (a: Arm, step: number) => runsOf(a).map((r) => r.curve.find((c) => c.step === step)?.heldout_mlm_loss ?? NaN);
  const curveRows = steps.map((step) => `| ${step} | ${arms.map((a) => meanStd(lossAt(a, step), 3)).join(' | ')} |`);
  const pt = tests.primer_vs_torch;
  const st = tests.same_vs_torch;
  const within = pt ? Math.abs(pt.relative_gap) <= 0.02 : false;
  const alike = pt ? pt.loss_mann_whitney.p >= 0.05 && (pt.loss_welch?.p ?? 1) >= 0.05 : false;
  const [loadStart, loadEnd] = res.load_average;
  const chars = rc.seq - (rc.nsp ? 3 : 2); // maskable positions per row
  const short = (x: number) => (x !== 0 && Math.abs(x) < 1e-2 ? x.toExponential().replace('e-', 'e−') : String(x));
  const schedule = rc.schedule === 'constant' ? 'constant' : `${rc.schedule} decay to 0`;
  return `Char-level BERT${rc.nsp ? ' MLM + NSP' : ' MLM'} on Shakespeare (vocab ${res.vocab}, ${(P[0]?.params ?? 0).toLocaleString('en-US')} Primer parameters incl. the unused pooler/NSP head), 4 layers, 4 heads, 128 hidden, 512 intermediate, post-LN, GELU tanh, ${rc.bf16 ? 'bf16 autocast' : 'fp32'}, ${seeds.length} seed${seeds.length === 1 ? '' : 's'} per arm (${seeds.join(', ')}). Runs: ${res.mode}; finished ${res.date.slice(0, 16).replace('T', ' ')} UTC after ${(res.wall_seconds / 60).toFixed(0)} minutes wall; load average ${loadStart.toFixed(1)} at the start, ${loadEnd.toFixed(1)} at the end${loadStart > 1.5 ? ' (a machine shared with other jobs: tokens/s are depressed and noisy)' : ''}.

Recipe, identical in every arm: ${rc.steps} steps, batch ${rc.batch}, seq ${rc.seq}, AdamW lr ${short(rc.lr)}, β=(${rc.beta1}, ${rc.beta2}), ε ${short(rc.eps)}, wd ${rc.weightDecay} (≥2-D weights), warmup ${rc.warmup} then ${schedule}, clip ${rc.clip > 0 ? rc.clip : 'off'}, mask ${rc.maskProb} (80/10/10). Masking: Primer picks exactly ${Math.max(1, Math.round(rc.maskProb * chars))} = round(${rc.maskProb}·${chars}) characters per row (google-research/bert's rule, src/data/mlm.ts), ref_bert.py each one independently with p = ${rc.maskProb}. Held-out = 20 fixed batches of the last 10% (each arm masks them with its own generator), evaluated every ${rc.evalEvery} steps and at the end in every arm (PyTorch through bench/ref_bert_recipe.py, which calls ref_bert.py's own evaluate() without changing its training).

Arms: **Primer** = Primer's own initialisation Rng(seed), batches (seed + 1) and masking${arms.includes('torch') ? '; **PyTorch** = ref_bert.py --seed seed' : ''}${arms.includes('same') ? "; **Primer from ref_bert.py's start** = Primer's model and trainer from ref_bert.py's initial weights on ref_bert.py's own batches for the same seed (bench/ref_bert_start.py): paired with PyTorch seed by seed, so its differences are the implementation's" : ''}.${arms.includes('torch') ? ' Primer and PyTorch draw different initial weights and batches, so their seeds are independent samples, not pairs.' : ''}

**Escape step** = the first evaluation at which the held-out MLM loss is ≤ ${plateau.threshold.toFixed(3)} = plateau ${plateau.context_free.toFixed(3)} − ${plateau.margin}. The plateau is the held-out loss of the best context-free predictor fitted on the training characters: it sees only its own position's input ([MASK] 80%, the true character 10%, a random one 10%). The plain unigram entropy of the training characters, ${plateau.unigram_entropy.toFixed(3)} nats, lies above what stuck runs reach (≈ 3.09–3.16), because 10% of the predicted positions show their own character.

| seed | ${arms.map((a) => `${names[a]}: escape | loss | acc${rc.nsp ? ' | NSP acc' : ''}`).join(' | ')} |
|---|${arms.map(() => '---|'.repeat(cols)).join('')}
${perSeed.join('\n')}

| arm | escaped | escape steps | median escape | held-out MLM loss | held-out MLM acc (%)${rc.nsp ? ' | NSP acc (%)' : ''} | tokens/s per run |
|---|---|---|---|---|---|${rc.nsp ? '---|' : ''}---|
${summaries.map((s) => `| ${names[s.arm]} | ${s.escaped}/${s.n} | ${s.escape_steps.map((e) => e ?? '—').join(', ')} | ${s.escape_median ?? `> ${rc.steps}`} | ${s.loss} | ${s.acc}${rc.nsp ? ` | ${s.nsp_acc}` : ''} | ${s.tokens_per_sec.toLocaleString('en-US')} |`).join('\n')}

Losses and accuracies: mean ± sample std over seeds; — = never escaped. ${pt ? `**Primer vs PyTorch** (independent samples, two-sided): mean held-out loss gap (Primer − PyTorch) / PyTorch = ${(100 * pt.relative_gap).toFixed(2)}%; Mann–Whitney U = ${pt.loss_mann_whitney.u}, exact p = ${formatP(pt.loss_mann_whitney.p)}; Welch's t = ${pt.loss_welch ? `${pt.loss_welch.t.toFixed(2)}, df = ${pt.loss_welch.df.toFixed(1)}, p = ${formatP(pt.loss_welch.p)}` : 'n/a (needs 2 seeds per arm)'}. Acceptance (mean within 2% of PyTorch's, or not distinguishable at α = 0.05 by either test): ${within ? 'met (within 2%)' : alike ? 'met (not distinguishable)' : 'not met'}. Escape steps (a run that never escapes ranks last): Mann–Whitney U = ${pt.escape_mann_whitney.u}, exact p = ${formatP(pt.escape_mann_whitney.p)}.` : 'PyTorch was not run (--no-torch or not installed): no comparison.'}${st ? ` **Same start vs PyTorch** (paired by seed): largest |Δ loss| ${st.max_abs_loss_diff.toFixed(4)}; Wilcoxon signed-rank W+ = ${st.loss_wilcoxon.wPlus} over ${st.loss_wilcoxon.n} non-zero pairs, exact p = ${formatP(st.loss_wilcoxon.p)}; sign test ${st.loss_sign.positive} higher / ${st.loss_sign.negative} lower, p = ${formatP(st.loss_sign.p)}; escape later / earlier in ${st.escape_sign.positive} / ${st.escape_sign.negative} seeds, sign test p = ${formatP(st.escape_sign.p)}.` : ''}

Held-out MLM loss by step, mean ± std over seeds:

| step | ${arms.map((a) => names[a]).join(' | ')} |
|---|${arms.map(() => '---|').join('')}
${curveRows.join('\n')}
`;
}
