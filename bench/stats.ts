/**
 * Small-sample statistics for multi-seed benchmarks (bench/bert.ts): mean ± sample std, Mann–Whitney U
 * with an exact permutation p (ties allowed), Welch's t-test, Wilcoxon's signed-rank test (exact) and
 * the sign test. All p-values are two-sided.
 *
 * Exactness: with 5 seeds per arm a normal approximation is far off, so the rank tests count the
 * permutation distribution exactly. Ranks are doubled (midranks become integers), which lets a
 * dynamic programme over the pooled items count every rank-sum without enumerating subsets.
 */

export function mean(x: readonly number[]): number {
  return x.reduce((s, v) => s + v, 0) / x.length;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function std(x: readonly number[]): number {
  if (x.length < 2) return 0;
  const m = mean(x);
  return Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1));
}

/** 1-based midranks of `x` (tied values share the mean of their ranks); Infinity ranks last. */
export function midranks(x: readonly number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => (a[0] === b[0] ? 0 : a[0] < b[0] ? -1 : 1));
  const ranks = new Array<number>(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

function checkSample(name: string, x: readonly number[]): void {
  if (x.length === 0) throw new RangeError(`${name}: empty sample`);
  if (x.some((v) => Number.isNaN(v))) throw new RangeError(`${name}: sample contains NaN`);
}

export interface MannWhitney {
  /** U of the first sample: #pairs (a_i, b_j) with a_i > b_j, ties counting ½. */
  u: number;
  /** Two-sided exact permutation p: P(|R − E R| ≥ |r − E R|) over all splits of the pooled ranks. */
  p: number;
}

/**
 * Mann–Whitney U test of `a` against `b`. Values may be ±Infinity (e.g. "never escaped"), which tie
 * with each other. The p-value is the exact permutation distribution of the rank sum given the ties.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): MannWhitney {
  checkSample('mannWhitneyU a', a);
  checkSample('mannWhitneyU b', b);
  const n1 = a.length;
  const n = n1 + b.length;
  const ranks2 = midranks([...a, ...b]).map((r) => Math.round(2 * r)); // doubled midranks are integers
  const obs = ranks2.slice(0, n1).reduce((s, r) => s + r, 0);
  const center = n1 * (n + 1); // 2·E[R]
  const maxSum = ranks2.reduce((s, r) => s + r, 0);
  // count[k][s] = #subsets of the first i items with k members and doubled rank sum s.
  let count = Array.from({ length: n1 + 1 }, () => new Float64Array(maxSum + 1));
  count[0]![0] = 1;
  for (const r of ranks2) {
    const next = count.map((row) => row.slice());
    for (let k = 1; k <= n1; k++) {
      const from = count[k - 1]!;
      const to = next[k]!;
      for (let s = r; s <= maxSum; s++) to[s]! += from[s - r]!;
    }
    count = next;
  }
  const dist = count[n1]!;
  let total = 0;
  let extreme = 0;
  const dev = Math.abs(obs - center);
  for (let s = 0; s <= maxSum; s++) {
    total += dist[s]!;
    if (Math.abs(s - center) >= dev) extreme += dist[s]!;
  }
  return { u: obs / 2 - (n1 * (n1 + 1)) / 2, p: Math.min(1, extreme / total) };
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative). */
export function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let s = c[0]!;
  for (let i = 1; i < 9; i++) s += c[i]! / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}

