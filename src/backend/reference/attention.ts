/**
 * Reference scaled-dot-product attention: the executable spec of Backend.attention / attentionBackward.
 * Materialises one score row per query (length Tk) and accumulates in float64; the native kernel
 * computes the same thing block by block with an online softmax.
 *
 * Layout: q (B,H,Tq,D), k and v (B,Hkv,Tk,D), out (B,H,Tq,D), lse (B,H,Tq), keyMask (B,Tk) or null.
 * Grouped-query attention: with Hkv = kvHeads < H (H a multiple of Hkv), query head h reads key/value
 * head ⌊h/(H/Hkv)⌋ (HF's repeat_kv order) — no repeated K/V is materialised.
 * Query i may see key j when keyMask[b,j] = 1 and, if causal, j ≤ i + (Tk − Tq): the causal diagonal
 * is aligned to the END of the keys, so with a KV cache the Tq new queries follow the Tk − Tq cached keys.
 * Token-major layout (rowStrides [q, kv, out]): q, dq are B·Tq rows of rowStrides[0] floats with
 * head h at columns h·D … h·D + D, k, v, dk, dv B·Tk rows of rowStrides[1], out, dout B·Tq rows of
 * rowStrides[2] — e.g. q, k, v as column ranges of one fused projection, out ready for the output
 * projection. The spec gathers such rows into the head-major layout and scatters the results back.
 * Relative-position logits (HF relative_key): `relative` [B, Tq, H, 2Tk−1] adds r_ij =
 * relative[b, i, h, i − j + Tk − 1] to q_i·k_j before the scale (Tq = Tk); its gradient dRelative
 * has the same layout whatever rowStrides say.
 */
import type { FloatArray } from '../types.ts';
import { roundBf16 } from './bf16.ts';

function checkShapes(kernel: string, arrays: Record<string, FloatArray | Uint8Array | null>,
  b: number, h: number, tq: number, tk: number, d: number, hkv: number): void {
  for (const [name, n] of [['b', b], ['h', h], ['tq', tq], ['tk', tk], ['d', d], ['kvHeads', hkv]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`${kernel}: ${name} must be a non-negative integer, got ${n}`);
  }
  if (hkv > h || (hkv === 0 ? h !== 0 : h % hkv !== 0)) throw new RangeError(`${kernel}: h = ${h} must be a multiple of kvHeads = ${hkv}`);
  const need: Record<string, number> = {
    q: b * h * tq * d, k: b * hkv * tk * d, v: b * hkv * tk * d, out: b * h * tq * d, lse: b * h * tq,
    dout: b * h * tq * d, dq: b * h * tq * d, dk: b * hkv * tk * d, dv: b * hkv * tk * d, keyMask: b * tk,
    relative: relativeSize(b, h, tq, tk), dRelative: relativeSize(b, h, tq, tk),
  };
  if ((arrays.relative || arrays.dRelative) && tq !== tk) throw new RangeError(`${kernel}: relative logits need tq = tk, got tq=${tq}, tk=${tk}`);
  for (const [name, arr] of Object.entries(arrays)) {
    if (arr !== null && arr.length < need[name]!) {
      throw new RangeError(`${kernel}: ${name} has ${arr.length} elements, shape (b=${b}, h=${h}, tq=${tq}, tk=${tk}, d=${d}${hkv !== h ? `, kvHeads=${hkv}` : ''}) needs ${need[name]}`);
    }
  }
}

/** Elements of relative logits [B, Tq, H, 2Tk−1]. */
const relativeSize = (b: number, h: number, tq: number, tk: number) => (tk > 0 ? b * tq * h * (2 * tk - 1) : 0);
/** Offset of entry (i − j + Tk − 1) = 0 of row (b, i, h) of relative logits: r_ij sits at relativeRow(…) + i − j + tk − 1. */
const relativeRow = (bi: number, i: number, hi: number, h: number, tq: number, tk: number) => ((bi * tq + i) * h + hi) * (2 * tk - 1);

