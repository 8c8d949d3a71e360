/**
 * The reference backend: plain, readable TypeScript — the executable specification of every kernel.
 * Slow on purpose (float64 accumulation, no tricks); tests check the native backend against it.
 *
 * This table is the one list of the backend's ops: the native backend takes its method names from it
 * (src/backend/native.ts), and `satisfies Backend` fails to compile when a kernel is missing.
 */
import type { Backend } from '../types.ts';
import * as kernels from './kernels.ts';

export const referenceBackend = { name: 'reference', ...kernels } satisfies Backend as Backend;

/** Every kernel name of the Backend interface, in the reference table's order. */
export const BACKEND_METHODS: ReadonlyArray<Exclude<keyof Backend, 'name'>> = Object.keys(kernels) as Array<Exclude<keyof Backend, 'name'>>;
