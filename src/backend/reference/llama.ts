/**
 * Reference kernels of the Llama-family block (float64 accumulation): RMSNorm, rotary position
 * embeddings (HF's rotate_half convention) and the SwiGLU gate silu(g)·u. The executable spec of
 * the Backend methods of the same names (src/backend/types.ts); native/kernels_llama.inc follows it.
 */
import type { FloatArray } from '../types.ts';
import { checkLength, checkSize } from './check.ts';

/** rstd = 1/√(mean(x_r²) + eps), out = x·rstd·weight */
export function rmsNorm(x: FloatArray, weight: FloatArray, out: FloatArray, rstd: FloatArray,
  rows: number, cols: number, eps: number): void {
  checkRms('rmsNorm', rows, cols, { x, out }, { weight }, { rstd });
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let squares = 0;
    for (let j = 0; j < cols; j++) squares += x[o + j]! * x[o + j]!;
    const rs = 1 / Math.sqrt(squares / cols + eps);
    for (let j = 0; j < cols; j++) out[o + j] = x[o + j]! * rs * weight[j]!;
    rstd[r] = rs;
  }
}

/**
 * x̂ = x·rstd, g = dout·weight:
 *   dx += rstd·(g − x̂·mean(g·x̂)),  dweight += Σ_r dout·x̂
 * (RMSNorm is LayerNorm without the mean: the mean(g) term drops out, and there is no bias.)
 */
export function rmsNormBackward(dout: FloatArray, x: FloatArray, weight: FloatArray, rstd: FloatArray,
  dx: FloatArray, dweight: FloatArray, rows: number, cols: number): void {
  checkRms('rmsNormBackward', rows, cols, { dout, x, dx }, { weight, dweight }, { rstd });
  const dweightSum = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rs = rstd[r]!;
    let gx = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = x[o + j]! * rs;
      gx += dout[o + j]! * weight[j]! * xhat;
      dweightSum[j] += dout[o + j]! * xhat;
    }
    const gxMean = gx / cols;
    for (let j = 0; j < cols; j++) dx[o + j] += rs * (dout[o + j]! * weight[j]! - x[o + j]! * rs * gxMean);
  }
  for (let j = 0; j < cols; j++) dweight[j] += dweightSum[j]!;
}

function checkRms(kernel: string, rows: number, cols: number, matrices: Record<string, FloatArray>,
  vectors: Record<string, FloatArray>, perRow: Record<string, FloatArray>): void {
  checkSize(kernel, 'rows', rows);
  checkSize(kernel, 'cols', cols);
  for (const [name, a] of Object.entries(matrices)) checkLength(kernel, name, a, rows * cols, 'rows*cols');
  for (const [name, a] of Object.entries(vectors)) checkLength(kernel, name, a, cols, 'cols');
  for (const [name, a] of Object.entries(perRow)) checkLength(kernel, name, a, rows, 'rows');
}

function checkRope(kernel: string, x: FloatArray, cos: FloatArray, sin: FloatArray, positions: Int32Array, out: FloatArray,
  rows: number, heads: number, d: number, tableRows: number, xName: string, outName: string): void {
  for (const [name, v] of [['rows', rows], ['heads', heads], ['d', d], ['tableRows', tableRows]] as const) checkSize(kernel, name, v);
  if (d % 2 !== 0) throw new RangeError(`reference ${kernel}: 'd' must be even (rotary embeddings rotate pairs), got ${d}`);
  checkLength(kernel, xName, x, rows * heads * d, 'rows*heads*d');
  checkLength(kernel, outName, out, rows * heads * d, 'rows*heads*d');
  checkLength(kernel, 'cos', cos, tableRows * (d / 2), 'tableRows*d/2');
  checkLength(kernel, 'sin', sin, tableRows * (d / 2), 'tableRows*d/2');
  checkLength(kernel, 'positions', positions, rows, 'rows');
  for (let r = 0; r < rows; r++) {
    const p = positions[r]!;
    if (!(p >= 0 && p < tableRows)) throw new RangeError(`reference ${kernel}: positions[${r}] = ${p} is out of range [0, ${tableRows})`);
  }
}

/**
 * Rotary embedding, HF's rotate_half convention, on x (rows, heads, d): with h = d/2,
 * c = cos[positions[r], i], s = sin[positions[r], i] (tables of tableRows × h), for i < h:
 *   out_i = x_i·c − x_{i+h}·s,   out_{i+h} = x_{i+h}·c + x_i·s
 * i.e. x·cos + rotate_half(x)·sin with cos = cat(c, c). out may alias x.
 */
export function rope(x: FloatArray, cos: FloatArray, sin: FloatArray, positions: Int32Array, out: FloatArray,
  rows: number, heads: number, d: number, tableRows: number): void {
  checkRope('rope', x, cos, sin, positions, out, rows, heads, d, tableRows, 'x', 'out');
  rotate(x, cos, sin, positions, out, rows, heads, d, 1, false);
}

/** The transpose of rope, a rotation by −θ: dx_i += dout_i·c + dout_{i+h}·s, dx_{i+h} += dout_{i+h}·c − dout_i·s. */
export function ropeBackward(dout: FloatArray, cos: FloatArray, sin: FloatArray, positions: Int32Array, dx: FloatArray,
  rows: number, heads: number, d: number, tableRows: number): void {
  checkRope('ropeBackward', dout, cos, sin, positions, dx, rows, heads, d, tableRows, 'dout', 'dx');
  rotate(dout, cos, sin, positions, dx, rows, heads, d, -1, true);
}

function rotate(x: FloatArray, cos: FloatArray, sin: FloatArray, positions: Int32Array, out: FloatArray,
  rows: number, heads: number, d: number, sign: 1 | -1, accumulate: boolean): void {
  const h = d / 2;
  for (let r = 0; r < rows; r++) {
    const t = positions[r]! * h;
    for (let hd = 0; hd < heads; hd++) {
      const o = (r * heads + hd) * d;
      for (let i = 0; i < h; i++) {
        const c = cos[t + i]!, s = sign * sin[t + i]!;
        const a = x[o + i]!, b = x[o + i + h]!;
        const lo = a * c - b * s, hi = b * c + a * s;
        out[o + i] = accumulate ? out[o + i]! + lo : lo;
        out[o + i + h] = accumulate ? out[o + i + h]! + hi : hi;
      }
    }
  }
}

function checkFlat(kernel: string, n: number, arrays: Record<string, FloatArray>): void {
  checkSize(kernel, 'n', n);
  for (const [name, a] of Object.entries(arrays)) checkLength(kernel, name, a, n, 'n');
}

/** out = silu(gate)·up, silu(g) = g·σ(g) — the SwiGLU MLP's product. out may alias gate or up. */
export function siluMul(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void {
  checkFlat('siluMul', n, { gate, up, out });
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/** σ = σ(g): dgate += dout·up·σ·(1 + g·(1 − σ)),  dup += dout·g·σ */
export function siluMulBackward(gate: FloatArray, up: FloatArray, dout: FloatArray, dgate: FloatArray, dup: FloatArray, n: number): void {
  checkFlat('siluMulBackward', n, { gate, up, dout, dgate, dup });
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    const s = 1 / (1 + Math.exp(-g));
    dgate[i] += dout[i]! * up[i]! * s * (1 + g * (1 - s));
    dup[i] += dout[i]! * g * s;
  }
}
