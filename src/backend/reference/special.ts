/**
 * Special functions for the reference kernels, accurate to ~1e-15 so float64 finite-difference
 * checks of GELU (erf form) are limited by the difference step, not by these approximations.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const INV_SQRT_PI = 0.5641895835477563; // 1/√π
const SQRT1_2 = Math.SQRT1_2;
const GELU_K0 = 0.7978845608028654; // √(2/π)
const GELU_K1 = 0.044715;

/**
 * erf(x) = (2/√π)·x·e^{−x²}·Σₙ (2x²)ⁿ / (1·3·5···(2n+1)) — every term is positive, so there is no
 * cancellation (unlike the alternating Maclaurin series); used for |x| < 2 (≤ 35 terms).
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = 1;
  let sum = 1;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return TWO_OVER_SQRT_PI * x * Math.exp(-x2) * sum;
}

/**
 * erfc(x) for x ≥ 2 by its continued fraction, evaluated bottom-up with a fixed depth:
 *   erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
 * 100 levels converge to double precision for every x ≥ 2.
 */
function erfcContinuedFraction(x: number): number {
  let f = x;
  for (let k = 100; k >= 1; k--) f = x + k / 2 / f;
  return (Math.exp(-x * x) * INV_SQRT_PI) / f;
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2) return erfSeries(x);
  return Math.sign(x) * (1 - erfcContinuedFraction(ax));
}

/** 1 − erf(x), with relative accuracy in the right tail (where 1 − erf(x) would cancel). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 2) return erfcContinuedFraction(x);
  return 1 - erf(x);
}

/** Standard normal CDF Φ(x) = ½·erfc(−x/√2). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x * SQRT1_2);
}

/** Standard normal density φ(x) = e^{−x²/2}/√(2π). */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) * (INV_SQRT_PI * SQRT1_2);
}

/**
 * GELU, tanh form (GPT-2 gelu_new): ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³), written as
 * x·σ(2u) = x/(1 + e^{−2u}) — the same value without the 1 + tanh cancellation for negative x.
 */
export function geluTanh(x: number): number {
  const u = GELU_K0 * (x + GELU_K1 * x * x * x);
  return x / (1 + Math.exp(-2 * u));
}

/** d/dx geluTanh = s + x·s(1−s)·2u' with s = σ(2u), u' = √(2/π)(1 + 3·0.044715x²). */
export function geluTanhGrad(x: number): number {
  const u = GELU_K0 * (x + GELU_K1 * x * x * x);
  const du = GELU_K0 * (1 + 3 * GELU_K1 * x * x);
  const e = Math.exp(-2 * u);
  const s = 1 / (1 + e);
  return s + 2 * x * du * (e * s) * s;
}

/** GELU, erf form (BERT gelu): x·Φ(x) = ½x(1 + erf(x/√2)). */
export function geluErf(x: number): number {
  return x * normalCdf(x);
}

/** d/dx geluErf = Φ(x) + x·φ(x). */
export function geluErfGrad(x: number): number {
  return normalCdf(x) + x * normalPdf(x);
}
