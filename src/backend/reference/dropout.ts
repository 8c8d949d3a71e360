/** Reference dropout with the counter-based mask of src/util/random.ts. */
import type { FloatArray } from '../types.ts';
import { uniformAt } from '../../util/random.ts';
import { checkLength, checkSize } from './check.ts';

function checkArgs(kernel: string, n: number, p: number, arrays: Record<string, FloatArray>): void {
  checkSize(kernel, 'n', n);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`reference ${kernel}: p must be in [0, 1], got ${p}`);
  for (const [name, a] of Object.entries(arrays)) checkLength(kernel, name, a, n, 'n');
}

/** keep_i = uniform(seed, offset + i) ≥ p;  out_i = keep_i ? x_i/(1−p) : 0 */
export function dropout(x: FloatArray, out: FloatArray, n: number, p: number, seed: number, offset: number): void {
  checkArgs('dropout', n, p, { x, out });
  for (let i = 0; i < n; i++) out[i] = uniformAt(seed, offset + i) >= p ? x[i] / (1 - p) : 0;
}

/** dx_i += keep_i ? dout_i/(1−p) : 0 */
export function dropoutBackward(dout: FloatArray, dx: FloatArray, n: number, p: number, seed: number, offset: number): void {
  checkArgs('dropoutBackward', n, p, { dout, dx });
  for (let i = 0; i < n; i++) if (uniformAt(seed, offset + i) >= p) dx[i] += dout[i] / (1 - p);
}
