/**
 * `npm run bench:tfidf`: Primer's TF-IDF + logistic-regression baseline (src/tasks/tfidf.ts) against
 * scikit-learn (../shared/bench/ref_tfidf.py, Debian: apt-get install -y python3-sklearn) on the same
 * files. For each built-in task, budget and seed it draws the label sample exactly as the
 * label-efficiency experiment does (stratifiedSample of the train split with the seed), takes the same
 * validation subset for choosing C (evaluationSets with valExamples 100) and the full test split, writes
 * them as CSV, and runs both implementations on those files. Acceptance: within 1.5 accuracy points.
 *
 * Options: --tasks sentiment,spam,genre (default sentiment), --labels 16,64,256,1024 (plus "all" for the
 * whole train split), --seeds 3, --python /usr/bin/python3, --no-report (no BENCHMARKS.md section),
 * --merge (keep the rows of bench/results/tfidf-check.json that this run does not redo: a slow grid can be
 * run in pieces), --report-only (rewrite the BENCHMARKS.md section from that file). The results file is
 * rewritten after every run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadBuiltinTask, type ClassificationTask } from '../src/tasks/builtin.ts';
import { readTextExamples, type TextExample } from '../src/tasks/data.ts';
import { evaluationSets } from '../src/tasks/experiment.ts';
import { stratifiedSample } from '../src/tasks/labels.ts';
import { tfidfBaseline } from '../src/tasks/tfidf.ts';
import { repoRoot, writeBenchmarkSection, writeResults } from './report.ts';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: 'sentiment' }, labels: { type: 'string', default: '16,64,256,1024' }, seeds: { type: 'string', default: '3' },
    python: { type: 'string', default: '/usr/bin/python3' }, 'no-report': { type: 'boolean', default: false }, merge: { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
  },
});
const REF = join(repoRoot, '..', 'shared', 'bench', 'ref_tfidf.py');
const TOLERANCE = 1.5; // accuracy points
const seeds = Number(args.seeds);

/** Every field quoted ("" inside), so texts with commas, quotes and newlines survive both readers. */
function writeCsv(path: string, rows: readonly TextExample[]): void {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(path, ['text,label', ...rows.map((r) => `${q(r.text)},${q(r.label!)}`)].join('\n') + '\n');
}

interface Row {
  task: string;
  labels: number;
  seed: number;
  primer: { accuracy: number; macroF1: number; C: number; seconds: number };
  sklearn: { accuracy: number; macro_f1: number; C: number; seconds: number };
  diff: number;
}

