// Training dashboard: polls /v1/run/metrics (incremental, by byte offset) and draws uPlot charts.
const $ = (id) => document.getElementById(id);
const CHARTS = [
  { title: 'loss', series: [['loss', '#2563eb'], ['val_loss', '#dc2626']] },
  { title: 'learning rate', series: [['lr', '#059669']] },
  { title: 'gradient norm', series: [['grad_norm', '#d97706']] },
  { title: 'tokens / s', series: [['tokens_per_s', '#7c3aed']] },
];
const TRAIN_KEYS = new Set(['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'elapsed_s', 'val_loss', 'samples', 'sample']);

let offset = 0;
let started = false;
const rows = new Map(); // step → merged record
const evals = new Map(); // metric → { step, value }
let samples = [];
const plots = [];

function series(key) {
  const steps = [...rows.keys()].sort((a, b) => a - b);
  return [steps, steps.map((s) => rows.get(s)[key] ?? null)];
}

function ensurePlots() {
  if (plots.length) return;
  for (const c of CHARTS) {
    const div = document.createElement('div');
    div.className = 'card chart';
    div.dataset.metric = c.title;
    $('dash-charts').append(div);
    const opts = {
      title: c.title, width: 360, height: 200,
      scales: { x: { time: false } },
      // uPlot's default tick labels round small values (lr ~1e-4) to the same string; show 3 significant digits.
      axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => (v === 0 ? '0' : Math.abs(v) < 0.01 || Math.abs(v) >= 1e5 ? v.toExponential(1) : +v.toPrecision(3))) }],
      series: [{ label: 'step' }, ...c.series.map(([label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: true }))],
    };
    plots.push({ c, plot: new uPlot(opts, [[], ...c.series.map(() => [])], div) });
  }
}

function render() {
  ensurePlots();
  for (const { c, plot } of plots) {
    const [steps] = series('step');
    plot.setData([steps, ...c.series.map(([key]) => series(key)[1])]);
  }
  const table = $('dash-evals');
  table.replaceChildren(...[...evals].map(([k, { step, value }]) => {
    const tr = document.createElement('tr');
    for (const t of [k, typeof value === 'number' ? value.toPrecision(4) : String(value), `step ${step}`]) {
      const td = document.createElement('td');
      td.textContent = t;
      tr.append(td);
    }
    return tr;
  }));
  if (samples.length) {
    $('dash-samples').classList.remove('muted');
    $('dash-samples').replaceChildren(...samples.slice(-5).reverse().map((s) => {
      const div = document.createElement('div');
      div.className = 'sample';
      div.textContent = `[step ${s.step}] ${s.prompt ?? ''}▸${s.text}`;
      return div;
    }));
  }
}

async function poll() {
  try {
    const res = await (window.primerFetch ?? fetch)(`/v1/run/metrics?offset=${offset}`);
    const json = await res.json();
    if (!res.ok) {
      $('dash-status').textContent = json.error?.message ?? res.statusText;
      return;
    }
    offset = json.offset;
    for (const r of json.records) {
      if (typeof r.step !== 'number') continue;
      rows.set(r.step, { ...rows.get(r.step), ...r });
      for (const [k, v] of Object.entries(r)) if (!TRAIN_KEYS.has(k) && (typeof v === 'number' || typeof v === 'string')) evals.set(k, { step: r.step, value: v });
      if (typeof r.val_loss === 'number') evals.set('val_loss', { step: r.step, value: r.val_loss });
      for (const s of r.samples ?? (r.sample ? [r.sample] : [])) samples.push(typeof s === 'string' ? { step: r.step, text: s } : { step: r.step, ...s });
    }
    const last = Math.max(...rows.keys(), 0);
    $('dash-status').textContent = `${json.run} — ${rows.size} steps logged, last step ${last}`;
    render();
  } catch (e) {
    $('dash-status').textContent = `cannot read metrics: ${e.message}`;
  }
}

window.addEventListener('primer-tab', (e) => {
  if (e.detail !== 'dashboard' || started) return;
  started = true;
  poll();
  setInterval(poll, 2000);
});
if (location.hash === '#dashboard') window.dispatchEvent(new CustomEvent('primer-tab', { detail: 'dashboard' }));
