/**
 * Reporting for the label-efficiency experiment: mean ± sample standard deviation over seeds,
 *
 *   mean = Σ a_i / n,   std = sqrt( Σ (a_i − mean)² / (n − 1) )   (0 for a single seed)
 *
 * a Markdown table and a hand-written SVG plot (accuracy vs number of labels on a log x axis, one curve
 * per initialisation with ±1 std error bars, the majority-class baseline dashed).
 */

export interface CurvePoint {
  labels: number;
  mean: number;
  std: number;
  n: number;
}

export interface Curve {
  name: string;
  color: string;
  points: CurvePoint[];
}

export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std };
}

const pct = (x: number) => (100 * x).toFixed(1);

/** | labels | curve 1 | curve 2 | Δ | with accuracies in % as mean ± std. */
export function markdownTable(curves: readonly [Curve, Curve], baseline?: { label: string; accuracy: number }): string {
  const [a, b] = curves;
  const rows = a.points.map((p, i) => {
    const q = b.points[i]!;
    const delta = p.mean - q.mean;
    return `| ${p.labels} | ${pct(p.mean)} ± ${pct(p.std)} | ${pct(q.mean)} ± ${pct(q.std)} | ${delta >= 0 ? '+' : ''}${pct(delta)} |`;
  });
  const lines = [
    `| labels | ${a.name} accuracy (%) | ${b.name} accuracy (%) | Δ (points) |`,
    '|---:|---:|---:|---:|',
    ...rows,
  ];
  if (baseline) lines.push('', `Majority-class baseline (always "${baseline.label}"): ${pct(baseline.accuracy)}%.`);
  return lines.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The plot as a standalone SVG document. */
export function svgPlot(curves: readonly Curve[], o: { title: string; baseline?: number; width?: number; height?: number }): string {
  const W = o.width ?? 640;
  const H = o.height ?? 420;
  const m = { left: 64, right: 24, top: 44, bottom: 56 };
  const xs = [...new Set(curves.flatMap((c) => c.points.map((p) => p.labels)))].sort((a, b) => a - b);
  if (xs.length === 0) throw new RangeError('svgPlot: no points');
  // Log x axis, padded by a quarter decade on each side so the end points are not on the frame.
  const lx0 = Math.log10(xs[0]!) - 0.25;
  const lx1 = Math.log10(xs[xs.length - 1]!) + 0.25;
  const lows = curves.flatMap((c) => c.points.map((p) => p.mean - p.std));
  const highs = curves.flatMap((c) => c.points.map((p) => p.mean + p.std));
  if (o.baseline !== undefined) lows.push(o.baseline);
  const y0 = Math.max(0, Math.floor(Math.min(...lows) * 10) / 10);
  const y1 = Math.min(1, Math.ceil(Math.max(...highs) * 10) / 10);
  const top = y1 > y0 ? y1 : y0 + 0.1;
  const px = (labels: number) => m.left + ((Math.log10(labels) - lx0) / (lx1 - lx0)) * (W - m.left - m.right);
  const py = (acc: number) => H - m.bottom - ((acc - y0) / (top - y0)) * (H - m.top - m.bottom);
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
  if (o.baseline !== undefined) {
    out.push(`<line x1="${m.left}" y1="${f(py(o.baseline))}" x2="${W - m.right}" y2="${f(py(o.baseline))}" stroke="#888" stroke-dasharray="6 4"/>`);
  }
  curves.forEach((c) => {
    const pts = c.points.map((p) => `${f(px(p.labels))},${f(py(p.mean))}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${c.color}" stroke-width="2"/>`);
    for (const p of c.points) {
      const x = px(p.labels);
      out.push(`<line x1="${f(x)}" y1="${f(py(p.mean - p.std))}" x2="${f(x)}" y2="${f(py(p.mean + p.std))}" stroke="${c.color}"/>`);
      for (const y of [p.mean - p.std, p.mean + p.std]) out.push(`<line x1="${f(x - 4)}" y1="${f(py(y))}" x2="${f(x + 4)}" y2="${f(py(y))}" stroke="${c.color}"/>`);
      out.push(`<circle cx="${f(x)}" cy="${f(py(p.mean))}" r="3.5" fill="${c.color}"/>`);
    }
  });
  const legend = [...curves.map((c) => ({ name: c.name, color: c.color, dash: '' })), ...(o.baseline !== undefined ? [{ name: 'majority class', color: '#888', dash: ' stroke-dasharray="6 4"' }] : [])];
  legend.forEach((l, i) => {
    const y = m.top + 16 + i * 18;
    out.push(`<line x1="${m.left + 12}" y1="${y}" x2="${m.left + 36}" y2="${y}" stroke="${l.color}" stroke-width="2"${l.dash}/>`);
    out.push(`<text x="${m.left + 42}" y="${y + 4}">${esc(l.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
