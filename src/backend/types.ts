/**
 * The kernel contract shared by the `native` (C, N-API) and `reference` (plain TypeScript)
 * backends. Everything above this layer (tensors, autograd, models) is backend-agnostic.
 *
 * Conventions — every implementation must follow them exactly:
 * - All arrays are dense, row-major, and may be subarrays (non-zero byteOffset).
 * - Forward kernels OVERWRITE their outputs.
 * - Backward kernels ACCUMULATE (+=) into every gradient output (dx, dweight, ...), so autograd can
 *   hand them the parents' zero-initialised gradient buffers directly.
 * - `bf16 = true` (autocast) means: round the GEMM/attention *inputs* to bfloat16 (round to nearest
 *   even), multiply, and accumulate in fp32; outputs stay fp32.
 * - The reference backend accepts Float32Array or Float64Array (float64 is used for finite-difference
 *   checks); the native backend accepts Float32Array only.
 * - Integer inputs (token ids, labels) are Int32Array; masks are Uint8Array (1 = keep).
 */
export type FloatArray = Float32Array | Float64Array;

export const enum Unary {
  GeluTanh = 0, // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))  — GPT-2 "gelu_new"
  GeluErf = 1, //  0.5 x (1 + erf(x / √2))                       — BERT "gelu"
  Tanh = 2,
  Relu = 3,
}

export interface Backend {
  readonly name: 'native' | 'reference';

  /**
   * Batched GEMM with bias epilogue. For each batch index i in [0, batch):
   *   C_i (m×n) = (accumulate ? C_i : 0) + op(A_i) · op(B_i) + bias
   * op(A) = transA ? Aᵀ where A_i is stored k×m : A_i stored m×k.
   * op(B) = transB ? Bᵀ where B_i is stored n×k : B_i stored k×n.
   * A_i starts at a[i*strideA], B_i at b[i*strideB], C_i at c[i*strideC] (strides in elements;
   * strideB = 0 shares one B across the batch). bias (length n) is added to every row, or null.
   */
  gemm(
    a: FloatArray, b: FloatArray, c: FloatArray, bias: FloatArray | null,
    m: number, n: number, k: number, transA: boolean, transB: boolean, accumulate: boolean,
    batch: number, strideA: number, strideB: number, strideC: number, bf16: boolean,
  ): void;

  /** out[j] (+)= Σ_r x[r, j] for x rows×cols — the bias gradient. Always accumulates into out. */
  sumRows(x: FloatArray, out: FloatArray, rows: number, cols: number): void;

  /** out[i] = a[i] + b[i] (same length n). out may alias a or b. */
  add(a: FloatArray, b: FloatArray, out: FloatArray, n: number): void;
  /** out[i] = a[i] · b[i]. out may alias a or b. */
  mul(a: FloatArray, b: FloatArray, out: FloatArray, n: number): void;
  /** y[i] += alpha · x[i] */
  axpy(alpha: number, x: FloatArray, y: FloatArray, n: number): void;
  /** out[i] = alpha · x[i]. out may alias x. */
  scale(x: FloatArray, alpha: number, out: FloatArray, n: number): void;
  /** Σ x[i]² accumulated in double — for global gradient-norm clipping. */
  sumSquares(x: FloatArray, n: number): number;

  /** out = f(x) elementwise for the Unary op. */
  unary(op: Unary, x: FloatArray, out: FloatArray, n: number): void;
  /** dx += f'(x) · dout; with accumulate false (default true) dx = f'(x) · dout, dx's old contents unread. */
  unaryBackward(op: Unary, x: FloatArray, dout: FloatArray, dx: FloatArray, n: number, accumulate?: boolean): void;

  /**
   * General permutation of a dense tensor of rank ≤ 6: out has shape shape[perm[0]], …,
   * out[idx] = x[idx mapped back through perm] (numpy.transpose semantics).
   * When accumulate is true, out += permuted x (used for the backward pass).
   */
  permute(x: FloatArray, out: FloatArray, shape: readonly number[], perm: readonly number[], accumulate: boolean): void;

  /**
   * LayerNorm over the last dim of x (rows×cols):
   *   μ = mean(x_r), σ² = mean((x_r-μ)²), rstd = 1/√(σ²+eps), out = (x-μ)·rstd·weight + bias
   * Saves mean[r] and rstd[r] for the backward pass.
   */
  layerNorm(x: FloatArray, weight: FloatArray, bias: FloatArray, out: FloatArray,
    mean: FloatArray, rstd: FloatArray, rows: number, cols: number, eps: number): void;
  /**
   * x̂ = (x-μ)·rstd, g = dout·weight:
   *   dx += rstd · (g − mean(g) − x̂ · mean(g·x̂)),  dweight += Σ_r dout·x̂,  dbias += Σ_r dout
   * With accumulateDx = false (default true) dx = 0 + rstd·(…): its old contents are never read (a
   * fresh gradient buffer need not be zeroed), with the bits of adding into zeros.
   */
  layerNormBackward(dout: FloatArray, x: FloatArray, weight: FloatArray, mean: FloatArray, rstd: FloatArray,
    dx: FloatArray, dweight: FloatArray, dbias: FloatArray, rows: number, cols: number, accumulateDx?: boolean): void;

