// Fused scaled-dot-product attention, flash-attention style (see Backend.attention in
// src/backend/types.ts for the contract). Per head, with queries in blocks of BQ rows and keys in
// blocks of BK:
//   forward:  S = scale·Q·Kᵀ per (query block, key block), masked to −∞; an online softmax keeps per
//             row the running max m and sum l:  m' = max(m, max_j s_j),  l' = l·e^(m−m') + Σ_j e^(s_j−m'),
//             O' = O·e^(m−m') + P·V;  at the end out = O/l and lse = m + log l. No Tq×Tk matrix exists.
//   backward (FlashAttention-2): P = exp(S − lse) is recomputed block by block; with D_i = dout_i·out_i
//             dP = dO·Vᵀ, dS = scale·P∘(dP − D), dV += Pᵀ·dO, dK += dSᵀ·Q, dQ += dS·K.
// The products are register-tiled broadcast-FMA micro-kernels on GCC vector types: Kᵀ and Vᵀ blocks
// are packed D×BK so that S = Q·Kᵀ runs along the key lanes, and V, K, Q, dO are packed with D padded
// to the vector width so that P·V-shaped products run along the feature lanes; any D works.
// bf16 autocast rounds q, k, v (and dout) to bfloat16 while packing; with AVX512_BF16 the Q·Kᵀ and
// P·V products of the forward pass run on VDPBF16PS (P rounded to bf16 too), see attention_bf16.
#include "common.h"
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

// VL floats per vector; micro-tiles are MR rows × NR vectors of accumulators (16 on AVX-512 leaves
// registers for the NR operand loads and the broadcast; narrower ISAs get fewer to avoid spills).
#if defined(__AVX512F__)
#define VL 16
#define NR 4
#elif defined(__AVX__)
#define VL 8
#define NR 2
#else
#define VL 4
#define NR 2
#endif
#define MR 4
#define BQ 64 // query rows per block
#define BK 64 // keys per block (a multiple of VL·NR)
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Round to the nearest bfloat16, ties to even (NaN kept): the same bit trick as reference/bf16.ts.
static inline float round_bf16(float x) {
  uint32_t u; memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return x;
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&x, &u, 4); return x;
}
static inline float load_round(const float *p, bool bf16) { return bf16 ? round_bf16(*p) : *p; }

static inline vf vselect(vi mask, vf yes, vf no) { return (vf)(((vi)yes & mask) | ((vi)no & ~mask)); }

// e^x for a vector (Cephes expf, ~1 ulp): x = n·ln2 + r with |r| ≤ ln2/2, e^r ≈ 1 + r + r²·poly(r),
// 2^n built in the exponent bits. x < −87 (where 2^n would be denormal), −∞ included, gives exactly 0,
// so masked scores contribute nothing; x is capped at 88 so a bad lse cannot produce garbage bits.
static inline vf vexp(vf x) {
  vi keep = x >= -87.0f;
  x = vselect(x < -87.0f, (vf){0} - 87.0f, x);
  x = vselect(x > 88.0f, (vf){0} + 88.0f, x);
  vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; // round to nearest integer
  vf r = x - n * 0.693359375f + n * 2.12194440e-4f;
  vf p = (vf){0} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  vf y = p * r * r + r + 1.0f;
  vf pow2n = (vf)((__builtin_convertvector(n, vi) + 127) << 23);
  return (vf)((vi)(y * pow2n) & keep);
}

static inline float hmax(vf x) { float m = x[0]; for (int i = 1; i < VL; i++) m = x[i] > m ? x[i] : m; return m; }
static inline float hsum(vf x) { float s = 0; for (int i = 0; i < VL; i++) s += x[i]; return s; }

// C[m][j] = alpha·Σ_c A[m][c]·Bt[c][j] for m < M (a multiple of MR) and j < BK: A has row stride lda,
// Bt is d×BK with the keys along the lanes, so every step broadcasts one A element into an FMA.
static void mul_abt(const float *A, int64_t lda, const float *Bt, int64_t d, float alpha, float *C, int64_t M) {
  for (int64_t m = 0; m < M; m += MR) {
    for (int jc = 0; jc < BK; jc += NR * VL) {
      vf acc[MR][NR];
      for (int r = 0; r < MR; r++) for (int n = 0; n < NR; n++) acc[r][n] = (vf){0};
      for (int64_t c = 0; c < d; c++) {
        vf bv[NR];
        for (int n = 0; n < NR; n++) bv[n] = *(const vf *)(Bt + c * BK + jc + n * VL);
        for (int r = 0; r < MR; r++) {
          float a = A[(m + r) * lda + c];
          for (int n = 0; n < NR; n++) acc[r][n] += a * bv[n];
        }
      }
      for (int r = 0; r < MR; r++)
        for (int n = 0; n < NR; n++) *(vf *)(C + (m + r) * BK + jc + n * VL) = alpha * acc[r][n];
    }
  }
}

