export * from './tensor.ts';
export * from './ops.ts';
export * from './nn-ops.ts';
export * from './llama-ops.ts';
export * from './optim.ts';
export { Rng, mix32, uniformAt } from '../util/random.ts';
export { poolStats, clearPool, resetPeak } from './pool.ts';
