/** Reference embedding lookup and its scatter-add backward. */
import type { FloatArray } from '../types.ts';
import { checkLength, checkSize } from './check.ts';

function checkIds(kernel: string, ids: Int32Array, n: number, tableRows: number): void {
  checkLength(kernel, 'ids', ids, n, 'n');
  for (let i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= tableRows) {
      throw new RangeError(`reference ${kernel}: ids[${i}] = ${ids[i]} is out of range [0, ${tableRows})`);
    }
  }
}

/** out[i, :] = table[ids[i], :]; the table has ⌊table.length/dim⌋ rows. */
export function embedding(table: FloatArray, ids: Int32Array, out: FloatArray, n: number, dim: number): void {
  checkSize('embedding', 'n', n);
  checkSize('embedding', 'dim', dim);
  checkLength('embedding', 'out', out, n * dim, 'n*dim');
  if (dim === 0) return;
  checkIds('embedding', ids, n, Math.floor(table.length / dim));
  for (let i = 0; i < n; i++) {
    const src = ids[i] * dim;
    for (let j = 0; j < dim; j++) out[i * dim + j] = table[src + j];
  }
}

/** dtable[ids[i], :] += dout[i, :] */
export function embeddingBackward(dout: FloatArray, ids: Int32Array, dtable: FloatArray, n: number, dim: number): void {
  checkSize('embeddingBackward', 'n', n);
  checkSize('embeddingBackward', 'dim', dim);
  checkLength('embeddingBackward', 'dout', dout, n * dim, 'n*dim');
  if (dim === 0) return;
  checkIds('embeddingBackward', ids, n, Math.floor(dtable.length / dim));
  for (let i = 0; i < n; i++) {
    const dst = ids[i] * dim;
    for (let j = 0; j < dim; j++) dtable[dst + j] += dout[i * dim + j];
  }
}
