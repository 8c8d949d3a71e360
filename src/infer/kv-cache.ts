/**
 * GPT-2 inference with a key/value cache: each layer keeps K and V of every token already seen in
 * [B, H, Tmax, D] buffers, so a decoding step runs the network on the new tokens only.
 *
 * This file walks the public modules of a GPT (transformer.h[i].attn.c_attn, …) and calls the backend
 * kernels on raw buffers directly — no autograd graph, no tensor allocations per op — with exactly the
 * math of GPT.forward (src/models/gpt.ts), so cached and uncached logits agree to float rounding:
 *
 *   x = wte[ids] + wpe[pos]
 *   per block:  a = LN1(x);  [q|k|v] = a·W_attn + b_attn;  append k, v to the cache
 *               y = softmax(q·Kᵀ/√D + causal mask aligned to the end) · V      (Tq = new, Tk = cached)
 *               x += y·W_proj + b_proj;  x += gelu(LN2(x)·W_fc + b_fc)·W_mproj + b_mproj
 *   logits = LN_f(x) · wteᵀ                                                     (tied head)
 *
 * Batches of prompts of different lengths are left-padded: pad columns are masked out of attention
 * through the kernel's key mask, and positions count real tokens only (pos = column − padding), which
 * is what a single-prompt run sees, so batched and single generation agree.
 */
import { backend } from '../backend/index.ts';
import { Unary, type Backend } from '../backend/types.ts';
import type { GPT, GPTConfig } from '../models/gpt.ts';

interface LayerWeights {
  ln1w: Float32Array; ln1b: Float32Array; ln2w: Float32Array; ln2b: Float32Array;
  attnW: Float32Array; attnB: Float32Array; projW: Float32Array; projB: Float32Array;
  fcW: Float32Array; fcB: Float32Array; mprojW: Float32Array; mprojB: Float32Array;
}

function f32(x: { data: Float32Array | Float64Array } | null): Float32Array {
  if (!x) throw new TypeError('kv-cache: GPT layers must have biases');
  if (!(x.data instanceof Float32Array)) throw new TypeError('kv-cache: cached inference needs float32 parameters');
  return x.data;
}

/** The raw parameter buffers of a GPT, in the order the forward pass uses them. */
function gptWeights(model: GPT) {
  const t = model.transformer;
  return {
    wte: f32(t.wte.weight), wpe: f32(t.wpe.weight), lnfW: f32(t.ln_f.weight), lnfB: f32(t.ln_f.bias),
    layers: t.h.map((b): LayerWeights => ({
      ln1w: f32(b.ln_1.weight), ln1b: f32(b.ln_1.bias), ln2w: f32(b.ln_2.weight), ln2b: f32(b.ln_2.bias),
      attnW: f32(b.attn.c_attn.weight), attnB: f32(b.attn.c_attn.bias), projW: f32(b.attn.c_proj.weight), projB: f32(b.attn.c_proj.bias),
      fcW: f32(b.mlp.c_fc.weight), fcB: f32(b.mlp.c_fc.bias), mprojW: f32(b.mlp.c_proj.weight), mprojB: f32(b.mlp.c_proj.bias),
    })),
  };
}

/** Per-layer K and V for a batch of sequences; columns [0, length) are filled. */
export class KVCache {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** Filled columns (the same for every sequence: shorter ones are left-padded). */
  length = 0;
  /** Leading pad columns of each sequence. */
  readonly padding: Int32Array;

  constructor(readonly batch: number, readonly layers: number, readonly heads: number, readonly headDim: number, readonly capacity: number) {
    const n = batch * heads * capacity * headDim;
    this.keys = Array.from({ length: layers }, () => new Float32Array(n));
    this.values = Array.from({ length: layers }, () => new Float32Array(n));
    this.padding = new Int32Array(batch);
  }

  static forModel(model: GPT, batch: number, capacity = model.config.n_positions): KVCache {
    const c = model.config;
    if (capacity > c.n_positions) throw new RangeError(`KVCache: capacity ${capacity} exceeds n_positions = ${c.n_positions}`);
    return new KVCache(batch, c.n_layer, c.n_head, c.n_embd / c.n_head, capacity);
  }

  reset(): void {
    this.length = 0;
    this.padding.fill(0);
  }