  /** Row softmax of x (rows×cols): out = exp(x − max) / Σ exp(x − max). */
  softmax(x: FloatArray, out: FloatArray, rows: number, cols: number): void;
  /** dx += y ⊙ (dy − Σ_j dy_j·y_j) per row, where y = softmax output. */
  softmaxBackward(y: FloatArray, dy: FloatArray, dx: FloatArray, rows: number, cols: number): void;

  /**
   * Fused softmax cross-entropy over logits (rows×V) with integer labels. Rows whose label equals
   * ignoreIndex get loss 0 and are skipped. With label smoothing ε:
   *   loss_r = lse_r − (1−ε)·z[label] − (ε/V)·Σ_j z_j,   lse_r = log Σ_j exp(z_j)
   * Writes loss[r] and lse[r]; returns the number of non-ignored rows.
   * Out-of-range labels (not ignoreIndex and not in [0,V)) throw a RangeError naming the row.
   */
  crossEntropy(logits: FloatArray, labels: Int32Array, loss: FloatArray, lse: FloatArray,
    rows: number, v: number, ignoreIndex: number, smoothing: number): number;
  /**
   * dlogits[r,j] += scale · (softmax(z_r)_j − (1−ε)·[j = label_r] − ε/V) for non-ignored rows;
   * scale is d(total)/d(loss_r) (e.g. 1/count for a mean).
   */
  crossEntropyBackward(logits: FloatArray, labels: Int32Array, lse: FloatArray, dlogits: FloatArray,
    rows: number, v: number, ignoreIndex: number, smoothing: number, scale: number): void;

  /** out[i, :] = table[ids[i], :] for i < n (table rows×dim). Out-of-range ids throw RangeError. */
  embedding(table: FloatArray, ids: Int32Array, out: FloatArray, n: number, dim: number): void;
  /** dtable[ids[i], :] += dout[i, :] (scatter-add; must be race-free when threaded). */
  embeddingBackward(dout: FloatArray, ids: Int32Array, dtable: FloatArray, n: number, dim: number): void;

  /**
   * Dropout with a counter-based RNG, so the mask is recomputed (not stored) for backward and does
   * not depend on thread count: keep_i = uniform(seed, offset + i) ≥ p; out_i = keep_i ? x_i/(1−p) : 0.
   * uniform(seed, c) is defined in src/util/random.ts (`uniformAt`) and must match bit-exactly.
   */
  dropout(x: FloatArray, out: FloatArray, n: number, p: number, seed: number, offset: number): void;
  /** dx_i += keep_i ? dout_i/(1−p) : 0 with the same mask as dropout. */
  dropoutBackward(dout: FloatArray, dx: FloatArray, n: number, p: number, seed: number, offset: number): void;

  /**
   * RMSNorm over the last dim of x (rows×cols) — Llama's norm, LayerNorm without mean or bias:
   *   rstd = 1/√(mean(x_r²)+eps), out = x·rstd·weight.  Saves rstd[r] for the backward pass.
   */
  rmsNorm(x: FloatArray, weight: FloatArray, out: FloatArray, rstd: FloatArray, rows: number, cols: number, eps: number): void;
  /** x̂ = x·rstd, g = dout·weight:  dx += rstd·(g − x̂·mean(g·x̂)),  dweight += Σ_r dout·x̂ */
  rmsNormBackward(dout: FloatArray, x: FloatArray, weight: FloatArray, rstd: FloatArray,
    dx: FloatArray, dweight: FloatArray, rows: number, cols: number): void;

  /**
   * Rotary position embedding, HF's rotate_half convention, on x (rows, heads, d), d even, h = d/2.
   * Row r sits at position positions[r] (so a KV-cache offset is just larger positions); cos and sin
   * are tables (tableRows × h) with cos[p, i] = cos(p·inv_freq_i). For i < h, c = cos[p,i], s = sin[p,i]:
   *   out_i = x_i·c − x_{i+h}·s,   out_{i+h} = x_{i+h}·c + x_i·s     (= x·cos + rotate_half(x)·sin)
   * out may alias x. A position outside [0, tableRows) throws a RangeError naming the row.
   */
  rope(x: FloatArray, cos: FloatArray, sin: FloatArray, positions: Int32Array, out: FloatArray,
    rows: number, heads: number, d: number, tableRows: number): void;
  /** The transpose (rotation by −θ): dx_i += dout_i·c + dout_{i+h}·s,  dx_{i+h} += dout_{i+h}·c − dout_i·s */
  ropeBackward(dout: FloatArray, cos: FloatArray, sin: FloatArray, positions: Int32Array, dx: FloatArray,
    rows: number, heads: number, d: number, tableRows: number): void;

