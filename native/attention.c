// Fused scaled-dot-product attention, flash-attention style (contract: Backend.attention in
// src/backend/types.ts). Per head, queries and keys are cut into blocks of NB:
//   forward:  for each query block, over the key blocks it can see, Sᵀ = scale·K·Qᵀ (keys × queries,
//             masked to −∞) and an online softmax keeps per query the running max m and sum l:
//               m' = max(m, max_j s_j),  l' = l·e^(m−m') + Σ_j e^(s_j−m'),  O' = O·e^(m−m') + P·V,
//             finally out = O/l and lse = m + log l. No Tq×Tk matrix exists.
//   backward (FlashAttention-2): with D_i = dout_i·out_i, per (query block, key block) recompute
//             P = e^(scale·Q·Kᵀ − lse), then dP = dO·Vᵀ, dS = scale·P∘(dP − D),
//             dV += Pᵀ·dO, dK += dSᵀ·Q, dQ += dS·K.
// Relative-position logits (HF relative_key, optional; attention_relative.inc): s_ij = scale·(q_i·k_j + r_ij)
// with r_ij = rel[b, i, h, i − j + Tk − 1] ([B, Tq, H, 2Tk−1], Tq = Tk), added to each score tile before
// the softmax (forward) and before P is recomputed (backward). ∂s_ij/∂r_ij = scale = ∂s_ij/∂(q_i·k_j), so
// the backward's dS (which includes the scale) is dRel itself, one entry per (i, j): dRel[b,i,h, i−j+Tk−1] = dS_ij.
// Products are register-tiled broadcast-FMA micro-kernels on GCC vector types: mul_abt runs along the
// lanes of a transposed (d × NB) operand, mul_acc along the (padded) feature dimension, so any D
// works; both skip the tiles that the causal mask zeroes. The forward pass keeps the queries on the
// lanes (Sᵀ) so its softmax is vertical (no horizontal reductions) and K is read in place; only the
// query block is transposed. The backward pass packs each head once and gives every thread whole heads
// (or, with too few heads, splits dK/dV and dQ into separate passes that redo P).
// Grouped-query attention (kvHeads < h): query head hh of batch bi reads key/value head
// bi·kvHeads + hh/(h/kvHeads) in place (no repeated K/V); in the backward pass a thread owns a whole
// group (the query heads sharing a key/value head, in order), so dk/dv rows are never shared.
// bf16 autocast rounds q, k, v (and dout) to bfloat16 while packing. With AVX512_BF16, VDPBF16PS runs
// the forward's K·Qᵀ and P·V (P rounded to bf16 too) and the backward's Q·Kᵀ and dO·Vᵀ (products of
// rounded inputs only); everything else is fp32 FMAs on the rounded values.
#include "common.h"
#include "kernels_args.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

#include "vec_minmax.h"
#include "attention_tiles.inc"
#include "transpose_vl.inc"

// The arguments of one call, shared by all threads.
typedef struct {
  const float *q, *k, *v, *out, *lse, *dout;
  float *out_w, *lse_w, *dq, *dk, *dv;
  const float *rel; // relative logits [B, Tq, H, 2Tk−1] or NULL
  float *drel;      // backward: their gradient (same layout) or NULL (not computed)
  const uint8_t *mask;
  int64_t b, h, hkv, group, tq, tk, d, dp; // group = h / hkv query heads per key/value head
  // Row strides in floats of q and dq, of k, v, dk and dv, and of out and dout. Head-major (the
  // default): [B, heads, T, D], all strides d. Token-major: [B, T, ·] rows of a wider buffer holding
  // the heads side by side (e.g. q, k, v columns of a fused projection), head hh at column hh·d.
  int64_t ldq, ldkv, ldo;
  float scale;
  bool causal, bf16, token_major;
  bool accumulate; // backward: false = dq, dk, dv are overwritten (their old contents never read)
} attn_args;

// The key/value head (index into k, v, dk, dv) that query head `head` (= batch·h + hh) reads.
static inline int64_t kv_head(const attn_args *a, int64_t head) {
  return head / a->h * a->hkv + head % a->h / a->group;
}
// Offset of row i of query head `head` in q, dq (ld = ldq) or out, dout (ld = ldo).
static inline int64_t q_at(const attn_args *a, int64_t head, int64_t i, int64_t ld) {
  return a->token_major ? (head / a->h * a->tq + i) * ld + head % a->h * a->d : (head * a->tq + i) * a->d;
}
// Offset of row j of key/value head kvh in k, v, dk, dv.
static inline int64_t kv_at(const attn_args *a, int64_t kvh, int64_t j) {
  return a->token_major ? (kvh / a->hkv * a->tk + j) * a->ldkv + kvh % a->hkv * a->d : (kvh * a->tk + j) * a->d;
}

