/**
 * The label-efficiency experiment's summary: per budget, mean ± std over seeds of every arm and
 * method, which pre-trained method the selection set chose (chooseMethod), and the files —
 * results.md (the curves' table, the per-method table, zero-shot) and the SVG plot.
 */
import { writeFileSync } from 'node:fs';
import { meanStd, svgPlot, type Curve, type CurvePoint } from './experiment-report.ts';
import type { ZeroShotResult } from './fewlabel.ts';

/** 'stacked': pre-trained anchors + TF-IDF in one model, reported beside the curves, never chosen as 'pretrained'. */
export type Arm = 'pretrained' | 'scratch' | 'tfidf' | 'stacked';

export interface RunRecord {
  arm: Arm;
  /** lpft, probe, prompt (pre-trained), lpft (scratch), tfidf. */
  method: string;
  labels: number;
  seed: number;
  /** Accuracy on the selection set (validation examples not used for early stopping). */
  selection: number;
  /** Brier score on the selection set (fewlabel.ts brierScore). */
  selectionBrier?: number;
  accuracy: number;
  macroF1: number;
  detail?: string;
  epochs?: number;
  bestEpoch?: number;
  seconds: number;
}

export interface MethodPoint extends CurvePoint {
  method: string;
  selection: number;
  /** Mean Brier score on the selection set (absent when a run had no probabilities). */
  selectionBrier?: number;
}

/**
 * The method a budget reports: the lowest mean selection Brier score when every candidate has one, else
 * the highest mean selection accuracy (a tie goes to the earlier method). Chosen by how well each rule,
 * applied to one half of the selection set, picked the most accurate method on the other half
 * (validation only; bench/selection-rules.py, BENCHMARKS.md "Label efficiency", session 9).
 */
export function chooseMethod<P extends MethodPoint>(points: readonly P[]): P | null {
  if (points.length === 0) return null;
  const byBrier = points.every((p) => p.selectionBrier !== undefined && Number.isFinite(p.selectionBrier));
  return points.reduce((b, p) => ((byBrier ? p.selectionBrier! < b.selectionBrier! : p.selection > b.selection) ? p : b));
}

export interface Summary {
  tfidf: CurvePoint[];
  scratch: CurvePoint[];
  /** Anchors + TF-IDF (empty when the anchors did not run). */
  stacked: CurvePoint[];
  /** The chosen method's test accuracy at each budget. */
  pretrained: Array<CurvePoint & { method: string }>;
  /** Every pre-trained method at every budget (for the ablation table). */
  methods: MethodPoint[];
}

interface ReportInput {
  task: string;
  model: string;
  domainText: boolean;
  complete: boolean;
  scoreSplit: 'test' | 'val';
  majority: { label: string; accuracy: number };
  zeroShot: ZeroShotResult | null;
  anchorZeroShot?: { accuracy: number } | null;
  runs: RunRecord[];
  files: { table: string; plot: string };
}

const pct = (x: number) => (100 * x).toFixed(1);

export function summarize(runs: readonly RunRecord[], budgets: readonly number[]): Summary {
  const done = budgets.filter((n) => runs.some((r) => r.labels === n));
  const point = (n: number, rs: RunRecord[]): CurvePoint => ({ labels: n, ...meanStd(rs.map((r) => r.accuracy)), n: rs.length });
  const of = (arm: Arm, method?: string) => (n: number) => runs.filter((r) => r.arm === arm && r.labels === n && (method === undefined || r.method === method));
  const methods: MethodPoint[] = [];
  const pretrained: Summary['pretrained'] = [];
  for (const n of done) {
    const names = [...new Set(runs.filter((r) => r.arm === 'pretrained' && r.labels === n).map((r) => r.method))];
    const points = names.map((m) => {
      const rs = of('pretrained', m)(n);
      const briers = rs.map((r) => r.selectionBrier);
      const selectionBrier = briers.every((l) => l !== undefined) ? meanStd(briers as number[]).mean : undefined;
      return { ...point(n, rs), method: m, selection: meanStd(rs.map((r) => r.selection)).mean, selectionBrier };
    });
    methods.push(...points);
    const best = chooseMethod(points);
    if (best) pretrained.push({ labels: n, mean: best.mean, std: best.std, n: best.n, method: best.method });
  }
  return {
    tfidf: done.map((n) => point(n, of('tfidf')(n))).filter((p) => p.n > 0),
    scratch: done.map((n) => point(n, of('scratch')(n))).filter((p) => p.n > 0),
    stacked: done.map((n) => point(n, of('stacked')(n))).filter((p) => p.n > 0),
    pretrained,
    methods,
  };
}