// One MR×nv tile of C[m][:] += Σ_k A(m,k)·B[k][:], A(m,k) = A[m·sam + k·sak]. nv is a compile-time
// constant at every call site, so acc lives in registers.
static inline __attribute__((always_inline)) void mul_acc_tile(const float *A, int64_t sam, int64_t sak,
    const float *B, int64_t ldb, float *C, int64_t ldc, int64_t K, int64_t m, int64_t col, int nv) {
  vf acc[MR][NR];
  for (int r = 0; r < MR; r++) for (int n = 0; n < nv; n++) acc[r][n] = *(vf *)(C + (m + r) * ldc + col + n * VL);
  for (int64_t k = 0; k < K; k++) {
    vf bv[NR];
    for (int n = 0; n < nv; n++) bv[n] = *(const vf *)(B + k * ldb + col + n * VL);
    for (int r = 0; r < MR; r++) {
      float a = A[(m + r) * sam + k * sak];
      for (int n = 0; n < nv; n++) acc[r][n] += a * bv[n];
    }
  }
  for (int r = 0; r < MR; r++) for (int n = 0; n < nv; n++) *(vf *)(C + (m + r) * ldc + col + n * VL) = acc[r][n];
}

// C (M×dp, stride dp) += A·B with A(m,k) = A[m·sam + k·sak] (M a multiple of MR), B K×dp (stride dp).
static void mul_acc(const float *A, int64_t sam, int64_t sak, const float *B, float *C, int64_t dp, int64_t M, int64_t K) {
  int64_t nvec = dp / VL;
  for (int64_t m = 0; m < M; m += MR) {
    int64_t v = 0;
    for (; v + NR <= nvec; v += NR) mul_acc_tile(A, sam, sak, B, dp, C, dp, K, m, v * VL, NR);
    switch (nvec - v) {
      case 1: mul_acc_tile(A, sam, sak, B, dp, C, dp, K, m, v * VL, 1); break;
#if NR > 2
      case 2: mul_acc_tile(A, sam, sak, B, dp, C, dp, K, m, v * VL, 2); break;
      case 3: mul_acc_tile(A, sam, sak, B, dp, C, dp, K, m, v * VL, 3); break;
#endif
      default: break;
    }
  }
}

// The arguments of one call, shared by all threads.
typedef struct {
  const float *q, *k, *v, *out, *lse, *dout;
  float *out_w, *lse_w, *dq, *dk, *dv;
  const uint8_t *mask;
  int64_t b, h, tq, tk, d, dp;
  float scale;
  bool causal, bf16;
} attn_args;

// Thread-local scratch, grown on demand and reused across calls (no malloc in steady state).
static __thread float *tls_scratch;
static __thread size_t tls_scratch_len;
static float *scratch(size_t n) {
  if (n > tls_scratch_len) {
    free(tls_scratch);
    size_t bytes = (size_t)round_up((int64_t)n * 4, 64);
    tls_scratch = aligned_alloc(64, bytes);
    tls_scratch_len = tls_scratch ? n : 0;
  }
  return tls_scratch;
}
// Carves the next n floats (64-byte aligned) off *cursor.
static float *carve(float **cursor, int64_t n) { float *p = *cursor; *cursor += round_up(n, 16); return p; }

// bias[j] = 0 where key k0+j exists and is not padding-masked, else −∞; returns whether any key is visible.
static bool key_bias(const attn_args *a, int64_t bi, int64_t k0, float *bias) {
  int64_t kcount = min64(BK, a->tk - k0);
  bool any = false;
  for (int64_t j = 0; j < BK; j++) {
    bool visible = j < kcount && (!a->mask || a->mask[bi * a->tk + k0 + j]);
    bias[j] = visible ? 0.0f : -INFINITY;
    any |= visible;
  }
  return any;
}

// Masks row r of a score block in place: adds the key bias and sets keys past the causal limit
// (j > lim, in block coordinates) to −∞.
static inline void mask_row(float *s, const float *bias, int64_t lim) {
  for (int jv = 0; jv < BK; jv += VL) {
    vf x = *(vf *)(s + jv) + *(const vf *)(bias + jv);
    if (lim < jv + VL - 1) {
      vi idx;
      for (int l = 0; l < VL; l++) idx[l] = jv + l;
      x = vselect(idx > (vi){0} + (int32_t)max64(min64(lim, BK), -1), (vf){0} - INFINITY, x);
    }
    *(vf *)(s + jv) = x;
  }
}

#include "attention_impl.inc"