/** Row strides [q and dq, k v dk dv, out and dout] of the token-major layout. */
export type RowStrides = readonly [number, number, number];

/**
 * The token-major layout of one call: gather(x, name) copies x's rows into the head-major layout,
 * scatter(src, dst, name, accumulate) writes (or adds) a head-major result back into dst's rows.
 */
function tokenMajor(kernel: string, b: number, h: number, tq: number, tk: number, d: number, hkv: number,
  strides: RowStrides, arrays: Record<string, FloatArray>) {
  // every array takes the rows of q, of k (k, v, dk, dv) or of out (out, dout)
  const roleOf: Record<string, 'q' | 'k' | 'out'> = { q: 'q', dq: 'q', k: 'k', v: 'k', dk: 'k', dv: 'k', out: 'out', dout: 'out' };
  const geometry = (name: string) => {
    const role = roleOf[name];
    return role === 'q' ? { t: tq, heads: h, ld: strides[0] } : role === 'k' ? { t: tk, heads: hkv, ld: strides[1] } : { t: tq, heads: h, ld: strides[2] };
  };
  for (const [i, name] of ['q', 'k', 'out'].entries()) {
    const { heads, ld } = geometry(name);
    if (!Number.isInteger(ld) || ld < heads * d) throw new RangeError(`${kernel}: rowStrides[${i}] = ${ld} must hold the heads side by side (>= ${heads * d})`);
  }
  for (const [name, arr] of Object.entries(arrays)) {
    const { t, heads, ld } = geometry(name);
    const need = b * t === 0 || heads === 0 ? 0 : (b * t - 1) * ld + heads * d;
    if (arr.length < need) throw new RangeError(`${kernel}: ${name} has ${arr.length} elements, token-major rows of ${ld} (b=${b}, t=${t}, heads=${heads}, d=${d}) need ${need}`);
  }
  // element of head-major (bi, hh, i, c) ↔ token-major row bi·t + i, column hh·d + c
  const walk = (name: string, fn: (headMajor: number, tokenMajor: number) => void) => {
    const { t, heads, ld } = geometry(name);
    for (let bi = 0; bi < b; bi++)
      for (let hh = 0; hh < heads; hh++)
        for (let i = 0; i < t; i++)
          for (let c = 0; c < d; c++) fn(((bi * heads + hh) * t + i) * d + c, (bi * t + i) * ld + hh * d + c);
  };
  return {
    gather(x: FloatArray, name: string): Float64Array {
      const { t, heads } = geometry(name);
      const r = new Float64Array(b * heads * t * d);
      walk(name, (hm, tm) => (r[hm] = x[tm]!));
      return r;
    },
    scatter(src: FloatArray, dst: FloatArray, name: string, accumulate: boolean): void {
      walk(name, (hm, tm) => (dst[tm] = (accumulate ? dst[tm]! : 0) + src[hm]!));
    },
  };
}

/** Copy of x (or x itself) with every element rounded to bf16 when bf16 autocast is on. */
function maybeRound(x: FloatArray, n: number, bf16: boolean): FloatArray {
  if (!bf16) return x;
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) r[i] = roundBf16(x[i]!);
  return r;
}

/**
 * Scores of query row i of head (bi, hi): s_j = scale·(q_i·k_j + r_ij), or −∞ where masked. Returns
 * the row. qBase/kBase are the element offsets of the head's q and k matrices; relRow is the offset of
 * the row's relative logits (relativeRow), unused when relative is null (r = 0).
 */
function scoreRow(q: FloatArray, k: FloatArray, qBase: number, kBase: number, i: number, bi: number,
  tq: number, tk: number, d: number, scale: number, causal: boolean, keyMask: Uint8Array | null,
  relative: FloatArray | null, relRow: number): Float64Array {
  const s = new Float64Array(tk);
  const lastVisible = causal ? i + (tk - tq) : tk - 1;
  for (let j = 0; j < tk; j++) {
    if (j > lastVisible || (keyMask !== null && keyMask[bi * tk + j] === 0)) { s[j] = -Infinity; continue; }
    let dot = relative ? relative[relRow + i - j + tk - 1]! : 0;
    for (let c = 0; c < d; c++) dot += q[qBase + i * d + c]! * k[kBase + j * d + c]!;
    s[j] = scale * dot;
  }
  return s;
}

