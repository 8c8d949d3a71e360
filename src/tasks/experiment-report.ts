/**
 * Reporting for the label-efficiency experiment: mean ± sample standard deviation over seeds,
 *
 *   mean = Σ a_i / n,   std = sqrt( Σ (a_i − mean)² / (n − 1) )   (0 for a single seed)
 *
 * a Markdown table (one column per curve, Δ columns, an optional note per budget such as the few-label
 * method the pre-trained curve used) and a hand-written SVG plot: accuracy vs number of labels on a log
 * x axis, one line per curve with a shaded ±1 std band, "extra" curves (e.g. stacked features) dashed,
 * and horizontal reference lines (majority class, zero-shot) that do not depend on the budget.
 */

export interface CurvePoint {
  labels: number;
  mean: number;
  std: number;
  n: number;
}

export interface Curve {
  name: string;
  /** Default: the next colour of PALETTE. */
  color?: string;
  points: CurvePoint[];
  /**
   * A row reported for information, not one of the compared curves (e.g. pre-trained + TF-IDF features
   * stacked): drawn dashed, and no default Δ column.
   */
  extra?: boolean;
}

/** A budget-independent accuracy: majority class, zero-shot prompting. */
export interface ReferenceLine {
  name: string;
  accuracy: number;
  color?: string;
}

export const PALETTE = ['#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'] as const;
const REFERENCE_COLORS = ['#555', '#bcbd22', '#7f7f7f', '#9edae5'] as const;

export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std };
}

const pct = (x: number) => (100 * x).toFixed(1);
const colorOf = (c: Curve, i: number) => c.color ?? PALETTE[i % PALETTE.length]!;

export interface TableOptions {
  /**
   * Δ columns, each [a, b] by curve name: a − b in points. Default: the first curve minus each other
   * non-extra curve (with two curves: one column headed "Δ (points)").
   */
  deltas?: ReadonlyArray<readonly [string, string]>;
  /** A note per budget, e.g. which few-label method the pre-trained curve used there. */
  notes?: ReadonlyMap<number, string> | Readonly<Record<number, string>>;
  /** Header of the notes column (default "method"). */
  notesHeader?: string;
  /** Budget-independent lines, listed under the table after the majority baseline. */
  references?: readonly ReferenceLine[];
}

/** The sorted budgets of all curves. */
function budgetsOf(curves: readonly Curve[]): number[] {
  return [...new Set(curves.flatMap((c) => c.points.map((p) => p.labels)))].sort((a, b) => a - b);
}

/**
 * | labels | curve … | Δ … | note | with accuracies in % as mean ± std ("—" where a curve has no
 * point at that budget), then the majority baseline and the reference lines.
 */
