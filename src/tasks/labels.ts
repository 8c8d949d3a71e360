/**
 * Stratified subsampling to N labelled examples and seeded
 * train/val/test splits. Everything here is a pure function of its inputs and the seed.
 */
import { Rng, mix32 } from '../util/random.ts';

/** Fisher–Yates with a seeded stream: the same seed gives the same order on every machine. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rng = new Rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function byClass<T>(items: readonly T[], labelOf: (x: T) => string): Map<string, number[]> {
  const classes = new Map<string, number[]>();
  items.forEach((x, i) => {
    const l = labelOf(x);
    const list = classes.get(l);
    if (list) list.push(i);
    else classes.set(l, [i]);
  });
  return new Map([...classes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * n examples whose class proportions match the full set's (largest-remainder rounding; every class
 * gets at least one when n ≥ #classes). Each class is shuffled by its own seeded stream and its
 * quota taken from the front, so for one seed a smaller sample is (almost always) a subset of a
 * larger one — label-efficiency curves then add labels rather than redraw them.
 */
export function stratifiedSample<T>(items: readonly T[], n: number, labelOf: (x: T) => string, seed: number): T[] {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`stratifiedSample: n must be a positive integer, got ${n}`);
  if (n >= items.length) return shuffled(items, seed);
  const classes = [...byClass(items, labelOf)];
  const total = items.length;
  const ideal = classes.map(([, idx]) => (n * idx.length) / total);
  const quota = ideal.map(Math.floor);
  let left = n - quota.reduce((a, b) => a + b, 0);
  const order = classes.map((_, c) => c).sort((a, b) => ideal[b]! - quota[b]! - (ideal[a]! - quota[a]!) || classes[b]![1].length - classes[a]![1].length || a - b);
  for (const c of order) if (left > 0) quota[c]!++, left--;
  if (n >= classes.length) {
    for (let c = 0; c < quota.length; c++) {
      if (quota[c]! > 0) continue;
      const donor = quota.indexOf(Math.max(...quota));
      quota[donor]!--;
      quota[c] = 1;
    }
  }
  const chosen: T[] = [];
  classes.forEach(([, idx], c) => {
    const perm = shuffled(idx, mix32(seed ^ mix32(c + 1)));
    for (let k = 0; k < quota[c]!; k++) chosen.push(items[perm[k]!]!);
  });
  return shuffled(chosen, seed);
}

export interface SplitOptions<T> {
  /** Fractions of the examples for validation and test (default 0.1 each). */
  val?: number;
  test?: number;
  seed?: number;
  /** Examples with the same group key (e.g. a document id) stay together in one split. */
  groupOf?: (x: T) => string;
  /** Without groups: cut every class in the same proportions. */
  stratifyBy?: (x: T) => string;
}

export interface Splits<T> {
  train: T[];
  val: T[];
  test: T[];
}

/** Disjoint train/val/test splits, deterministic for a seed; items keep their original order inside each split. */
export function splitDataset<T>(items: readonly T[], options: SplitOptions<T> = {}): Splits<T> {
  const val = options.val ?? 0.1;
  const test = options.test ?? 0.1;
  const seed = options.seed ?? 0;
  if (!(val >= 0 && test >= 0 && val + test < 1)) throw new RangeError(`splitDataset: val (${val}) and test (${test}) must be ≥ 0 with val + test < 1`);
  const assign = new Int8Array(items.length); // 0 train, 1 val, 2 test
  if (options.stratifyBy && !options.groupOf) {
    let c = 0;
    for (const [, idx] of byClass(items, options.stratifyBy)) {
      const perm = shuffled(idx, mix32(seed ^ mix32(++c)));
      const nTest = Math.round(test * idx.length);
      const nVal = Math.round(val * idx.length);
      perm.forEach((i, k) => (assign[i] = k < nTest ? 2 : k < nTest + nVal ? 1 : 0));
    }
  } else {
    const groups = new Map<string, number[]>();
    items.forEach((x, i) => {
      const key = options.groupOf ? options.groupOf(x) : String(i);
      const g = groups.get(key);
      if (g) g.push(i);
      else groups.set(key, [i]);
    });
    const keys = shuffled([...groups.keys()].sort(), seed);
    const targetTest = Math.round(test * items.length);
    const targetVal = Math.round(val * items.length);
    let nTest = 0;
    let nVal = 0;
    for (const key of keys) {
      const idx = groups.get(key)!;
      const to = nTest < targetTest ? 2 : nVal < targetVal ? 1 : 0;
      if (to === 2) nTest += idx.length;
      if (to === 1) nVal += idx.length;
      for (const i of idx) assign[i] = to;
    }
  }
  const out: Splits<T> = { train: [], val: [], test: [] };
  items.forEach((x, i) => (assign[i] === 2 ? out.test : assign[i] === 1 ? out.val : out.train).push(x));
  return out;
}