export function attention(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray,
  b: number, h: number, tq: number, tk: number, d: number, scale: number, causal: boolean,
  keyMask: Uint8Array | null, bf16: boolean, kvHeads: number = h, rowStrides: RowStrides | null = null,
  relative: FloatArray | null = null): void {
  kvHeads ??= h;
  relative ??= null;
  if (rowStrides) {
    const L = tokenMajor('attention', b, h, tq, tk, d, kvHeads, rowStrides, { q, k, v, out });
    const o = new Float64Array(b * h * tq * d);
    attention(L.gather(q, 'q'), L.gather(k, 'k'), L.gather(v, 'v'), o, lse, b, h, tq, tk, d, scale, causal, keyMask, bf16, kvHeads, null, relative);
    L.scatter(o, out, 'out', false);
    return;
  }
  checkShapes('attention', { q, k, v, out, lse, keyMask, relative }, b, h, tq, tk, d, kvHeads);
  const group = h / kvHeads;
  const qr = maybeRound(q, b * h * tq * d, bf16);
  const kr = maybeRound(k, b * kvHeads * tk * d, bf16);
  const vr = maybeRound(v, b * kvHeads * tk * d, bf16);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      const head = bi * h + hi;
      const qBase = head * tq * d, kBase = (bi * kvHeads + Math.floor(hi / group)) * tk * d;
      for (let i = 0; i < tq; i++) {
        const s = scoreRow(qr, kr, qBase, kBase, i, bi, tq, tk, d, scale, causal, keyMask, relative, relativeRow(bi, i, hi, h, tq, tk));
        let max = -Infinity;
        for (let j = 0; j < tk; j++) max = Math.max(max, s[j]!);
        const o = qBase + i * d;
        if (max === -Infinity) { // every key masked: defined as zero output, lse = −∞
          for (let c = 0; c < d; c++) out[o + c] = 0;
          lse[head * tq + i] = -Infinity;
          continue;
        }
        // Subtracting the row max keeps exp() from overflowing; it cancels in the normalisation.
        let sum = 0;
        for (let j = 0; j < tk; j++) sum += (s[j] = Math.exp(s[j]! - max));
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j < tk; j++) acc += s[j]! * vr[kBase + j * d + c]!;
          out[o + c] = acc / sum;
        }
        lse[head * tq + i] = max + Math.log(sum);
      }
    }
  }
}

/**
 * FlashAttention-2 style backward from the saved lse, with p_ij = exp(s_ij − lse_i):
 *   D_i = dout_i·out_i  (= Σ_j p_ij dout_i·v_j, the softmax Jacobian's row term)
 *   dv_j += Σ_i p_ij dout_i,   ds_ij = p_ij (dout_i·v_j − D_i),
 *   dq_i += scale Σ_j ds_ij k_j,   dk_j += scale Σ_i ds_ij q_i,   dRelative[b,i,h, i − j + Tk − 1] += scale ds_ij
 * (the code's ds includes the scale). With grouped-query attention dk and dv of a key/value head sum over the query heads of its group.
 * With bf16 autocast q, k, v and dout are rounded to bf16 first, as in the forward pass.
 */
