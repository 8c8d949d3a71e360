/** The reference non-GEMM, non-attention kernels, one file per family. */
export { sumRows, add, mul, axpy, scale, sumSquares, unary, unaryBackward, permute } from './elementwise.ts';
export { layerNorm, layerNormBackward, softmax, softmaxBackward } from './normalization.ts';
export { crossEntropy, crossEntropyBackward } from './loss.ts';
export { embedding, embeddingBackward } from './embedding.ts';
export { dropout, dropoutBackward } from './dropout.ts';
export { adamw } from './adamw.ts';