/** | labels | curve … | Δ vs TF-IDF | with accuracies in % as mean ± std. */
function curvesTable(curves: readonly Curve[], budgets: readonly number[]): string {
  const cell = (c: Curve, n: number) => {
    const p = c.points.find((q) => q.labels === n);
    return p ? `${pct(p.mean)} ± ${pct(p.std)}` : '—';
  };
  const delta = (n: number) => {
    const [a, b] = [curves[0]!.points.find((q) => q.labels === n), curves[1]!.points.find((q) => q.labels === n)];
    return a && b ? `${a.mean >= b.mean ? '+' : ''}${pct(a.mean - b.mean)}` : '—';
  };
  return [
    `| labels | ${curves.map((c) => `${c.name} (%)`).join(' | ')} | Δ (points) |`,
    `|---:|${curves.map(() => '---:|').join('')}---:|`,
    ...budgets.map((n) => `| ${n} | ${curves.map((c) => cell(c, n)).join(' | ')} | ${delta(n)} |`),
    '',
  ].join('\n');
}

/** Writes results.md and the SVG; returns the summary. */
export function writeReport(r: ReportInput, budgets: readonly number[]): Summary {
  const s = summarize(r.runs, budgets);
  if (s.pretrained.length === 0) return s;
  const curves: Curve[] = [
    { name: 'pre-trained', color: '#1f77b4', points: s.pretrained },
    { name: 'TF-IDF + LR', color: '#2ca02c', points: s.tfidf },
    { name: 'from scratch', color: '#d62728', points: s.scratch },
    ...(s.stacked.length ? [{ name: 'anchors + TF-IDF', color: '#9467bd', points: s.stacked, extra: true }] : []),
  ];
  const seeds = Math.max(...s.pretrained.map((p) => p.n));
  const title = `Label efficiency on ${r.task}: ${r.scoreSplit === 'val' ? 'held-out validation' : 'test'} accuracy, mean ± std over ${seeds} seed${seeds > 1 ? 's' : ''}`;
  const methodRows = s.methods.map((p) => {
    const chosen = s.pretrained.find((q) => q.labels === p.labels)?.method === p.method;
    return `| ${p.labels} | ${p.method}${chosen ? ' (chosen)' : ''} | ${pct(p.selection)} | ${p.selectionBrier !== undefined ? p.selectionBrier.toFixed(4) : '—'} | ${pct(p.mean)} ± ${pct(p.std)} |`;
  });
  const z = r.zeroShot;
  const text = [
    `# ${title}`, '',
    `Model: ${r.model}${r.domainText ? ' (domain-adaptive: pre-trained with the task\'s unlabelled train texts)' : ''}${r.complete ? '' : ' (incomplete: the experiment is still running or was interrupted)'}`, '',
    curvesTable(curves, s.pretrained.map((p) => p.labels)),
    `Majority class (always "${r.majority.label}"): ${pct(r.majority.accuracy)}%. Δ = pre-trained − TF-IDF.`
      + (s.stacked.length ? ' "anchors + TF-IDF" (one logistic regression on the TF-IDF features and the pre-trained label-word anchor scores) is shown for reference: it is never the pre-trained curve.' : ''), '',
    `The pre-trained curve reports, at each budget, the method with the lowest mean Brier score on the selection set (validation examples never used for early stopping; by accuracy where a method has no probabilities): ${s.pretrained.map((p) => `${p.labels}: ${p.method}`).join(', ')}.`, '',
    '| labels | pre-trained method | selection accuracy (%) | selection Brier score | test accuracy (%) |', '|---:|---|---:|---:|---:|', ...methodRows, '',
    ...(z ? [`Zero-shot prompting (no labels): ${pct(z.uncalibrated.accuracy)}% uncalibrated, ${pct(z.calibrated.accuracy)}% with contextual calibration; majority class ${pct(r.majority.accuracy)}%.`, ''] : []),
    ...(r.anchorZeroShot ? [`Zero-shot by label-word anchors in the token-embedding space (no labels): ${pct(r.anchorZeroShot.accuracy)}%.`, ''] : []),
  ].join('\n');
  writeFileSync(r.files.table, text);
  const references = [
    ...(z ? [{ name: 'zero-shot (calibrated)', accuracy: z.calibrated.accuracy }] : []),
    ...(r.anchorZeroShot ? [{ name: 'zero-shot (anchors)', accuracy: r.anchorZeroShot.accuracy }] : []),
  ];
  writeFileSync(r.files.plot, svgPlot(curves, { title, baseline: r.majority.accuracy, references }));
  return s;
}