/** Continued fraction of the incomplete beta (modified Lentz; Numerical Recipes' betacf). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** Two-sided tail of Student's t: P(|T| ≥ |t|) with `df` degrees of freedom (df may be fractional). */
export function studentTwoSided(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTwoSided: degrees of freedom must be > 0, got ${df}`);
  if (!Number.isFinite(t)) return Number.isNaN(t) ? NaN : 0;
  return incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

export interface Welch {
  t: number;
  df: number;
  p: number;
}

/** Welch's unequal-variance t-test of mean(a) − mean(b) (Welch–Satterthwaite degrees of freedom). */
export function welchT(a: readonly number[], b: readonly number[]): Welch {
  checkSample('welchT a', a);
  checkSample('welchT b', b);
  if (a.length < 2 || b.length < 2) throw new RangeError(`welchT: needs ≥ 2 values per sample, got ${a.length} and ${b.length}`);
  const va = std(a) ** 2 / a.length;
  const vb = std(b) ** 2 / b.length;
  const diff = mean(a) - mean(b);
  if (va + vb === 0) return { t: diff === 0 ? 0 : Math.sign(diff) * Infinity, df: a.length + b.length - 2, p: diff === 0 ? 1 : 0 };
  const t = diff / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  return { t, df, p: studentTwoSided(t, df) };
}

export interface Wilcoxon {
  /** Sum of the ranks of |a_i − b_i| over positive differences (zeros dropped). */
  wPlus: number;
  /** Pairs with a non-zero difference. */
  n: number;
  /** Two-sided exact p over the 2^n sign assignments (1 when n = 0). */
  p: number;
}

/** Wilcoxon's signed-rank test on pairs (a_i, b_i); zero differences are dropped (Wilcoxon's convention). */
export function wilcoxonSignedRank(a: readonly number[], b: readonly number[]): Wilcoxon {
  if (a.length !== b.length) throw new RangeError(`wilcoxonSignedRank: ${a.length} and ${b.length} values are not pairs`);
  checkSample('wilcoxonSignedRank a', a);
  checkSample('wilcoxonSignedRank b', b);
  const d = a.map((v, i) => v - b[i]!).filter((v) => v !== 0 && !Number.isNaN(v));
  if (d.length === 0) return { wPlus: 0, n: 0, p: 1 };
  const ranks2 = midranks(d.map(Math.abs)).map((r) => Math.round(2 * r));
  const total = ranks2.reduce((s, r) => s + r, 0);
  const obs = ranks2.reduce((s, r, i) => s + (d[i]! > 0 ? r : 0), 0);
  let dist = new Float64Array(total + 1);
  dist[0] = 1;
  for (const r of ranks2) {
    const next = dist.slice();
    for (let s = r; s <= total; s++) next[s]! += dist[s - r]!;
    dist = next;
  }
  let all = 0;
  let extreme = 0;
  const dev = Math.abs(2 * obs - total);
  for (let s = 0; s <= total; s++) {
    all += dist[s]!;
    if (Math.abs(2 * s - total) >= dev) extreme += dist[s]!;
  }
  return { wPlus: obs / 2, n: d.length, p: Math.min(1, extreme / all) };
}

export interface SignTest {
  positive: number;
  negative: number;
  /** Two-sided exact binomial p (ties dropped; 1 when all pairs tie). */
  p: number;
}

/** Sign test on pairs: counts a_i > b_i and a_i < b_i (±Infinity allowed: a censored value compares as larger). */
export function signTest(a: readonly number[], b: readonly number[]): SignTest {
  if (a.length !== b.length) throw new RangeError(`signTest: ${a.length} and ${b.length} values are not pairs`);
  const positive = a.filter((v, i) => v > b[i]!).length;
  const negative = a.filter((v, i) => v < b[i]!).length;
  const n = positive + negative;
  if (n === 0) return { positive, negative, p: 1 };
  const k = Math.min(positive, negative);
  // Binomial coefficients by the multiplicative rule stay exact integers in doubles for any seed count used here.
  let tail = 0;
  let c = 1;
  for (let i = 0; i <= k; i++) {
    tail += c;
    c = (c * (n - i)) / (i + 1);
  }
  return { positive, negative, p: Math.min(1, (2 * tail) / 2 ** n) };
}

/** "m ± s" with `digits` decimals (n/a for an empty sample). */
export function meanStd(x: readonly number[], digits = 4): string {
  return x.length === 0 ? 'n/a' : `${mean(x).toFixed(digits)} ± ${std(x).toFixed(digits)}`;
}

/** p-value for a table: 3 significant digits, "< 0.001" below that. */
export function formatP(p: number): string {
  return Number.isNaN(p) ? 'n/a' : p < 0.001 ? '< 0.001' : p.toPrecision(3);
}