#include "attention_relative.inc"

// dst[c·ldd + i] = src[i·lds + c] for the rows × cols block (both multiples of VL) by VL×VL register
// transposes; source rows from `valid` on read as zeros, values rounded to bf16 when asked. (A pure
// copy: the same values as an element-by-element loop.)
static void transpose_rows(const float *src, int64_t lds, int64_t rows, int64_t valid, int64_t cols, float *dst, int64_t ldd, bool bf16) {
  for (int64_t i = 0; i < rows; i += VL)
    for (int64_t c = 0; c < cols; c += VL) {
      vf r[VL];
      for (int u = 0; u < VL; u++) {
        r[u] = i + u < valid ? *(const vf_u *)(src + (i + u) * lds + c) : (vf){0};
        if (bf16) r[u] = vround_bf16(r[u]);
      }
      transpose_vl(r);
      for (int u = 0; u < VL; u++) *(vf_u *)(dst + (c + u) * ldd + i) = r[u];
    }
}

// Thread-local scratch, grown on demand and reused across calls (no malloc in steady state).
static __thread float *tls_scratch;
static __thread size_t tls_scratch_len;
static float *scratch(size_t n) {
  if (n > tls_scratch_len) {
    free(tls_scratch);
    tls_scratch = aligned_alloc(64, (size_t)round_up((int64_t)n * 4, 64));
    tls_scratch_len = tls_scratch ? n : 0;
  }
  return tls_scratch;
}
// Carves the next n floats (64-byte aligned) off *cursor.
static float *carve(float **cursor, int64_t n) { float *p = *cursor; *cursor += round_up(n, 16); return p; }

// bias[j] = 0 where key k0+j exists and keyMask allows it, else −∞; returns whether any key is visible.
static bool key_bias(const attn_args *a, int64_t bi, int64_t k0, float *bias) {
  const int64_t kcount = min64(NB, a->tk - k0);
  bool any = false;
  for (int64_t j = 0; j < NB; j++) {
    bool visible = j < kcount && (!a->mask || a->mask[bi * a->tk + k0 + j]);
    bias[j] = visible ? 0.0f : -INFINITY;
    any |= visible;
  }
  return any;
}

// ---------------------------------------------------------------------------------------------------
// Forward

static int64_t forward_scratch_len(int64_t d, int64_t dp) {
  const int64_t npair = (d + 1) / 2;
  const int64_t kh_stride = round_up(npair, VL);
  return d * NB + 2 * NB * dp + NB * d + NB * NB + 4 * NB             // Qᵀ, O, V, K, Sᵀ, m, l, alpha, bias
    + npair * NB + NB * kh_stride + NB / 2 * dp + NB / 2 * NB + 14 * 16; // the same as bf16 pairs
}

// First lane (query of the block) that sees key j: NB when keyMask hides the key, else j − diag
// clamped to [0, NB] (query i sees key j when j ≤ i + diag).
static inline int64_t first_lane(const float *bias, int64_t j, int64_t diag) {
  return bias[j] != 0.0f ? NB : min64(NB, max64(0, j - diag));
}

// Blocks of at most FEW_ROWS queries (decoding with a KV cache: one new token per step) would waste
// most of every lane vector in forward_block, so they take one query at a time with dot products
// along d: per key block s_j = scale·q·k_j, then the same online softmax update and o += Σ_j p_j·v_j.
#define FEW_ROWS 4

// x (d floats, any alignment) loaded as padded vectors, rounded to bf16 when asked.
static inline vf load_chunk(const float *x, int64_t c, int64_t d, bool bf16) {
  vf v;
  if (c + VL <= d) v = *(const vf_u *)(x + c);
  else for (int l = 0; l < VL; l++) v[l] = c + l < d ? x[c + l] : 0.0f;
  return bf16 ? vround_bf16(v) : v;
}

