// Batched GEMM with bias epilogue (Backend.gemm), GotoBLAS/BLIS style:
//
//   C_i (m×n) = (accumulate ? C_i : 0) + op(A_i)·op(B_i) + bias
//
// Loop nest for one thread's block of C (rows r0..r1, cols c0..c1):
//   for jc (NC columns):            B block kc×nc packed into NR-wide panels  (lives in L2)
//     for pc (KC depth):
//       for ir (MR rows):           A micro-panel MR×kc packed                (lives in L1)
//         for jr (NR cols):         micro-kernel: MR×NR tile of C += Ap·Bp, B panel streamed from L2
// The micro-kernel keeps the whole MR×NR tile in vector registers; per k step it loads NV vectors of
// B and broadcasts MR scalars of A:  acc[i][v] += A[i,p] · B[p, v·VL .. v·VL+VL).
// Threads split C into a grid of tiles (no shared buffers, no barriers), or take whole matrices when
// the batch is large. Every C element is computed by the same sequence of operations whatever the
// partition, so results do not depend on the thread count.
#include "common.h"
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

// Register blocking per instruction set: MR·NV accumulators + NV B vectors + 1 broadcast must fit
// the register file (32 zmm with AVX-512, 16 ymm/xmm otherwise).
#if defined(__AVX512F__)
#define VL 16
#define MR 14
#elif defined(__AVX2__)
#define VL 8
#define MR 6
#else
#define VL 4
#define MR 6
#endif
#define NV 2
#define NR (VL * NV)
// Depth is processed in chunks of KU; A panels from row-major A are packed chunk by chunk as
// [chunk][row][KU] so packing is a plain copy (no transpose) and the kernel's broadcast offsets
// i·KU + u are still compile-time constants.
#define KU 8
#define KC_MAX 256
#define NC_MAX 512

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vf_u __attribute__((vector_size(VL * 4), aligned(4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef uint32_t vu_u __attribute__((vector_size(VL * 4), aligned(4)));

static inline vf loadu(const float *p) { return *(const vf_u *)p; }
static inline void storeu(float *p, vf v) { *(vf_u *)p = v; }

// bf16 rounding of the fp32 bit pattern: nearest even on the low 16 bits; NaN stays a (quiet) NaN.
//   r = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000
static inline uint32_t bf16_bits(float x) {
  uint32_t bits; memcpy(&bits, &x, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (bits | 0x00400000u) & 0xffff0000u;
  return (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
}
static inline float round_bf16(float x) { uint32_t r = bf16_bits(x); float f; memcpy(&f, &r, 4); return f; }
static inline vu bf16_bits_v(vf x) {
  vu bits = (vu)x;
  vu nan = (vu)((bits & 0x7fffffffu) > 0x7f800000u);
  vu r = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  return (r & ~nan) | (((bits | 0x00400000u) & 0xffff0000u) & nan);
}

// Thread-local packing buffers, grown on demand and kept (no malloc per call in steady state).
typedef struct { void *p; size_t cap; } scratch;
static __thread scratch tls_a, tls_b, tls_t;
static void *scratch_get(scratch *s, size_t bytes) {
  if (s->cap < bytes) {
    free(s->p);
    size_t cap = (bytes + 4095) & ~(size_t)4095;
    s->p = aligned_alloc(64, cap);
    s->cap = s->p ? cap : 0;
  }
  return s->p;
}

typedef struct {
  const float *a, *b, *bias;
  float *c;
  long m, n, k;
  bool ta, tb, accumulate, bf16;
} gemm_job;

// ---------------------------------------------------------------- fp32 packing
// A micro-panel, rows i0..i0+mr of op(A), depth p0..p0+kc, padded with zeros to MR rows and kcp
// (a multiple of KU) depth. Row-major A → [kcp/KU][MR][KU]; transposed A (k×m) → [kcp][MR], since
// there a depth step is contiguous over rows. `round` rounds to bf16 (the no-AVX512BF16 bf16 path).
static void pack_a(const gemm_job *g, long i0, int mr, long p0, long kc, long kcp, float *out, bool round) {
  if (!g->ta) {
    for (long c = 0; c < kcp; c += KU) {
      float *dst = out + c * MR;
      for (int i = 0; i < MR; i++) {
        const float *src = g->a + (i0 + i) * g->k + p0 + c;
        if (i < mr && c + KU <= kc) {
          for (int u = 0; u < KU; u++) dst[i * KU + u] = round ? round_bf16(src[u]) : src[u];
        } else {
          for (int u = 0; u < KU; u++) dst[i * KU + u] = (i < mr && c + u < kc) ? (round ? round_bf16(src[u]) : src[u]) : 0.0f;
        }
      }
    }
  } else {
    for (long p = 0; p < kcp; p++) {
      float *dst = out + p * MR;
      const float *src = g->a + (p0 + p) * g->m + i0;
      for (int i = 0; i < MR; i++) dst[i] = (i < mr && p < kc) ? (round ? round_bf16(src[i]) : src[i]) : 0.0f;
    }
  }
}

// B block, depth p0..p0+kc, columns j0..j0+nc of op(B), as ceil(nc/NR) panels of [kcp][NR] (zero
// padded). Row-major B copies rows; transposed B (n×k) is transposed VL×VL tile by tile.
static void pack_b(const gemm_job *g, long p0, long kc, long kcp, long j0, long nc, float *out, bool round) {
  for (long jp = 0; jp < nc; jp += NR) {
    float *panel = out + (jp / NR) * kcp * NR;
    int nr = nc - jp < NR ? (int)(nc - jp) : NR;
    if (!g->tb) {
      for (long p = 0; p < kcp; p++) {
        float *dst = panel + p * NR;
        const float *src = g->b + (p0 + p) * g->n + j0 + jp;
        if (p < kc && nr == NR) {
          for (int v = 0; v < NV; v++) {
            vf x = loadu(src + v * VL);
            storeu(dst + v * VL, round ? (vf)bf16_bits_v(x) : x);
          }
        } else {
          for (int j = 0; j < NR; j++) dst[j] = (p < kc && j < nr) ? (round ? round_bf16(src[j]) : src[j]) : 0.0f;
        }
      }
    } else {
      for (int j = 0; j < NR; j++) {
        const float *src = g->b + (j0 + jp + j) * g->k + p0;
        if (j < nr) {
          long p = 0;
          if (round) for (; p < kc; p++) panel[p * NR + j] = round_bf16(src[p]);
          else for (; p < kc; p++) panel[p * NR + j] = src[p];
          for (; p < kcp; p++) panel[p * NR + j] = 0.0f;
        } else {
          for (long p = 0; p < kcp; p++) panel[p * NR + j] = 0.0f;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- epilogue
// C tile = (overwrite ? 0 : C) + acc + bias, for the mr×nr valid part of the MR×NR register tile.
static inline __attribute__((always_inline))
void store_tile(vf acc[MR][NV], float *c, long ldc, int mr, int nr, bool overwrite, const float *bias) {
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; i++) {
      for (int v = 0; v < NV; v++) {
        vf x = acc[i][v];
        if (!overwrite) x = loadu(c + i * ldc + v * VL) + x;
        if (bias) x += loadu(bias + v * VL);
        storeu(c + i * ldc + v * VL, x);
      }
    }
    return;
  }
  float tile[MR * NR] __attribute__((aligned(64)));
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) *(vf *)(tile + i * NR + v * VL) = acc[i][v];
  for (int i = 0; i < mr; i++) {
    for (int j = 0; j < nr; j++) {
      float x = tile[i * NR + j];
      if (!overwrite) x = c[i * ldc + j] + x;
      if (bias) x += bias[j];
      c[i * ldc + j] = x;
    }
  }
}

// ---------------------------------------------------------------- fp32 micro-kernels
// acc[i][v] += Σ_p A[i,p] · B[p, v·VL ..]; A_OFF(i, u) locates A[i, chunk·KU + u] inside a packed
// A chunk of MR·KU floats (two layouts, see pack_a). kcp is a multiple of KU.
#define DEFINE_KERNEL(name, A_OFF)                                                                  \
  static void name(long kcp, const float *restrict a, const float *restrict b, float *c, long ldc, \
                   int mr, int nr, bool overwrite, const float *bias) {                            \
    vf acc[MR][NV];                                                                                 \
    for (int i = 0; i < MR; i++)                                                                    \
      for (int v = 0; v < NV; v++) acc[i][v] = (vf){0};                                             \
    for (long c0 = 0; c0 < kcp; c0 += KU, a += MR * KU, b += KU * NR) {                            \
      _Pragma("GCC unroll 8") for (int u = 0; u < KU; u++) {                                       \
        vf bv[NV];                                                                                  \
        for (int v = 0; v < NV; v++) bv[v] = *(const vf *)(b + u * NR + v * VL);                   \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                    \
          vf ai = (vf){0} + a[A_OFF(i, u)];                                                         \
          for (int v = 0; v < NV; v++) acc[i][v] += ai * bv[v];                                     \
        }                                                                                           \
      }                                                                                             \
    }                                                                                               \
    store_tile(acc, c, ldc, mr, nr, overwrite, bias);                                              \
  }
#define A_OFF_ROWCHUNK(i, u) ((i) * KU + (u))
#define A_OFF_DEPTHMAJOR(i, u) ((u) * MR + (i))
DEFINE_KERNEL(kernel_rowchunk, A_OFF_ROWCHUNK)
DEFINE_KERNEL(kernel_depthmajor, A_OFF_DEPTHMAJOR)