const resultsPath = join(repoRoot, 'bench', 'results', 'tfidf-check.json');
const rows: Row[] = (args.merge || args['report-only']) && existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as { rows: Row[] }).rows : [];
const save = () => writeResults('tfidf-check', { rows, worst: Math.max(...rows.map((r) => Math.abs(r.diff))), tolerance: TOLERANCE });
const dir = mkdtempSync(join(tmpdir(), 'primer-tfidf-'));
try {
  for (const name of args['report-only'] ? [] : args.tasks.split(',')) {
    const task = loadBuiltinTask(name) as ClassificationTask;
    if (task.kind !== 'classification') throw new Error(`${name} is not a classification task`);
    const { earlyStopping: val, scored: test } = evaluationSets(task, 100, 'test');
    writeCsv(join(dir, `${name}-val.csv`), val);
    writeCsv(join(dir, `${name}-test.csv`), test);
    const budgets = args.labels.split(',').map((s) => (s === 'all' ? task.train.length : Number(s)));
    for (const n of budgets) {
      for (let seed = 0; seed < (n >= task.train.length ? 1 : seeds); seed++) {
        const train = join(dir, `${name}-${n}-${seed}.csv`);
        writeCsv(train, stratifiedSample(task.train, n, (x) => x.label!, seed));
        const files = { train, val: join(dir, `${name}-val.csv`), test: join(dir, `${name}-test.csv`) };
        let t = performance.now();
        // Both sides read the same files (Primer through the readers of `primer finetune`).
        const p = tfidfBaseline(readTextExamples(files.train), readTextExamples(files.val), readTextExamples(files.test));
        const primer = { accuracy: p.accuracy, macroF1: p.macroF1, C: p.C, seconds: (performance.now() - t) / 1000 };
        t = performance.now();
        const py = spawnSync(args.python, [REF, '--train', files.train, '--val', files.val, '--test', files.test], { encoding: 'utf8' });
        if (py.status !== 0) throw new Error(`ref_tfidf.py failed (${py.status}): ${py.stderr || py.error}`);
        const sklearn = { ...(JSON.parse(py.stdout.trim().split('\n').pop()!) as { accuracy: number; macro_f1: number; C: number }), seconds: (performance.now() - t) / 1000 };
        const row: Row = { task: name, labels: n, seed, primer, sklearn, diff: 100 * (primer.accuracy - sklearn.accuracy) };
        const old = rows.findIndex((r) => r.task === name && r.labels === n && r.seed === seed);
        if (old >= 0) rows.splice(old, 1);
        rows.push(row);
        // Tasks in order of first appearance, then budget and seed.
        const order = [...new Set(rows.map((r) => r.task))];
        rows.sort((a, b) => order.indexOf(a.task) - order.indexOf(b.task) || a.labels - b.labels || a.seed - b.seed);
        save();
        console.log(`${name} ${String(n).padStart(5)} seed ${seed}: Primer ${(100 * primer.accuracy).toFixed(1)}% (C ${primer.C}, ${primer.seconds.toFixed(1)}s)  scikit-learn ${(100 * sklearn.accuracy).toFixed(1)}% (C ${sklearn.C}, ${sklearn.seconds.toFixed(1)}s)  Δ ${row.diff >= 0 ? '+' : ''}${row.diff.toFixed(2)}`);
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const pct = (x: number) => (100 * x).toFixed(1);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const table = [
  '| task | labels | seed | Primer acc. (%) | scikit-learn acc. (%) | Δ (points) | C Primer / sklearn | Primer macro-F1 / sklearn (%) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.task} | ${r.labels} | ${r.seed} | ${pct(r.primer.accuracy)} | ${pct(r.sklearn.accuracy)} | ${r.diff >= 0 ? '+' : ''}${r.diff.toFixed(2)} | ${r.primer.C} / ${r.sklearn.C} | ${pct(r.primer.macroF1)} / ${pct(r.sklearn.macro_f1)} |`),
].join('\n');
const groups = [...new Set(rows.map((r) => `${r.task} ${r.labels}`))].map((key) => {
  const g = rows.filter((r) => `${r.task} ${r.labels}` === key);
  return `| ${g[0]!.task} | ${g[0]!.labels} | ${g.length} | ${pct(mean(g.map((r) => r.primer.accuracy)))} | ${pct(mean(g.map((r) => r.sklearn.accuracy)))} |`;
});
const summary = ['| task | labels | seeds | Primer mean acc. (%) | scikit-learn mean acc. (%) |', '|---|---:|---:|---:|---:|', ...groups].join('\n');
const worst = Math.max(...rows.map((r) => Math.abs(r.diff)));
const verdict = `Largest difference ${worst.toFixed(2)} points over ${rows.length} runs: ${worst <= TOLERANCE ? 'within' : 'NOT within'} the ${TOLERANCE}-point acceptance.`;
console.log(`\n${table}\n\n${summary}\n\n${verdict}`);
save();
if (!args['no-report']) {
  const body = `TF-IDF (word 1–2-grams, sublinear tf, l2 rows) + L2 logistic regression, C from {0.1, 1, 10, 100} chosen on the
experiment's 100 early-stopping validation examples, trained on the experiment's stratified label samples (seeds 0..${Math.max(...rows.map((r) => r.seed))}; the whole train split, where listed, once)
and scored on the full test split (the same split the experiment scores): Primer's src/tasks/tfidf.ts (L-BFGS in TypeScript) against scikit-learn ${sklearnVersion()}
(\`../shared/bench/ref_tfidf.py\`) on the same CSV files. Wall times: bench/results/tfidf-check.json.

${summary}

${table}

${verdict}`;
  const command = args.merge || args['report-only'] ? 'npm run bench:tfidf -- [--tasks T] [--labels …] --merge, in pieces (see below)' : `npm run bench:tfidf -- --tasks ${args.tasks} --labels ${args.labels} --seeds ${seeds}`;
  writeBenchmarkSection('TF-IDF baseline check', command, body);
}

function sklearnVersion(): string {
  const r = spawnSync(args.python, ['-c', 'import sklearn; print(sklearn.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '(unknown version)';
}