  /** Bytes held by the K and V buffers. */
  get bytes(): number {
    return 2 * this.layers * this.keys[0]!.byteLength;
  }
}

/**
 * C (rows×n) = A (rows×k) · W (k×n) + bias. Decoding multiplies a few rows by each weight matrix; the
 * backend's unpacked small-M path (≤ 4 rows) streams W once per call and is several times faster than
 * its packed path there, so up to 32 rows go through it in chunks of 4.
 */
function rowsTimesWeight(be: Backend, a: Float32Array, w: Float32Array, c: Float32Array, bias: Float32Array | null, rows: number, n: number, k: number): void {
  if (rows <= 4 || rows > 32) {
    be.gemm(a, w, c, bias, rows, n, k, false, false, false, 1, 0, 0, 0, false);
    return;
  }
  for (let r = 0; r < rows; r += 4) {
    const m = Math.min(4, rows - r);
    be.gemm(a.subarray(r * k, (r + m) * k), w, c.subarray(r * n, (r + m) * n), bias, m, n, k, false, false, false, 1, 0, 0, 0, false);
  }
}

/** wteᵀ (C×V) for the LM head: the row-major weight streams faster than V dot products (transB). */
export function transposedEmbedding(model: GPT): Float32Array {
  const { vocab_size: v, n_embd: c } = model.config;
  const out = new Float32Array(v * c);
  backend().permute(f32(model.transformer.wte.weight), out, [v, c], [1, 0], false);
  return out;
}

export interface CachedForwardOptions {
  /** transposedEmbedding(model), computed once per generation (weights may change between calls). */
  headT?: Float32Array;
  /** Logits for every new position ([B, T, V]) instead of the last one only ([B, V]). */
  allPositions?: boolean;
  /** Called per layer with the probabilities of the non-fused path (see attentionMaps). */
  capture?: (layer: number, q: Float32Array, k: Float32Array, t: number, tk: number) => void;
}

/**
 * Runs the new tokens ids (B×T, row-major) through the model, appending their K/V to the cache, and
 * returns logits. `padding` (first call only) gives each row's count of leading pad columns.
 */
