/**
 * Counter-based random numbers: every value is a pure function of (seed, counter), so results do not
 * depend on thread count or call order, and a kernel can recompute a dropout mask instead of storing
 * it. The native kernels implement `mix32` and `uniformAt` bit-exactly the same way.
 */

/** lowbias32 integer hash (Chris Wellons): a bijection on 32-bit integers with good avalanche. */
export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Uniform in [0, 1) with 24 bits: h = mix32((seed + mix32(counter)) mod 2³²), u = (h >>> 8) / 2²⁴.
 * In C: uint32_t h = mix32(seed + mix32(counter)); float u = (h >> 8) * (1.0f / 16777216.0f);
 * (seed and counter are taken mod 2³²; both are exactly representable as float, so u is exact.)
 */
export function uniformAt(seed: number, counter: number): number {
  const h = mix32((seed + mix32(counter)) >>> 0);
  return (h >>> 8) / 16777216;
}

/** A seeded stream built on the same hash: reproducible, cheap to save and restore (state = counter). */
export class Rng {
  constructor(public seed: number, public counter = 0) {
    this.seed = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return uniformAt(this.seed, this.counter++);
  }
  /** Standard normal via Box–Muller (uses two counters per value for simplicity and reproducibility). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A fresh 32-bit seed for a sub-stream (e.g. one dropout call). */
  nextSeed(): number {
    return mix32(this.seed ^ mix32(this.counter++ + 0x9e3779b9));
  }
  state(): { seed: number; counter: number } {
    return { seed: this.seed, counter: this.counter };
  }
}
