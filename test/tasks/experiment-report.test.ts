/** The label-efficiency report with any number of curves: table columns, Δs, notes, reference lines, SVG bands. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PALETTE, markdownTable, svgPlot, type Curve } from '../../src/tasks/experiment-report.ts';

const curves: Curve[] = [
  { name: 'pre-trained', points: [{ labels: 16, mean: 0.6, std: 0.02, n: 3 }, { labels: 64, mean: 0.7, std: 0.01, n: 3 }, { labels: 256, mean: 0.8, std: 0, n: 3 }] },
  { name: 'TF-IDF + LR', color: '#2ca02c', points: [{ labels: 16, mean: 0.55, std: 0.03, n: 3 }, { labels: 64, mean: 0.62, std: 0.02, n: 3 }, { labels: 256, mean: 0.81, std: 0.01, n: 3 }] },
  { name: 'from scratch', color: '#d62728', points: [{ labels: 16, mean: 0.5, std: 0.01, n: 3 }, { labels: 64, mean: 0.52, std: 0.04, n: 3 }] },
  { name: 'stacked', color: '#9467bd', extra: true, points: [{ labels: 64, mean: 0.75, std: 0.02, n: 3 }] },
];

test('table: a column per curve, Δ of the first vs each compared curve, "—" for a missing point, notes and references', () => {
  const md = markdownTable(curves, { label: 'negative', accuracy: 0.493 }, {
    notes: new Map([[16, 'probe'], [64, 'prompt']]),
    notesHeader: 'pre-trained method',
    references: [{ name: 'Zero-shot (calibrated)', accuracy: 0.521 }],
  });
  const lines = md.trimEnd().split('\n');
  assert.equal(lines[0], '| labels | pre-trained accuracy (%) | TF-IDF + LR accuracy (%) | from scratch accuracy (%) | stacked accuracy (%) | Δ vs TF-IDF + LR (points) | Δ vs from scratch (points) | pre-trained method |');
  assert.equal(lines[1], '|---:|---:|---:|---:|---:|---:|---:|---|');
  assert.equal(lines[2], '| 16 | 60.0 ± 2.0 | 55.0 ± 3.0 | 50.0 ± 1.0 | — | +5.0 | +10.0 | probe |');
  assert.equal(lines[3], '| 64 | 70.0 ± 1.0 | 62.0 ± 2.0 | 52.0 ± 4.0 | 75.0 ± 2.0 | +8.0 | +18.0 | prompt |');
  assert.equal(lines[4], '| 256 | 80.0 ± 0.0 | 81.0 ± 1.0 | — | — | -1.0 | — | — |');
  assert.equal(lines[6], 'Majority-class baseline (always "negative"): 49.3%.');
  assert.equal(lines[7], 'Zero-shot (calibrated): 52.1%.');
  // Chosen Δs, notes as a plain object.
  const custom = markdownTable(curves.slice(0, 3), undefined, { deltas: [['TF-IDF + LR', 'from scratch']], notes: { 16: 'lpft' } }).split('\n');
  assert.equal(custom[0], '| labels | pre-trained accuracy (%) | TF-IDF + LR accuracy (%) | from scratch accuracy (%) | Δ TF-IDF + LR − from scratch (points) | method |');
  assert.equal(custom[2], '| 16 | 60.0 ± 2.0 | 55.0 ± 3.0 | 50.0 ± 1.0 | +5.0 | lpft |');
  assert.throws(() => markdownTable(curves, undefined, { deltas: [['pre-trained', 'nope']] }), /no curve named "nope"/);
  // Two curves: the original layout, one "Δ (points)" column.
  assert.match(markdownTable(curves.slice(0, 2)), /\| labels \| pre-trained accuracy \(%\) \| TF-IDF \+ LR accuracy \(%\) \| Δ \(points\) \|\n\|---:\|---:\|---:\|---:\|\n\| 16 \| 60\.0 ± 2\.0 \| 55\.0 ± 3\.0 \| \+5\.0 \|/);
});

test('plot: a ±std band per multi-point curve, dashed extra curve, majority and reference lines in the legend', () => {
  const svg = svgPlot(curves, { title: 'T', baseline: 0.493, references: [{ name: 'zero-shot', accuracy: 0.521, color: '#bcbd22' }], width: 640, height: 420 });
  // The y range covers 40 % … 90 %: 10 % steps, six grid labels.
  for (const t of ['40%', '50%', '60%', '70%', '80%', '90%']) assert.ok(svg.includes(`>${t}</text>`), t);
  const bands = [...svg.matchAll(/<polygon points="([^"]+)" fill="([^"]+)" fill-opacity="0.15"/g)];
  assert.deepEqual(bands.map((b) => b[2]), [PALETTE[0], '#2ca02c', '#d62728'], 'one band per curve with ≥ 2 points, default colour from the palette');
  // Plot area y: 364 … 44 for 40 % … 90 % (640 px per unit); the pre-trained band at 16 labels spans 62 % (y 223.2) to 58 % (y 248.8).
  const pts = bands[0]![1].split(' ');
  assert.equal(pts.length, 6);
  assert.equal(pts[0]!.split(',')[1], '223.2');
  assert.equal(pts[5]!.split(',')[1], '248.8');
  // x: log10 16 … log10 256 padded by a quarter decade on 64 … 616: 16 labels at 64 + 552·0.25/(log10 256 − log10 16 + 0.5) = 145.0.
  assert.equal(pts[0]!.split(',')[0], '145.0');
  assert.equal(pts[5]!.split(',')[0], '145.0');
  assert.match(svg, /<polyline points="[^"]+" fill="none" stroke="#9467bd" stroke-width="2" stroke-dasharray="5 3"\/>/);
  // The one-point stacked curve gets an error bar instead of a band: 73 % (y 152.8) to 77 % (y 127.2).
  assert.match(svg, /<line x1="([\d.]+)" y1="152\.8" x2="\1" y2="127\.2" stroke="#9467bd"\/>/);
  assert.match(svg, /stroke="#888" stroke-dasharray="6 4"/);
  assert.match(svg, /stroke="#bcbd22" stroke-dasharray="2 3"/);
  for (const name of ['pre-trained', 'TF-IDF + LR', 'from scratch', 'stacked', 'majority class', 'zero-shot']) assert.ok(svg.includes(`>${name}</text>`), name);
  assert.equal((svg.match(/<svg /g) ?? []).length, 1);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});