export function markdownTable(curves: readonly Curve[], baseline?: { label: string; accuracy: number }, options: TableOptions = {}): string {
  if (curves.length === 0) throw new RangeError('markdownTable: no curves');
  const byName = (name: string): Curve => {
    const c = curves.find((x) => x.name === name);
    if (!c) throw new RangeError(`markdownTable: no curve named ${JSON.stringify(name)} (curves: ${curves.map((x) => x.name).join(', ')})`);
    return c;
  };
  const deltas = (options.deltas ?? curves.slice(1).filter((c) => !c.extra).map((c) => [curves[0]!.name, c.name] as const)).map(([a, b]) => [byName(a), byName(b)] as const);
  const notes = options.notes instanceof Map ? options.notes : new Map(Object.entries(options.notes ?? {}).map(([k, v]) => [Number(k), v]));
  const hasNotes = options.notes !== undefined;
  const at = (c: Curve, n: number) => c.points.find((p) => p.labels === n);
  const rows = budgetsOf(curves).map((n) => {
    const cells = curves.map((c) => {
      const p = at(c, n);
      return p ? `${pct(p.mean)} ± ${pct(p.std)}` : '—';
    });
    for (const [a, b] of deltas) {
      const [p, q] = [at(a, n), at(b, n)];
      cells.push(p && q ? `${p.mean - q.mean >= 0 ? '+' : ''}${pct(p.mean - q.mean)}` : '—');
    }
    if (hasNotes) cells.push(notes.get(n) ?? '—');
    return `| ${n} | ${cells.join(' | ')} |`;
  });
  const deltaHeader = deltas.length === 1 && curves.length === 2 ? ['Δ (points)'] : deltas.map(([a, b]) => (a === curves[0] ? `Δ vs ${b.name} (points)` : `Δ ${a.name} − ${b.name} (points)`));
  const header = ['labels', ...curves.map((c) => `${c.name} accuracy (%)`), ...deltaHeader, ...(hasNotes ? [options.notesHeader ?? 'method'] : [])];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (hasNotes && i === header.length - 1 ? '---|' : '---:|')).join('')}`, ...rows];
  const below: string[] = [];
  if (baseline) below.push(`Majority-class baseline (always "${baseline.label}"): ${pct(baseline.accuracy)}%.`);
  for (const r of options.references ?? []) below.push(`${r.name}: ${pct(r.accuracy)}%.`);
  if (below.length) lines.push('', ...below);
  return lines.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface PlotOptions {
  title: string;
  /** The majority-class accuracy, drawn as a grey dashed line named "majority class". */
  baseline?: number;
  /** More horizontal lines (zero-shot, …). */
  references?: readonly ReferenceLine[];
  width?: number;
  height?: number;
}

/** The plot as a standalone SVG document. */
export function svgPlot(curves: readonly Curve[], o: PlotOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 420;
  const m = { left: 64, right: 24, top: 44, bottom: 56 };
  const xs = budgetsOf(curves);
  if (xs.length === 0) throw new RangeError('svgPlot: no points');
  const refs: Array<ReferenceLine & { dash: string }> = [
    ...(o.baseline !== undefined ? [{ name: 'majority class', accuracy: o.baseline, color: '#888', dash: '6 4' }] : []),
    ...(o.references ?? []).map((r, i) => ({ ...r, color: r.color ?? REFERENCE_COLORS[i % REFERENCE_COLORS.length]!, dash: '2 3' })),
  ];
  // Log x axis, padded by a quarter decade on each side so the end points are not on the frame.
  const lx0 = Math.log10(xs[0]!) - 0.25;
  const lx1 = Math.log10(xs[xs.length - 1]!) + 0.25;
  const lows = [...curves.flatMap((c) => c.points.map((p) => p.mean - p.std)), ...refs.map((r) => r.accuracy)];
  const highs = [...curves.flatMap((c) => c.points.map((p) => p.mean + p.std)), ...refs.map((r) => r.accuracy)];
  const y0 = Math.max(0, Math.floor(Math.min(...lows) * 10) / 10);
  const y1 = Math.min(1, Math.ceil(Math.max(...highs) * 10) / 10);
  const top = y1 > y0 ? y1 : y0 + 0.1;
  const px = (labels: number) => m.left + ((Math.log10(labels) - lx0) / (lx1 - lx0)) * (W - m.left - m.right);
  const py = (acc: number) => H - m.bottom - ((Math.min(top, Math.max(y0, acc)) - y0) / (top - y0)) * (H - m.top - m.bottom);
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(o.title)}</text>`,
  ];
  for (let k = 0; k <= Math.round((top - y0) * 10); k++) {
    const acc = y0 + k / 10;
    out.push(`<line x1="${m.left}" y1="${f(py(acc))}" x2="${W - m.right}" y2="${f(py(acc))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${f(py(acc) + 4)}" text-anchor="end">${(acc * 100).toFixed(0)}%</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${f(px(x))}" y1="${m.top}" x2="${f(px(x))}" y2="${H - m.bottom}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${f(px(x))}" y="${H - m.bottom + 18}" text-anchor="middle">${x}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${H - m.top - m.bottom}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 14}" text-anchor="middle">labelled training examples (log scale)</text>`);
  out.push(`<text x="16" y="${(m.top + H - m.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(m.top + H - m.bottom) / 2})">test accuracy</text>`);
  for (const r of refs) out.push(`<line x1="${m.left}" y1="${f(py(r.accuracy))}" x2="${W - m.right}" y2="${f(py(r.accuracy))}" stroke="${r.color}" stroke-dasharray="${r.dash}"/>`);
  // Bands first, so that no band covers another curve's line.
  curves.forEach((c, i) => {
    if (c.points.length < 2) return;
    const upper = c.points.map((p) => `${f(px(p.labels))},${f(py(p.mean + p.std))}`);
    const lower = c.points.map((p) => `${f(px(p.labels))},${f(py(p.mean - p.std))}`).reverse();
    out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${colorOf(c, i)}" fill-opacity="0.15" stroke="none"/>`);
  });
  curves.forEach((c, i) => {
    const color = colorOf(c, i);
    const pts = c.points.map((p) => `${f(px(p.labels))},${f(py(p.mean))}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"${c.extra ? ' stroke-dasharray="5 3"' : ''}/>`);
    for (const p of c.points) {
      const x = px(p.labels);
      // A lone point has no band: show its ±std as an error bar.
      if (c.points.length < 2) out.push(`<line x1="${f(x)}" y1="${f(py(p.mean - p.std))}" x2="${f(x)}" y2="${f(py(p.mean + p.std))}" stroke="${color}"/>`);
      out.push(`<circle cx="${f(x)}" cy="${f(py(p.mean))}" r="3.5" fill="${color}"/>`);
    }
  });
  const legend = [
    ...curves.map((c, i) => ({ name: c.name, color: colorOf(c, i), dash: c.extra ? ' stroke-dasharray="5 3"' : '' })),
    ...refs.map((r) => ({ name: r.name, color: r.color!, dash: ` stroke-dasharray="${r.dash}"` })),
  ];
  const longest = Math.max(...legend.map((l) => l.name.length));
  out.push(`<rect x="${m.left + 6}" y="${m.top + 6}" width="${f(44 + 6.5 * longest)}" height="${legend.length * 18 + 6}" fill="white" fill-opacity="0.85" stroke="#ddd"/>`);
  legend.forEach((l, i) => {
    const y = m.top + 16 + i * 18;
    out.push(`<line x1="${m.left + 12}" y1="${y}" x2="${m.left + 36}" y2="${y}" stroke="${l.color}" stroke-width="2"${l.dash}/>`);
    out.push(`<text x="${m.left + 42}" y="${y + 4}">${esc(l.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
