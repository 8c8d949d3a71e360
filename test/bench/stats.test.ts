import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mannWhitneyU, mean, midranks, signTest, std, studentTwoSided, welchT, wilcoxonSignedRank } from '../../bench/stats.ts';

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (±${tol})`);

test('mean, sample std and midranks', () => {
  assert.equal(mean([2, 4, 4, 4, 5, 5, 7, 9]), 5);
  close(std([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-12, 'std');
  assert.deepEqual(midranks([10, 20, 20, 5, Infinity, Infinity]), [2, 3.5, 3.5, 1, 5.5, 5.5]);
});

test('Student t two-sided tail matches the t-table critical values', () => {
  close(studentTwoSided(2.228, 10), 0.05, 5e-5, 't(10) = 2.228');
  close(studentTwoSided(12.706, 1), 0.05, 5e-6, 't(1) = 12.706');
  close(studentTwoSided(1.96, 1e7), 0.04999579, 1e-6, 'normal limit');
  assert.equal(studentTwoSided(0, 5), 1);
});

test("Welch's t-test: Wikipedia's example 1 (t = −2.46, ν ≈ 25.0, p = 0.021)", () => {
  const a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
  const a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
  const w = welchT(a1, a2);
  close(w.t, -2.455356398286006, 1e-9, 't'); // scipy.stats.ttest_ind(equal_var=False)
  close(w.df, 24.988529290231416, 1e-9, 'df');
  close(w.p, 0.021378001462866992, 1e-9, 'p');
  assert.throws(() => welchT([1], [2, 3]), /needs ≥ 2 values/);
});

test('Mann–Whitney U exact p matches the n1 = n2 = 5 table', () => {
  // Critical value 2 at α = 0.05 two-sided: U = 2 rejects (8/252), U = 3 does not (14/252).
  const cases: Array<[number[], number[], number, number]> = [
    [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0, 2 / 252],
    [[1, 2, 4, 6, 3], [5, 7, 8, 9, 10], 1, 4 / 252],
    [[1, 2, 3, 4, 7], [5, 6, 8, 9, 10], 2, 8 / 252],
    [[1, 2, 3, 4, 8], [5, 6, 7, 9, 10], 3, 14 / 252],
  ];
  for (const [a, b, u, p] of cases) {
    const r = mannWhitneyU(a, b);
    assert.equal(r.u, u);
    close(r.p, p, 1e-12, `U = ${u}`);
  }
  // Symmetric in the samples; U_a + U_b = n1·n2.
  const swapped = mannWhitneyU([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]);
  assert.equal(swapped.u, 25);
  close(swapped.p, 2 / 252, 1e-12, 'swapped');
});

test('Mann–Whitney U with ties and Infinity equals brute-force enumeration of the splits', () => {
  const a = [1200, 1600, 1800, Infinity, 1600];
  const b = [1600, Infinity, Infinity, Infinity, 2000];
  const pooled = midranks([...a, ...b]);
  const center = (a.length * (pooled.length + 1)) / 2;
  const obs = Math.abs(pooled.slice(0, a.length).reduce((s, r) => s + r, 0) - center);
  let all = 0;
  let extreme = 0;
  for (let mask = 0; mask < 1 << pooled.length; mask++) {
    let bits = 0;
    let sum = 0;
    for (let i = 0; i < pooled.length; i++) if (mask & (1 << i)) (bits++, (sum += pooled[i]!));
    if (bits !== a.length) continue;
    all++;
    if (Math.abs(sum - center) >= obs - 1e-9) extreme++;
  }
  assert.equal(all, 252);
  const r = mannWhitneyU(a, b);
  close(r.p, extreme / all, 1e-12, 'tied exact p');
  // a > b: 1800 > 1600, ∞ > 1600, ∞ > 2000 (3); ½ per tie: 1600 = 1600 twice, ∞ = ∞ three times (2.5).
  assert.equal(r.u, 5.5);
});

test("Wilcoxon signed-rank exact p: Hollander & Wolfe's depression data (V = 40, p = 0.0391)", () => {
  const x = [1.83, 0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3];
  const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
  const w = wilcoxonSignedRank(x, y);
  assert.equal(w.wPlus, 40);
  assert.equal(w.n, 9);
  close(w.p, 0.0390625, 1e-12, 'p');
  // n = 8, T− = 4: p = 14/256 (scipy.stats.wilcoxon exact 0.0546875).
  close(wilcoxonSignedRank([1, 2, 3, -4, 5, 6, 7, 8], new Array(8).fill(0)).p, 0.0546875, 1e-12, 'n = 8');
  assert.deepEqual(wilcoxonSignedRank([1, 2], [1, 2]), { wPlus: 0, n: 0, p: 1 });
});

test('sign test: exact binomial two-sided p', () => {
  assert.deepEqual(signTest([2, 3, 4], [1, 1, 1]), { positive: 3, negative: 0, p: 0.25 });
  const r = signTest([...new Array(9).fill(1), 0], new Array(10).fill(0.5));
  assert.equal(r.positive, 9);
  close(r.p, 22 / 1024, 1e-12, '9 of 10');
  assert.equal(signTest([Infinity, 5], [1200, 5]).p, 1); // one positive, one tie
});