export function forwardCached(model: GPT, cache: KVCache, ids: Int32Array, t: number, padding?: ArrayLike<number>, o: CachedForwardOptions = {}): Float32Array {
  const cfg: GPTConfig = model.config;
  const B = cache.batch, H = cache.heads, D = cache.headDim, C = cfg.n_embd, V = cfg.vocab_size, Tmax = cache.capacity;
  const inner = cfg.n_inner ?? 4 * C;
  const eps = cfg.layer_norm_epsilon ?? 1e-5;
  if (ids.length !== B * t || t < 1) throw new RangeError(`forwardCached: ${ids.length} ids for batch ${B} × length ${t}`);
  if (cache.length + t > Tmax) {
    throw new RangeError(`forwardCached: ${cache.length} cached + ${t} new tokens exceed the cache capacity ${Tmax} (n_positions = ${cfg.n_positions})`);
  }
  if (padding) {
    if (cache.length !== 0) throw new RangeError('forwardCached: padding can only be given for the first chunk');
    for (let b = 0; b < B; b++) {
      const p = padding[b]!;
      if (!Number.isInteger(p) || p < 0 || p >= t) throw new RangeError(`forwardCached: row ${b} padding ${p} must leave at least one token of ${t}`);
      cache.padding[b] = p;
    }
  }
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i]! >= 0 && ids[i]! < V)) throw new RangeError(`forwardCached: token ${ids[i]} at ${i} is outside the vocabulary (size ${V})`);
  }
  const be: Backend = backend();
  const w = gptWeights(model);
  const n = B * t;
  const start = cache.length;
  const tk = start + t;

  // Positions count real tokens: a left-padded row starts at 0 on its first real token.
  const pos = new Int32Array(n);
  for (let b = 0; b < B; b++) for (let i = 0; i < t; i++) pos[b * t + i] = Math.max(0, start + i - cache.padding[b]!);
  const x = new Float32Array(n * C);
  const tmp = new Float32Array(n * C);
  be.embedding(w.wte, ids, x, n, C);
  be.embedding(w.wpe, pos, tmp, n, C);
  be.add(x, tmp, x, n * C);

  let keyMask: Uint8Array | null = null;
  if (cache.padding.some((p) => p > 0)) {
    keyMask = new Uint8Array(B * tk).fill(1);
    for (let b = 0; b < B; b++) keyMask.fill(0, b * tk, b * tk + Math.min(cache.padding[b]!, tk));
  }

  const ln = new Float32Array(n * C);
  const mean = new Float32Array(n);
  const rstd = new Float32Array(n);
  const qkv = new Float32Array(n * 3 * C);
  const q = new Float32Array(n * C); // [B, H, T, D]
  const y = new Float32Array(n * C); // [B, H, T, D]
  const merged = new Float32Array(n * C); // [B, T, C]
  const lse = new Float32Array(B * H * t);
  const hidden = new Float32Array(n * inner);
  const scale = 1 / Math.sqrt(D);

  for (let l = 0; l < w.layers.length; l++) {
    const L = w.layers[l]!;
    const K = cache.keys[l]!, Vc = cache.values[l]!;
    be.layerNorm(x, L.ln1w, L.ln1b, ln, mean, rstd, n, C, eps);
    rowsTimesWeight(be, ln, L.attnW, qkv, L.attnB, n, 3 * C, C);
    // qkv row (b, i) = [q heads | k heads | v heads]; k, v go to cache column start + i.
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < t; i++) {
        const row = (b * t + i) * 3 * C;
        for (let h = 0; h < H; h++) {
          const src = row + h * D;
          const bh = b * H + h;
          q.set(qkv.subarray(src, src + D), (bh * t + i) * D);
          const dst = (bh * Tmax + start + i) * D;
          K.set(qkv.subarray(src + C, src + C + D), dst);
          Vc.set(qkv.subarray(src + 2 * C, src + 2 * C + D), dst);
        }
      }
    }
    // One kernel call per (sequence, head): the cache rows of a head are contiguous up to tk.
    for (let b = 0; b < B; b++) {
      const mask = keyMask ? keyMask.subarray(b * tk, (b + 1) * tk) : null;
      for (let h = 0; h < H; h++) {
        const bh = b * H + h;
        const qh = q.subarray(bh * t * D, (bh + 1) * t * D);
        const kh = K.subarray(bh * Tmax * D, bh * Tmax * D + tk * D);
        const vh = Vc.subarray(bh * Tmax * D, bh * Tmax * D + tk * D);
        be.attention(qh, kh, vh, y.subarray(bh * t * D, (bh + 1) * t * D), lse.subarray(bh * t, (bh + 1) * t), 1, 1, t, tk, D, scale, true, mask, false);
      }
    }
    o.capture?.(l, q, K, t, tk);
    be.permute(y, merged, [B, H, t, D], [0, 2, 1, 3], false);
    rowsTimesWeight(be, merged, L.projW, tmp, L.projB, n, C, C);
    be.add(x, tmp, x, n * C);
    be.layerNorm(x, L.ln2w, L.ln2b, ln, mean, rstd, n, C, eps);
    rowsTimesWeight(be, ln, L.fcW, hidden, L.fcB, n, inner, C);
    be.unary(cfg.activation_function === 'gelu' ? Unary.GeluErf : Unary.GeluTanh, hidden, hidden, n * inner);
    rowsTimesWeight(be, hidden, L.mprojW, tmp, L.mprojB, n, C, inner);
    be.add(x, tmp, x, n * C);
  }
  cache.length = tk;

  // Only the rows whose logits are asked for go through LN_f and the (large) vocabulary projection.
  let rows = n;
  let last = x;
  if (!o.allPositions) {
    rows = B;
    last = new Float32Array(B * C);
    for (let b = 0; b < B; b++) last.set(x.subarray((b * t + t - 1) * C, (b * t + t) * C), b * C);
  }
  const normed = new Float32Array(rows * C);
  be.layerNorm(last, w.lnfW, w.lnfB, normed, mean.subarray(0, rows), rstd.subarray(0, rows), rows, C, eps);
  const logits = new Float32Array(rows * V);
  if (o.headT) rowsTimesWeight(be, normed, o.headT, logits, null, rows, V, C);
  else be.gemm(normed, w.wte, logits, null, rows, V, C, false, true, false, 1, 0, 0, 0, false);
  return logits;
}
