/**
 * Checks of the option objects the library's long-running functions take (pretrain, pretrainBert,
 * finetuneTask, finetune). The CLI validates its flags as it parses them; a library caller has only
 * TypeScript, which a plain .mjs caller, a spread or an `as` cast bypasses. Without these checks a
 * misspelt key (`step`, `learningRate`) silently trains with the default, and a bad value (a negative
 * lr, a fractional batch size, gradClip 0, which would scale every update to nothing) fails minutes
 * later with an unrelated message, or not at all. Each check names the option; all run before any
 * file is written or any data is read. The values are checked by zod schemas; the messages are
 * worded like the CLI's.
 */
import { z } from 'zod';

/** The keys an options type has: a Record over keyof T, so adding an option without listing it fails to compile. */
export type OptionKeys<T> = Record<keyof T, true>;

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

/** The keys of a defaults object; only its required keys are typed as covered, so optional ones must still be listed. */
export function defaultKeys<T extends object>(defaults: T): Record<RequiredKeys<T>, true> {
  return Object.fromEntries(Object.keys(defaults).map((k) => [k, true])) as Record<RequiredKeys<T>, true>;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return d[b.length]!;
}

/**
 * Refuses a key the function does not know, with the nearest known one as a suggestion. Keys set to
 * undefined pass: they change nothing, and callers spread objects with optional fields.
 */
export function refuseUnknownOptions(fn: string, options: object, known: OptionKeys<object>): void {
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || Object.hasOwn(known, key)) continue;
    const near = Object.keys(known)
      .map((k) => ({ k, d: k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(k.toLowerCase(), key.toLowerCase()) }))
      .filter((x) => x.d <= Math.max(2, Math.floor(key.length / 3)) || x.k.toLowerCase().startsWith(key.toLowerCase()) || key.toLowerCase().startsWith(x.k.toLowerCase()))
      .sort((x, y) => x.d - y.d)[0];
    throw new TypeError(`${fn}: unknown option "${key}"${near ? ` (did you mean "${near.k}"?)` : ''}`);
  }
}

/** What an option must be, compactly; each spec becomes a zod schema (schemaOf). */
type Spec =
  | { int: number } // an integer ≥ this
  | { min: number; exclusive?: boolean } // a number ≥ (or >) this; Infinity allowed
  | { oneOf: readonly string[] }
  | { type: 'string' | 'boolean' | 'function' }
  | 'strings';

function schemaOf(spec: Spec): z.ZodType {
  if (spec === 'strings') return z.array(z.string());
  if ('type' in spec) return spec.type === 'function' ? z.custom<(...args: unknown[]) => unknown>((v) => typeof v === 'function') : spec.type === 'string' ? z.string() : z.boolean();
  if ('oneOf' in spec) return z.enum(spec.oneOf as [string, ...string[]]);
  if ('int' in spec) return z.number().int().min(spec.int);
  // zod's numbers are finite; Infinity is a meaningful setting here (gradClip: no clipping).
  const finite = spec.exclusive ? z.number().gt(spec.min) : z.number().min(spec.min);
  return z.union([finite, z.literal(Infinity)]);
}

/** The message's "must be …" and its error class: a value of the wrong kind is a TypeError, one out of range a RangeError. */
function expectation(spec: Spec, v: unknown): [string, typeof TypeError] {
  if (spec === 'strings') return ['an array of strings', TypeError];
  if ('type' in spec) return [`a ${spec.type}`, TypeError];
  if ('oneOf' in spec) return [`one of ${spec.oneOf.map((x) => JSON.stringify(x)).join(', ')}`, RangeError];
  if (typeof v !== 'number' || Number.isNaN(v)) return ['a number', TypeError];
  if ('int' in spec) return [`an integer ≥ ${spec.int}`, RangeError];
  return [`a number ${spec.exclusive ? '>' : '≥'} ${spec.min}`, RangeError];
}

/** Refuses a value that does not meet its spec, naming the option; undefined options are not checked. */
export function checkOptionValues(fn: string, options: Record<string, unknown>, specs: Record<string, Spec>): void {
  for (const [key, spec] of Object.entries(specs)) {
    const v = options[key];
    if (v === undefined || schemaOf(spec).safeParse(v).success) continue;
    const [expected, Err] = expectation(spec, v);
    throw new Err(`${fn}: ${key} must be ${expected}, got ${typeof v === 'string' || Array.isArray(v) ? JSON.stringify(v) : String(v)}`);
  }
}

/** The optimisation and bookkeeping settings every pre-training objective shares (RunSettings), as the CLI bounds them. */
export const RUN_SETTING_SPECS: Record<string, Spec> = {
  batchSize: { int: 1 }, gradAccum: { int: 1 }, steps: { int: 1 }, lr: { min: 0 }, minLr: { min: 0 }, warmupSteps: { int: 0 },
  decay: { oneOf: ['cosine', 'linear', 'constant'] }, weightDecay: { min: 0 },
  // 0 is not "off" here (the CLI's --grad-clip 0 becomes Infinity): a norm limit of 0 scales every update to nothing.
  gradClip: { min: 0, exclusive: true },
  dropout: { min: 0 }, bf16: { type: 'boolean' }, evalEvery: { int: 0 }, evalBatches: { int: 1 }, checkpointEvery: { int: 0 },
  keepCheckpoints: { int: 1 }, valFraction: { min: 0 }, seed: { int: 0 },
  corpus: 'strings', jsonlField: { type: 'string' }, vocabSize: { int: 1 }, layers: { int: 1 }, dims: { int: 1 }, heads: { int: 1 },
  tokenizer: { type: 'string' }, out: { type: 'string' }, resume: { type: 'string' }, log: { type: 'function' },
};

/** AdamW's betas: two numbers in [0, 1). */
const BETAS = z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]);
export function checkBetas(fn: string, betas: unknown): void {
  if (betas !== undefined && !BETAS.safeParse(betas).success) throw new RangeError(`${fn}: betas must be two numbers in [0, 1), got ${JSON.stringify(betas)}`);
}
