/**
 * L-BFGS (Nocedal & Wright, algorithm 7.5) for smooth unconstrained minimisation in float64: 10
 * correction pairs (scipy's default), the initial Hessian scaled by s·y / y·y, a strong-Wolfe line
 * search (c1 = 1e-4, c2 = 0.9). Stops when max |∇f| ≤ tol, or — like scipy's L-BFGS-B with the ftol
 * scikit-learn passes — when an iteration lowers f by no more than 64 machine epsilons (relative).
 */

/** Writes ∇f(x) into g and returns f(x). */
export type Evaluate = (x: Float64Array, g: Float64Array) => number;

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * Strong-Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6, safeguarded cubic interpolation)
 * along d from x. Leaves the accepted point in xt/gt and returns its step and value, or null.
 */
function lineSearch(fg: Evaluate, x: Float64Array, f0: number, d: Float64Array, dphi0: number, a1: number, xt: Float64Array, gt: Float64Array): { a: number; f: number } | null {
  const c1 = 1e-4;
  const c2 = 0.9;
  const maxEvals = 40;
  let evals = 0;
  let at = NaN;
  const phi = (a: number): { f: number; dp: number } => {
    for (let i = 0; i < x.length; i++) xt[i] = x[i]! + a * d[i]!;
    const f = fg(xt, gt);
    evals++;
    at = a;
    return { f, dp: dot(gt, d) };
  };
  const accept = (a: number, f: number) => {
    if (at !== a) phi(a); // the buffers must hold the accepted point
    return { a, f };
  };
  const cubic = (a: number, fa: number, da: number, b: number, fb: number, db: number): number => {
    const d1 = da + db - (3 * (fa - fb)) / (a - b);
    const disc = d1 * d1 - da * db;
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    const w = hi - lo;
    if (disc >= 0) {
      const d2 = Math.sign(b - a) * Math.sqrt(disc);
      const m = b - ((b - a) * (db + d2 - d1)) / (db - da + 2 * d2);
      if (Number.isFinite(m) && m > lo + 0.1 * w && m < hi - 0.1 * w) return m;
    }
    return (lo + hi) / 2;
  };
  const zoom = (lo: number, flo: number, dlo: number, hi: number, fhi: number, dhi: number) => {
    while (evals < maxEvals) {
      const a = cubic(lo, flo, dlo, hi, fhi, dhi);
      const { f, dp } = phi(a);
      if (f > f0 + c1 * a * dphi0 || f >= flo) {
        hi = a; fhi = f; dhi = dp;
      } else {
        if (Math.abs(dp) <= -c2 * dphi0) return { a, f };
        if (dp * (hi - lo) >= 0) {
          hi = lo; fhi = flo; dhi = dlo;
        }
        lo = a; flo = f; dlo = dp;
      }
      if (Math.abs(hi - lo) <= 1e-16 * Math.max(1, Math.abs(lo))) break;
    }
    // Out of evaluations: the best point with sufficient decrease, if any.
    return lo > 0 ? accept(lo, flo) : null;
  };
  let aPrev = 0;
  let fPrev = f0;
  let dPrev = dphi0;
  let a = a1;
  for (let i = 0; evals < maxEvals; i++) {
    const { f, dp } = phi(a);
    if (!Number.isFinite(f)) {
      a = (aPrev + a) / 2; // overflow far out: come back
      continue;
    }
    if (f > f0 + c1 * a * dphi0 || (i > 0 && f >= fPrev)) return zoom(aPrev, fPrev, dPrev, a, f, dp);
    if (Math.abs(dp) <= -c2 * dphi0) return { a, f };
    if (dp >= 0) return zoom(a, f, dp, aPrev, fPrev, dPrev);
    aPrev = a; fPrev = f; dPrev = dp;
    a *= 2;
  }
  return aPrev > 0 ? accept(aPrev, fPrev) : null;
}

/** Minimises fg from theta (updated in place to the solution). */
export function lbfgs(fg: Evaluate, theta: Float64Array, maxIter: number, tol: number): { f: number; iterations: number; converged: boolean } {
  const n = theta.length;
  const m = 10;
  const S = Array.from({ length: m }, () => new Float64Array(n));
  const Y = Array.from({ length: m }, () => new Float64Array(n));
  const rho = new Float64Array(m);
  const alpha = new Float64Array(m);
  let stored = 0;
  let head = 0; // next slot to write
  const g = new Float64Array(n);
  const d = new Float64Array(n);
  const xt = new Float64Array(n);
  const gt = new Float64Array(n);
  let f = fg(theta, g);
  let iterations = 0;
  let converged = false;
  while (iterations < maxIter) {
    if (maxAbs(g) <= tol) {
      converged = true;
      break;
    }
    // Two-loop recursion: d = −H·g.
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    for (let k = 0; k < stored; k++) {
      const j = (head - 1 - k + m) % m;
      alpha[j] = rho[j]! * dot(S[j]!, d);
      const a = alpha[j]!;
      const yj = Y[j]!;
      for (let i = 0; i < n; i++) d[i]! -= a * yj[i]!;
    }
    if (stored > 0) {
      const j = (head - 1 + m) % m;
      const gamma = dot(S[j]!, Y[j]!) / dot(Y[j]!, Y[j]!);
      for (let i = 0; i < n; i++) d[i]! *= gamma;
    }
    for (let k = stored - 1; k >= 0; k--) {
      const j = (head - 1 - k + m) % m;
      const beta = rho[j]! * dot(Y[j]!, d);
      const c = alpha[j]! - beta;
      const sj = S[j]!;
      for (let i = 0; i < n; i++) d[i]! += c * sj[i]!;
    }
    let dphi0 = dot(g, d);
    if (!(dphi0 < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      stored = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i]!;
      dphi0 = dot(g, d);
    }
    const first = stored === 0 ? Math.min(1, 1 / Math.max(maxAbs(g), 1e-12)) : 1;
    const r = lineSearch(fg, theta, f, d, dphi0, first, xt, gt);
    iterations++;
    if (!r) {
      if (stored === 0) break; // no progress even along −g: as close as float64 gets
      stored = 0;
      continue;
    }
    const s = S[head]!;
    const yv = Y[head]!;
    for (let i = 0; i < n; i++) {
      s[i] = xt[i]! - theta[i]!;
      yv[i] = gt[i]! - g[i]!;
    }
    const sy = dot(s, yv);
    const fOld = f;
    theta.set(xt);
    g.set(gt);
    f = r.f;
    if (sy > 1e-12 * dot(yv, yv)) {
      rho[head] = 1 / sy;
      head = (head + 1) % m;
      stored = Math.min(stored + 1, m);
    }
    // scipy's ftol (64 machine epsilons, as scikit-learn sets it): no relative decrease left to find.
    if ((fOld - f) / Math.max(Math.abs(fOld), Math.abs(f), 1) <= 64 * Number.EPSILON) {
      converged = maxAbs(g) <= tol;
      break;
    }
  }
  return { f, iterations, converged };
}