export function attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray,
  dout: FloatArray, dq: FloatArray, dk: FloatArray, dv: FloatArray,
  b: number, h: number, tq: number, tk: number, d: number, scale: number, causal: boolean,
  keyMask: Uint8Array | null, bf16: boolean, kvHeads: number = h, rowStrides: RowStrides | null = null, accumulate = true,
  relative: FloatArray | null = null, dRelative: FloatArray | null = null): void {
  kvHeads ??= h;
  relative ??= null;
  dRelative ??= null;
  if (rowStrides) {
    const L = tokenMajor('attentionBackward', b, h, tq, tk, d, kvHeads, rowStrides, { q, k, v, out, dout, dq, dk, dv });
    // gradients of the element type of dq, dk, dv: a GQA group's heads round into them as they would in place
    const like = (x: FloatArray, n: number) => (x instanceof Float32Array ? new Float32Array(n) : new Float64Array(n));
    const [gq, gk, gv] = [like(dq, b * h * tq * d), like(dk, b * kvHeads * tk * d), like(dv, b * kvHeads * tk * d)];
    // relative logits have the same layout either way: passed through (and accumulate with them)
    attentionBackward(L.gather(q, 'q'), L.gather(k, 'k'), L.gather(v, 'v'), L.gather(out, 'out'), lse, L.gather(dout, 'dout'),
      gq, gk, gv, b, h, tq, tk, d, scale, causal, keyMask, bf16, kvHeads, null, accumulate, relative, dRelative);
    L.scatter(gq, dq, 'dq', accumulate);
    L.scatter(gk, dk, 'dk', accumulate);
    L.scatter(gv, dv, 'dv', accumulate);
    return;
  }
  checkShapes('attentionBackward', { q, k, v, out, lse, dout, dq, dk, dv, keyMask, relative, dRelative }, b, h, tq, tk, d, kvHeads);
  if (!accumulate) {
    dq.fill(0, 0, b * h * tq * d);
    dk.fill(0, 0, b * kvHeads * tk * d);
    dv.fill(0, 0, b * kvHeads * tk * d);
    dRelative?.fill(0, 0, relativeSize(b, h, tq, tk));
  }
  const group = h / kvHeads;
  const qr = maybeRound(q, b * h * tq * d, bf16);
  const kr = maybeRound(k, b * kvHeads * tk * d, bf16);
  const vr = maybeRound(v, b * kvHeads * tk * d, bf16);
  const dor = maybeRound(dout, b * h * tq * d, bf16);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      const head = bi * h + hi;
      // the query heads of a group add their dk, dv into the same key/value head
      const qBase = head * tq * d, kBase = (bi * kvHeads + Math.floor(hi / group)) * tk * d;
      // float64 accumulators, added to the (possibly fp32) gradients once at the end
      const dkAcc = new Float64Array(tk * d), dvAcc = new Float64Array(tk * d), dqRow = new Float64Array(d);
      for (let i = 0; i < tq; i++) {
        const rowLse = lse[head * tq + i]!;
        if (rowLse === -Infinity) continue; // fully masked row: its output is constant 0
        const relRow = relativeRow(bi, i, hi, h, tq, tk);
        const s = scoreRow(qr, kr, qBase, kBase, i, bi, tq, tk, d, scale, causal, keyMask, relative, relRow);
        const o = qBase + i * d;
        let rowD = 0;
        for (let c = 0; c < d; c++) rowD += dor[o + c]! * out[o + c]!;
        dqRow.fill(0);
        for (let j = 0; j < tk; j++) {
          if (s[j] === -Infinity) continue;
          const p = Math.exp(s[j]! - rowLse);
          const kv = kBase + j * d;
          let dp = 0;
          for (let c = 0; c < d; c++) {
            dp += dor[o + c]! * vr[kv + c]!;
            dvAcc[j * d + c] += p * dor[o + c]!;
          }
          const ds = scale * p * (dp - rowD);
          // r_ij enters s_ij like q_i·k_j does; one (i, j) per entry, so this add is its whole gradient
          if (dRelative) dRelative[relRow + i - j + tk - 1] += ds;
          for (let c = 0; c < d; c++) {
            dqRow[c] += ds * kr[kv + c]!;
            dkAcc[j * d + c] += ds * qr[o + c]!;
          }
        }
        for (let c = 0; c < d; c++) dq[o + c] += dqRow[c]!;
      }
      for (let x = 0; x < tk * d; x++) {
        dk[kBase + x] += dkAcc[x]!;
        dv[kBase + x] += dvAcc[x]!;
      }
    }
  }
}