// bf16 and `whole` (d a whole number of vectors) are constants in each of forward_rows' four copies,
// so the per-chunk tests of load_chunk leave the inner loops.
#define LOAD_CHUNK(x, c, d, bf16) (whole ? (bf16 ? vround_bf16(*(const vf_u *)((x) + (c))) : *(const vf_u *)((x) + (c))) : load_chunk(x, c, d, bf16))
static inline __attribute__((always_inline))
void forward_rows_of(const attn_args *a, int64_t head, int64_t q0, int64_t rows, float *ws, const bool bf16, const bool whole) {
  const int64_t d = a->d, dp = a->dp, tq = a->tq, tk = a->tk, off = tk - tq, bi = head / a->h;
  float *cur = ws;
  float *qv = carve(&cur, dp), *o = carve(&cur, dp), *s = carve(&cur, NB), *bias = carve(&cur, NB);
  const int64_t ldkv = a->ldkv;
  const float *k = a->k + kv_at(a, kv_head(a, head), 0), *v = a->v + kv_at(a, kv_head(a, head), 0);
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = q0 + r;
    const float *rel = a->rel ? a->rel + rel_at(a, head, i) : NULL; // key j at rel[−j]
    for (int64_t c = 0; c < dp; c += VL) *(vf *)(qv + c) = LOAD_CHUNK(a->q + q_at(a, head, i, a->ldq), c, d, bf16);
    memset(o, 0, sizeof(float) * dp);
    float m = -INFINITY, l = 0.0f;
    const int64_t kend = a->causal ? min64(tk, i + off + 1) : tk;
    for (int64_t k0 = 0; k0 < kend; k0 += NB) {
      if (!key_bias(a, bi, k0, bias)) continue;
      const int64_t kcount = min64(NB, kend - k0);
      // Four keys at a time: four independent sums instead of one chain of dependent adds (each key's
      // sum still runs over the chunks in order, so its bits are those of one key at a time).
      int64_t j = 0;
      for (; j + 4 <= kcount; j += 4) {
        const float *kj = k + (k0 + j) * ldkv;
        vf acc[4] = {{0}, {0}, {0}, {0}};
        for (int64_t c = 0; c < dp; c += VL) {
          const vf qc = *(vf *)(qv + c);
          for (int u = 0; u < 4; u++) acc[u] += qc * LOAD_CHUNK(kj + u * ldkv, c, d, bf16);
        }
        for (int u = 0; u < 4; u++)
          s[j + u] = bias[j + u] != 0.0f ? -INFINITY : a->scale * (hsum(acc[u]) + (rel ? rel[-(k0 + j + u)] : 0.0f));
      }
      for (; j < NB; j++) {
        if (j >= kcount || bias[j] != 0.0f) { s[j] = -INFINITY; continue; }
        vf acc = (vf){0};
        for (int64_t c = 0; c < dp; c += VL) acc += *(vf *)(qv + c) * LOAD_CHUNK(k + (k0 + j) * ldkv, c, d, bf16);
        s[j] = a->scale * (hsum(acc) + (rel ? rel[-(k0 + j)] : 0.0f));
      }
      vf mx = (vf){0} - INFINITY;
      for (int jv = 0; jv < NB; jv += VL) mx = vmax(mx, *(vf *)(s + jv));
      const float m_new = fmaxf(m, hmax(mx));
      if (m_new == -INFINITY) continue;
      vf sum = (vf){0};
      for (int jv = 0; jv < NB; jv += VL) { vf p = vexp(*(vf *)(s + jv) - m_new); *(vf *)(s + jv) = p; sum += p; }
      const float alpha = m == -INFINITY ? 0.0f : expf(m - m_new);
      l = l * alpha + hsum(sum);
      m = m_new;
      // o = α·o + Σ_j p_j·v_j, four vectors of o held in registers across the keys (in memory each
      // key's update waited for the previous one's store); same operations, same order per element.
      int64_t c = 0;
      for (; c + 4 * VL <= dp; c += 4 * VL) {
        vf acc[4];
        for (int u = 0; u < 4; u++) acc[u] = *(vf *)(o + c + u * VL) * alpha;
        for (int64_t j = 0; j < kcount; j++) {
          if (s[j] == 0.0f) continue;
          const float *vj = v + (k0 + j) * ldkv;
          for (int u = 0; u < 4; u++) acc[u] += s[j] * LOAD_CHUNK(vj, c + u * VL, d, bf16);
        }
        for (int u = 0; u < 4; u++) *(vf *)(o + c + u * VL) = acc[u];
      }
      for (; c < dp; c += VL) {
        vf acc = *(vf *)(o + c) * alpha;
        for (int64_t j = 0; j < kcount; j++)
          if (s[j] != 0.0f) acc += s[j] * LOAD_CHUNK(v + (k0 + j) * ldkv, c, d, bf16);
        *(vf *)(o + c) = acc;
      }
    }
    float *out = a->out_w + q_at(a, head, i, a->ldo);
    if (l == 0.0f) { memset(out, 0, sizeof(float) * d); a->lse_w[head * tq + i] = -INFINITY; continue; }
    for (int64_t c = 0; c < d; c++) out[c] = o[c] / l;
    a->lse_w[head * tq + i] = m + logf(l);
  }
}

#undef LOAD_CHUNK

