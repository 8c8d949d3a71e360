/** Bad arguments throw errors that name the kernel and the problem — native and reference alike. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ref from '../../src/backend/reference/kernels.ts';
import { Unary } from '../../src/backend/types.ts';
import { requireNative } from './kernels-helpers.ts';

const f = (n: number) => new Float32Array(n);

test('native: wrong argument types throw TypeError naming the kernel and argument', () => {
  const native = requireNative();
  assert.throws(() => native.add(new Float64Array(4) as unknown as Float32Array, f(4), f(4), 4), { name: 'TypeError', message: /add: 'a' must be a Float32Array/ });
  assert.throws(() => native.crossEntropy(f(4), new Float32Array(1) as unknown as Int32Array, f(1), f(1), 1, 4, -100, 0), { name: 'TypeError', message: /crossEntropy: 'labels' must be an Int32Array/ });
  assert.throws(() => native.layerNorm(f(4), f(2), f(2), f(4), f(2), f(2), 2, 2, 'x' as unknown as number), { name: 'TypeError', message: /layerNorm: 'eps' must be a number/ });
  assert.throws(() => native.permute(f(4), f(4), [2, 2], [1, 0], 1 as unknown as boolean), { name: 'TypeError', message: /permute: 'accumulate' must be a boolean/ });
  assert.throws(() => (native.adamw as unknown as (...a: unknown[]) => void)(f(1), f(1), f(1)), { name: 'TypeError', message: /adamw: expects 11 arguments, got 3/ });
});

test('native: arrays too short for the sizes throw RangeError (nothing is read or written)', () => {
  const native = requireNative();
  assert.throws(() => native.adamw(f(4), f(4), f(3), f(4), 4, 1e-3, 0.9, 0.999, 1e-8, 0, 1), { name: 'RangeError', message: /adamw: 'm' has 3 elements, needs 4/ });
  const out = f(5);
  assert.throws(() => native.layerNorm(f(6), f(3), f(3), f(6), f(2), f(1), 2, 3, 1e-5), { name: 'RangeError', message: /layerNorm: 'rstd' has 1 elements, needs 2/ });
  assert.throws(() => native.layerNorm(f(6), f(3), f(3), out, f(2), f(2), 2, 3, 1e-5), { name: 'RangeError', message: /layerNorm: 'out' has 5 elements, needs 6/ });
  assert.throws(() => native.layerNormBackward(f(6), f(6), f(2), f(2), f(2), f(6), f(3), f(3), 2, 3), { name: 'RangeError', message: /layerNormBackward: 'weight'/ });
  assert.throws(() => native.unary(Unary.GeluTanh, f(10), f(9), 10), { name: 'RangeError', message: /unary: 'out' has 9 elements, needs 10/ });
  assert.throws(() => native.sumRows(f(5), f(3), 2, 3), { name: 'RangeError', message: /sumRows: 'x'/ });
  assert.throws(() => native.softmax(f(5), f(6), 2, 3), { name: 'RangeError', message: /softmax: 'x'/ });
  assert.throws(() => native.crossEntropyBackward(f(8), Int32Array.of(0, 1), f(2), f(7), 2, 4, -100, 0, 1), { name: 'RangeError', message: /crossEntropyBackward: 'dlogits'/ });
  assert.throws(() => native.embedding(f(20), Int32Array.of(1), f(4), 2, 4), { name: 'RangeError', message: /embedding: 'out' has 4 elements, needs 8/ });
  assert.throws(() => native.dropout(f(3), f(4), 4, 0.5, 1, 0), { name: 'RangeError', message: /dropout: 'x'/ });
  assert.throws(() => native.permute(f(5), f(6), [2, 3], [1, 0], false), { name: 'RangeError', message: /permute: 'x' has 5 elements, needs 6/ });
  assert.throws(() => native.axpy(1, f(4), f(4), -1), { name: 'RangeError', message: /axpy: 'n' must be non-negative/ });
  assert.throws(() => native.scale(f(4), 2, f(4), 2.5), { name: 'RangeError', message: /scale: 'n' must be an integer/ });
  assert.throws(() => native.sumRows(f(4), f(4), 2 ** 40, 2 ** 40), { name: 'RangeError', message: /sumRows: size .* overflows/ });
  assert.ok(out.every((v) => v === 0), 'a failed call wrote nothing');
});

test('native: invalid labels, ids, ops, permutations and probabilities', () => {
  const native = requireNative();
  const loss = f(3).fill(5);
  assert.throws(() => native.crossEntropy(f(12), Int32Array.of(0, -100, 4), loss, f(3), 3, 4, -100, 0), { name: 'RangeError', message: /crossEntropy: label 4 at row 2 is out of range \[0, 4\)/ });
  assert.ok(loss.every((v) => v === 5), 'nothing written before the label check');
  assert.throws(() => native.crossEntropyBackward(f(8), Int32Array.of(-1, 0), f(2), f(8), 2, 4, -100, 0, 1), { name: 'RangeError', message: /crossEntropyBackward: label -1 at row 0/ });
  assert.throws(() => native.embedding(f(12), Int32Array.of(0, 3), f(8), 2, 4), { name: 'RangeError', message: /embedding: ids\[1\] = 3 is out of range \[0, 3\)/ });
  assert.throws(() => native.embeddingBackward(f(8), Int32Array.of(-2, 0), f(12), 2, 4), { name: 'RangeError', message: /embeddingBackward: ids\[0\] = -2/ });
  assert.throws(() => native.unary(7 as Unary, f(2), f(2), 2), { name: 'RangeError', message: /unary: unknown Unary op 7/ });
  assert.throws(() => native.unaryBackward(-1 as Unary, f(2), f(2), f(2), 2), { name: 'RangeError', message: /unaryBackward: unknown Unary op -1/ });
  assert.throws(() => native.permute(f(6), f(6), [2, 3], [0, 0], false), { name: 'RangeError', message: /permute: perm is not a permutation/ });
  assert.throws(() => native.permute(f(6), f(6), [2, 3], [0], false), { name: 'RangeError', message: /permute: shape has 2 axes but perm has 1/ });
  assert.throws(() => native.permute(f(1), f(1), [1, 1, 1, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5, 6], false), { name: 'RangeError', message: /permute: 'shape' has 7 entries/ });
  assert.throws(() => native.dropout(f(2), f(2), 2, 1.5, 0, 0), { name: 'RangeError', message: /dropout: p must be in \[0, 1\]/ });
  assert.throws(() => native.adamw(f(1), f(1), f(1), f(1), 1, 1e-3, 0.9, 0.999, 1e-8, 0, 0), { name: 'RangeError', message: /adamw: step must be ≥ 1/ });
});

test('reference: the same checks, naming the kernel', () => {
  assert.throws(() => ref.crossEntropy(f(12), Int32Array.of(0, -100, 4), f(3), f(3), 3, 4, -100, 0), { name: 'RangeError', message: /reference crossEntropy: label 4 at row 2/ });
  assert.throws(() => ref.embedding(f(12), Int32Array.of(0, 3), f(8), 2, 4), { name: 'RangeError', message: /reference embedding: ids\[1\] = 3/ });
  assert.throws(() => ref.adamw(f(4), f(4), f(3), f(4), 4, 1e-3, 0.9, 0.999, 1e-8, 0, 1), { name: 'RangeError', message: /reference adamw: 'm' has 3 elements, needs 4/ });
  assert.throws(() => ref.layerNorm(f(6), f(3), f(3), f(6), f(2), f(1), 2, 3, 1e-5), { name: 'RangeError', message: /reference layerNorm: 'rstd'/ });
  assert.throws(() => ref.unary(9 as Unary, f(2), f(2), 2), { name: 'RangeError', message: /reference unary: unknown Unary op 9/ });
  assert.throws(() => ref.permute(f(6), f(6), [2, 3], [1, 1], false), { name: 'RangeError', message: /reference permute: perm/ });
  assert.throws(() => ref.dropout(f(2), f(2), 2, -0.1, 0, 0), { name: 'RangeError', message: /reference dropout: p must be in/ });
  assert.throws(() => ref.sumRows(f(4), f(2), 2, 2.5), { name: 'RangeError', message: /reference sumRows: 'cols'/ });
});
