/**
 * The reference kernels, one file per family. Every function the family files export is a Backend
 * method of the same name: index.ts spreads this module into the backend table, so a new kernel
 * needs no list edited here (a new family file needs one `export *` line).
 */
export * from './gemm.ts';
export * from './attention.ts';
export * from './elementwise.ts';
export * from './normalization.ts';
export * from './loss.ts';
export * from './embedding.ts';
export * from './dropout.ts';
export * from './adamw.ts';
export * from './llama.ts';
