import type { FloatArray } from '../types.ts';
// Placeholder until the GEMM work lands.
export function gemm(..._args: unknown[]): void { throw new Error('reference gemm: not implemented yet'); }
export type { FloatArray };
