/**
 * The reference backend: plain, readable TypeScript — the executable specification of every kernel.
 * Slow on purpose (float64 accumulation, no tricks); tests check the native backend against it.
 */
import type { Backend } from '../types.ts';
import { gemm } from './gemm.ts';
import { attention, attentionBackward } from './attention.ts';
import * as k from './kernels.ts';

export const referenceBackend: Backend = {
  name: 'reference',
  gemm,
  attention,
  attentionBackward,
  sumRows: k.sumRows,
  add: k.add,
  mul: k.mul,
  axpy: k.axpy,
  scale: k.scale,
  sumSquares: k.sumSquares,
  unary: k.unary,
  unaryBackward: k.unaryBackward,
  permute: k.permute,
  layerNorm: k.layerNorm,
  layerNormBackward: k.layerNormBackward,
  softmax: k.softmax,
  softmaxBackward: k.softmaxBackward,
  crossEntropy: k.crossEntropy,
  crossEntropyBackward: k.crossEntropyBackward,
  embedding: k.embedding,
  embeddingBackward: k.embeddingBackward,
  dropout: k.dropout,
  dropoutBackward: k.dropoutBackward,
  adamw: k.adamw,
};