static void forward_rows(const attn_args *a, int64_t head, int64_t q0, int64_t rows, float *ws) {
  const bool whole = a->d % VL == 0;
  if (a->bf16) {
    if (whole) forward_rows_of(a, head, q0, rows, ws, true, true);
    else forward_rows_of(a, head, q0, rows, ws, true, false);
  } else {
    if (whole) forward_rows_of(a, head, q0, rows, ws, false, true);
    else forward_rows_of(a, head, q0, rows, ws, false, false);
  }
}

// One (head, query block of NB rows from q0). ws is this thread's scratch (forward_scratch_len floats).
static void forward_block(const attn_args *a, int64_t head, int64_t q0, float *ws) {
  const int64_t d = a->d, dp = a->dp, tq = a->tq, tk = a->tk, off = tk - tq, bi = head / a->h;
  const int64_t rows = min64(NB, tq - q0), rows4 = round_up(rows, MR), npair = (d + 1) / 2;
  if (rows <= FEW_ROWS) { forward_rows(a, head, q0, rows, ws); return; }
  const int nvl = (int)((rows + VL - 1) / VL); // vectors of lanes holding the block's queries
  const bool bf16 = a->bf16;
#ifdef __AVX512BF16__
  const bool dpbf16 = bf16;
#else
  const bool dpbf16 = false;
#endif
  float *cur = ws;
  float *Qt = carve(&cur, d * NB), *O = carve(&cur, NB * dp), *Vb = carve(&cur, NB * dp), *Kb = carve(&cur, NB * d);
  float *St = carve(&cur, NB * NB), *m = carve(&cur, NB), *l = carve(&cur, NB), *alpha = carve(&cur, NB), *bias = carve(&cur, NB);
  const int64_t kh_stride = round_up(npair, VL);
  uint32_t *Qth = (uint32_t *)carve(&cur, npair * NB), *Kh = (uint32_t *)carve(&cur, NB * kh_stride);
  uint32_t *Vh = (uint32_t *)carve(&cur, NB / 2 * dp), *Ph = (uint32_t *)carve(&cur, NB / 2 * NB);
  (void)Qth; (void)Kh; (void)Vh; (void)Ph; (void)kh_stride;
  const int64_t ldq = a->ldq, ldkv = a->ldkv, ldo = a->ldo;
  const float *q = a->q + q_at(a, head, q0, ldq), *k = a->k + kv_at(a, kv_head(a, head), 0), *v = a->v + kv_at(a, kv_head(a, head), 0);

  // Qᵀ: the block's queries along the lanes, padding lanes zero.
  if (d % VL == 0) transpose_rows(q, ldq, NB, rows, d, Qt, NB, bf16);
  else
    for (int64_t i = 0; i < NB; i++)
      for (int64_t c = 0; c < d; c++) Qt[c * NB + i] = i >= rows ? 0.0f : bf16 ? round_bf16(q[i * ldq + c]) : q[i * ldq + c];
#ifdef __AVX512BF16__
  if (dpbf16)
    for (int64_t p = 0; p < npair; p++) pack_pairs_of_rows(Qt + 2 * p * NB, 2 * p + 1 < d ? Qt + (2 * p + 1) * NB : NULL, NB, NB, Qth + p * NB);
#endif
  memset(O, 0, sizeof(float) * rows4 * dp);
  for (int64_t i = 0; i < NB; i++) { m[i] = -INFINITY; l[i] = 0.0f; }

  // With the causal mask the block's last query sees keys up to q0 + rows − 1 + off.
  const int64_t kend = a->causal ? min64(tk, q0 + rows + off) : tk;
  for (int64_t k0 = 0; k0 < kend; k0 += NB) {
    if (!key_bias(a, bi, k0, bias)) continue;
    const int64_t kcount = min64(NB, tk - k0), kc4 = round_up(kcount, MR);
    const int64_t diag = a->causal ? q0 + off - k0 : NO_LIMIT;
    const float *kin = k + k0 * ldkv, *vin = v + k0 * ldkv, *V = vin;
    int64_t ldv = ldkv;
    if (dpbf16) {
#ifdef __AVX512BF16__
      for (int64_t j = 0; j < kcount; j++) pack_pairs_in_row(kin + j * ldkv, d, Kh + j * kh_stride);
      memset(Kh + kcount * kh_stride, 0, sizeof(uint32_t) * (kc4 - kcount) * kh_stride);
      for (int64_t jp = 0; jp < (kcount + 1) / 2; jp++)
        pack_pairs_of_rows(vin + 2 * jp * ldkv, 2 * jp + 1 < kcount ? vin + (2 * jp + 1) * ldkv : NULL, d, dp, Vh + jp * dp);
      mul_abt_bf16(Kh, kh_stride, npair, Qth, a->scale, St, kc4, diag, NO_LIMIT, rows);
#endif
    } else {
      // K is used in place unless it must be rounded or padded; V likewise unless D is not a whole
      // number of vectors.
      const float *K = kin;
      int64_t ldk = ldkv;
      if (bf16 || kcount != kc4) { copy_rows(Kb, d, kin, ldkv, kcount, kc4, d, d, bf16); K = Kb; ldk = d; }
      if (bf16 || d % VL) { copy_rows(Vb, dp, vin, ldkv, kcount, kcount, d, dp, bf16); V = Vb; ldv = dp; }
      mul_abt(K, ldk, Qt, d, a->scale, St, kc4, diag, NO_LIMIT, rows);
    }
    // (entries the causal mask hides get it too: the masking below overwrites them)
    if (a->rel) add_relative_t(a, head, q0, rows, k0, kcount, St);

    // Online softmax down the key rows, each query on its own lane (only the nvl vectors holding the
    // block's rows). Key j's scores start at lane vector n0[j] (nvl: none): the vectors wholly before
    // its first visible lane are masked, skipped and zeroed — under the causal mask about half of a
    // diagonal block, whose exponentials cost as much as its products at D = 32. The partly masked
    // vector is masked in place first.
    int8_t n0[NB];
    for (int64_t j = 0; j < kcount; j++) {
      const int64_t first = first_lane(bias, j, diag);
      n0[j] = (int8_t)(first >= nvl * VL ? nvl : first / VL);
      if (first < nvl * VL && first % VL) {
        vf *s = (vf *)(St + j * NB + first / VL * VL);
        *s = vselect(iota() + (int32_t)(first / VL * VL) < (vi){0} + (int32_t)first, (vf){0} - INFINITY, *s);
      }
    }
    // One lane vector at a time, down the keys (its max and sum stay in registers): the new maxima,
    // P = e^(s − m'), its column sums, and the rescaling e^(m − m') of the old sums. Per lane the
    // same operations in the same key order as a key-by-key sweep.
    for (int n = 0; n < nvl; n++) {
      const vf m_old = *(vf *)(m + n * VL);
      vf mv = m_old;
      for (int64_t j = 0; j < kcount; j++)
        if (n >= n0[j]) mv = vmax(mv, *(vf *)(St + j * NB + n * VL));
      vf sum = (vf){0};
      for (int64_t j = 0; j < kcount; j++) {
        vf *s = (vf *)(St + j * NB + n * VL);
        if (n < n0[j]) { *s = (vf){0}; continue; }
        vf p = vexp(*s - mv);
        *s = p;
        sum += p;
      }
      vf al = vexp(m_old - mv); // 0 while a lane has seen nothing (−∞ − −∞)
      *(vf *)(alpha + n * VL) = al;
      *(vf *)(l + n * VL) = *(vf *)(l + n * VL) * al + sum;
      *(vf *)(m + n * VL) = mv;
    }
    for (int64_t i = 0; i < rows4; i++)
      if (alpha[i] != 1.0f) for (int64_t c = 0; c < dp; c++) O[i * dp + c] *= alpha[i];

#ifdef __AVX512BF16__
    if (dpbf16) {
      for (int64_t jp = 0; jp < (kcount + 1) / 2; jp++)
        pack_pairs_of_rows(St + 2 * jp * NB, 2 * jp + 1 < kcount ? St + (2 * jp + 1) * NB : NULL, nvl * VL, nvl * VL, Ph + jp * NB);
      mul_acc_bf16(Ph, 1, NB, Vh, O, dp, rows4, (kcount + 1) / 2, diag);
      continue;
    }
#endif
    mul_acc(St, 1, NB, V, ldv, O, dp, rows4, kcount, NO_LIMIT, diag); // O += P·V
  }

  float *out = a->out_w + q_at(a, head, q0, ldo), *lse = a->lse_w + head * tq + q0;
  for (int64_t i = 0; i < rows; i++) {
    if (l[i] == 0.0f) { // every key masked
      memset(out + i * ldo, 0, sizeof(float) * d);
      lse[i] = -INFINITY;
      continue;
    }
    const float inv = 1.0f / l[i];
    for (int64_t c = 0; c < d; c++) out[i * ldo + c] = O[i * dp + c] * inv;
    lse[i] = m[i] + logf(l[i]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Backward
#include "attention_backward.inc"

// ---------------------------------------------------------------------------------------------------
// N-API bindings (argument checks and thread schedules)
#include "attention_napi.inc"
