/**
 * The labelled data of the label-efficiency experiment: a built-in classification task (--task) or the
 * user's own file (--data), read by the readers of `primer finetune` (CSV/TSV/JSONL with --text-column /
 * --label-column). Without --val-data / --test-data, the missing splits are cut from --data with a seeded
 * stratified split of the built-ins' proportions: 10 % validation, 20 % test, the rest train.
 *
 * Complaints about the data name file, line and column: a missing column, an empty text or label (from
 * the readers), a single class, a validation/test label the train data never has, and (checkBudgets) a
 * label budget the train split cannot supply.
 */
import { basename, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { TaskDataError, readTextExamples, type TextExample } from './data.ts';
import { BUILTIN_TASKS, loadBuiltinTask } from './builtin.ts';
import { splitDataset, type Splits } from './labels.ts';
import { LabelMap } from '../models/labels.ts';

export const SPLIT_FRACTIONS = { val: 0.1, test: 0.2 } as const;

export interface ExperimentDataOptions {
  /** A built-in classification task (sentiment, spam, genre). Exclusive with data. */
  task?: string;
  /** A labelled CSV/TSV/JSONL file. */
  data?: string;
  /** Validation split from its own file (else cut from data). */
  valData?: string;
  /** Test split from its own file (else cut from data). */
  testData?: string;
  /** Default "text". */
  textColumn?: string;
  /** Second text of a pair (joined to the first by the baseline; see tfidf.ts exampleText). */
  textPairColumn?: string;
  /** Default "label". */
  labelColumn?: string;
  /** Seed of the built-in task's split or of the split of data (default 0). */
  splitSeed?: number;
}

/** Shaped like builtin.ts's ClassificationTask, with any name. */
export interface ExperimentData extends Splits<TextExample> {
  name: string;
  kind: 'classification';
  labels: LabelMap;
  /** Where the data came from, for the report. */
  source: string;
}

function read(path: string, flag: string, o: ExperimentDataOptions): TextExample[] {
  if (!existsSync(path)) throw new RangeError(`${flag}: ${path} does not exist`);
  return readTextExamples(path, { textColumn: o.textColumn, textPairColumn: o.textPairColumn, labelColumn: o.labelColumn ?? 'label' });
}

/** At least two classes, else an error at the first row's label. */
function checkClasses(examples: readonly TextExample[], file: string, labelColumn: string): void {
  const classes = new Set(examples.map((x) => x.label));
  if (classes.size >= 2) return;
  const first = examples[0]!;
  const at = first.where ?? { file, line: 1, column: 1 };
  throw new TaskDataError(at.file, at.line, at.column, `only one class (${JSON.stringify(first.label)}) in column "${labelColumn}" of all ${examples.length} rows; a classifier needs examples of at least two classes`);
}

/** Every label of a given validation/test file must occur in the train data (else: file, line, column). */
function checkKnown(examples: readonly TextExample[], labels: LabelMap): void {
  for (const x of examples) labels.id(x.label!, x.where);
}

export function loadExperimentData(o: ExperimentDataOptions): ExperimentData {
  const seed = o.splitSeed ?? 0;
  if (o.task !== undefined) {
    if (o.data !== undefined || o.valData !== undefined || o.testData !== undefined) throw new RangeError('experiment: --task and --data/--val-data/--test-data are exclusive: a built-in task or your own files');
    const t = loadBuiltinTask(o.task, { splitSeed: seed });
    if (t.kind !== 'classification') throw new RangeError(`experiment: task "${o.task}" is ${t.kind}; label efficiency needs a text classification task (${BUILTIN_TASKS.filter((n) => n !== 'pos').join(', ')}) or --data FILE`);
    return { name: t.name, kind: 'classification', labels: t.labels, source: t.source, train: t.train, val: t.val, test: t.test };
  }
  if (o.data === undefined) throw new RangeError(`experiment: --task NAME (${BUILTIN_TASKS.filter((n) => n !== 'pos').join(', ')}) or --data FILE is required`);
  const labelColumn = o.labelColumn ?? 'label';
  const file = basename(o.data);
  const all = read(o.data, '--data', o);
  checkClasses(all, file, labelColumn);
  const given = { val: o.valData !== undefined ? read(o.valData, '--val-data', o) : null, test: o.testData !== undefined ? read(o.testData, '--test-data', o) : null };
  // Fractions of data: only the splits not given as files are cut from it.
  const cut = splitDataset(all, { val: given.val ? 0 : SPLIT_FRACTIONS.val, test: given.test ? 0 : SPLIT_FRACTIONS.test, seed, stratifyBy: (x) => x.label! });
  const labels = LabelMap.fromLabels(cut.train.map((x) => x.label));
  if (labels.size < 2) checkClasses(cut.train, file, labelColumn);
  const val = given.val ?? cut.val;
  const test = given.test ?? cut.test;
  checkKnown(val, labels);
  checkKnown(test, labels);
  const parts = [`${resolve(o.data)} (${all.length} rows)`];
  if (o.valData) parts.push(`validation ${resolve(o.valData)}`);
  if (o.testData) parts.push(`test ${resolve(o.testData)}`);
  const split = [!given.val && `${SPLIT_FRACTIONS.val * 100}% validation`, !given.test && `${SPLIT_FRACTIONS.test * 100}% test`].filter(Boolean).join(' and ');
  if (split) parts.push(`${split} cut from it by a stratified split with seed ${seed}`);
  return { name: file, kind: 'classification', labels, source: parts.join('; '), train: cut.train, val, test };
}

/**
 * Every budget must be a positive integer no larger than the train split, and at least the number of
 * classes (a stratified sample then holds every class). The error points at the train split's last row
 * when the examples came from a file; `file` names the data otherwise.
 */
export function checkBudgets(budgets: readonly number[], train: readonly TextExample[], file: string): void {
  for (const n of budgets) if (!Number.isInteger(n) || n <= 0) throw new RangeError(`experiment: --labels must be positive integers, got ${budgets.join(',')}`);
  const largest = Math.max(...budgets);
  const classes = new Set(train.map((x) => x.label)).size;
  const smallest = Math.min(...budgets);
  const last = train.reduce<TextExample['where']>((w, x) => (x.where && (!w || x.where.line > w.line) ? x.where : w), undefined);
  const fail = (msg: string): never => {
    if (last) throw new TaskDataError(last.file, last.line, 1, msg);
    throw new RangeError(`${file}: ${msg}`);
  };
  if (largest > train.length) {
    fail(`${largest} labels requested (--labels ${budgets.join(',')}) but the train split has only ${train.length} examples${last ? ` (the data ends here; ${SPLIT_FRACTIONS.val * 100}% validation and ${SPLIT_FRACTIONS.test * 100}% test are held out unless given as files)` : ''}`);
  }
  if (smallest < classes) fail(`a budget of ${smallest} labels is smaller than the ${classes} classes; every class needs at least one labelled example (use --labels ≥ ${classes})`);
}