  /** SwiGLU gate: out = silu(gate)·up = gate·σ(gate)·up, elementwise over n. out may alias gate or up. */
  siluMul(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void;
  /** σ = σ(gate):  dgate += dout·up·σ·(1 + gate·(1−σ)),  dup += dout·gate·σ */
  siluMulBackward(gate: FloatArray, up: FloatArray, dout: FloatArray, dgate: FloatArray, dup: FloatArray, n: number): void;

  /**
   * Fused scaled-dot-product attention, q (B,H,Tq,D), k and v (B,Hkv,Tk,D), out (B,H,Tq,D):
   *   s_ij = scale · (q_i·k_j + r_ij), masked to −∞ where (causal and j > i + (Tk−Tq)) or keyMask[b, j] = 0,
   *   out_i = Σ_j softmax_j(s_i)·v_j,   lse[b,h,i] = log Σ_j exp(s_ij)   (saved for backward).
   * Online softmax over key blocks (flash-attention style): no Tq×Tk matrix is kept.
   * A row with every key masked outputs zeros and lse = −∞ (and gets zero gradient).
   * keyMask is (B,Tk) bytes, 1 = attend, or null.
   * Grouped-query / multi-query attention: kvHeads = Hkv (default H) divides H, and query head h reads
   * key/value head ⌊h/(H/Hkv)⌋ (HF's repeat_kv order) without the repeated K/V being materialised.
   * rowStrides [q, kv, out] (default null: the head-major layout above) switches to the token-major
   * layout: q, k, v, out are B·T rows of that many floats with head h at columns h·D … h·D + D (q, k,
   * v as column ranges of one fused projection, out [B, Tq, H·D] ready for the output projection).
   * relative (default null: r = 0) adds relative-position logits, HF's relative_key (Shaw et al.):
   * it is [B, Tq, H, 2Tk−1] (dense, whatever rowStrides says) and r_ij = relative[b, i, h, i − j + Tk − 1],
   * entry m of row (b, i, h) belonging to distance i − j = m − (Tk − 1). Needs Tq = Tk. BERT's
   * relative_key passes relative = q·dᵀ over the 2T − 1 rows of its distance table, so that
   * scale·(q_i·k_j + r_ij) = scale·q_i·(k_j + d_{i−j}). Not rounded under bf16 autocast.
   */
  attention(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray,
    b: number, h: number, tq: number, tk: number, d: number, scale: number, causal: boolean,
    keyMask: Uint8Array | null, bf16: boolean, kvHeads?: number, rowStrides?: readonly [number, number, number] | null,
    relative?: FloatArray | null): void;
  /**
   * Recomputes p_ij = exp(s_ij − lse_i) block by block (s_ij including relative); with D_i = Σ_d dout_i·out_i:
   *   dv_j += Σ_i p_ij·dout_i,  ds_ij = p_ij·(dout_i·v_j − D_i),
   *   dq_i += scale·Σ_j ds_ij·k_j,  dk_j += scale·Σ_i ds_ij·q_i,
   *   dRelative[b, i, h, i − j + Tk − 1] += scale·ds_ij   (∂s_ij/∂r_ij = scale; each entry has one (i, j))
   * With kvHeads < H, dk and dv of a key/value head sum over the query heads of its group.
   * dq, dk, dv share the layout of q, k, v (rowStrides as in attention); dRelative (default null: not
   * computed) that of relative, and gets 0 where no visible key j has that distance (out of range,
   * masked, causal). accumulate = false (default true) overwrites every element of dq, dk, dv and
   * dRelative instead of adding (a fresh buffer need not be zeroed).
   */
  attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray,
    dout: FloatArray, dq: FloatArray, dk: FloatArray, dv: FloatArray,
    b: number, h: number, tq: number, tk: number, d: number, scale: number, causal: boolean,
    keyMask: Uint8Array | null, bf16: boolean, kvHeads?: number, rowStrides?: readonly [number, number, number] | null,
    accumulate?: boolean, relative?: FloatArray | null, dRelative?: FloatArray | null): void;

  /**
   * Fused AdamW (decoupled weight decay, PyTorch semantics), step t ≥ 1:
   *   p −= lr·wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
   *   p −= lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + eps)
   */
  adamw(param: FloatArray, grad: FloatArray, m: FloatArray, v: FloatArray, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  /**
   * AdamW over many tensors in one call (one kernel launch per optimizer step instead of one per
   * parameter). For each t, with n_t = params[t].length and g = gradScale·grads[t][i] rounded to the
   * grads array's element type (exactly what scale(grads[t], gradScale, grads[t]) would store):
   *   adamw(params[t], g, m[t], v[t], n_t, lr, beta1, beta2, eps, weightDecay[t], step)
   * Bit-identical to that scale + adamw sequence. grads, m and v hold at least n_t elements each.
   */
  adamwGroup(params: readonly FloatArray[], grads: readonly FloatArray[], m: readonly FloatArray[], v: readonly FloatArray[],
    weightDecay: readonly number[], lr: number, beta1: number, beta2: number, eps: number, step: number, gradScale: number): void;
  /**
   * Σ_t sumSquares(xs[t], xs[t].length), the tensor sums added in order to a double starting at 0 —
   * bit-identical to `let s = 0; for (const x of xs) s += sumSquares(x, x.length)`.
   */
  sumSquaresGroup(xs: readonly FloatArray[]): number;
}
