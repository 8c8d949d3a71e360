// Batched GEMM with bias epilogue (Backend.gemm), GotoBLAS/BLIS style:
//
//   C_i (m×n) = (accumulate ? C_i : 0) + op(A_i)·op(B_i) + bias
//
// Loop nest for one thread's block of C (rows r0..r1, cols c0..c1), see gemm_block:
//   for jc (NC_MAX columns):
//     for pc (depth blocks ≤ KC_MAX):  pack B block kc×nc into NR-wide panels       (L2/L3)
//       for ic (MC rows):              pack A block into MR-row micro-panels       (L2)
//         for ir (MR rows):            A micro-panel MR×kc                         (L1)
//           for jr (NR cols):          micro-kernel: C tile MR×NR += Ap·Bp, B panel streamed
// The micro-kernel keeps the MR×NR tile in vector registers; per depth step it loads NV vectors of
// B and broadcasts MR scalars of A:  acc[i][v] += A[i,p] · B[p, v·VL .. v·VL+VL).
// Up to SMALL_M rows skip packing (gemm_small.inc). Threads split C by rows (the team packs each
// depth block of B, and of a small A, together; row chunks are handed out dynamically), or into a
// fixed grid of tiles, or take whole matrices when the batch is large. Every C element goes through
// the same operations whatever the partition, so results do not depend on the thread count.
#include "common.h"
#include "kernels_args.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
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
// Blocking, measured on Zen 4 (32 KiB L1d, 1 MiB L2 per core): a 512-deep block keeps the A
// micro-panel (14×512 floats, 28 KiB) in L1 while B panels stream from L2/L3, which easily supply the
// ~5 B/cycle the kernel reads; a wide NC_MAX avoids re-packing A per column block. MC rows of A are
// packed at once so transposed A is read in contiguous runs. (#ifndef: benchmarks can override.)
#ifndef KC_MAX
#define KC_MAX 512
#endif
#ifndef MC
#define MC (8 * MR)
#endif
#ifndef NC_MAX
#define NC_MAX 1024
#endif

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vf_u __attribute__((vector_size(VL * 4), aligned(4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));

static inline vf loadu(const float *p) { return *(const vf_u *)p; }
// Brace-initialised broadcast: GCC turns it into one vbroadcastss (`(vf){0} + x` would add 0).
#if VL == 16
#define SPLAT(x) (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}
#elif VL == 8
#define SPLAT(x) (vf){x, x, x, x, x, x, x, x}
#else
#define SPLAT(x) (vf){x, x, x, x}
#endif
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

// One depth chunk of a packed A row.
typedef float vk __attribute__((vector_size(KU * 4)));
typedef float vk_u __attribute__((vector_size(KU * 4), aligned(4)));
typedef uint32_t vku __attribute__((vector_size(KU * 4)));
// dst[0..KU) = src[0..KU), rounded to bf16 when `round` (pointers only: no 32-byte vector
// arguments, whose ABI differs between SSE and AVX builds).
static inline void copy_chunk(float *dst, const float *src, bool round) {
  vk x = *(const vk_u *)src;
  if (round) {
    vku bits = (vku)x;
    vku nan = (vku)((bits & 0x7fffffffu) > 0x7f800000u);
    vku r = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
    x = (vk)((r & ~nan) | (((bits | 0x00400000u) & 0xffff0000u) & nan));
  }
  *(vk *)dst = x;
}

// bf16 pairs for VDPBF16PS (see gemm_pack.inc): pair = bf16(x[2q]) | bf16(x[2q+1]) << 16. Without
// AVX512-BF16 the fp32 kernel runs on bf16-rounded inputs instead (same inputs, fp32 FMA).
#if defined(__AVX512BF16__)
#include <immintrin.h>
#define HAVE_BF16_KERNEL 1
typedef uint64_t vq __attribute__((vector_size(64)));
typedef uint32_t vu8 __attribute__((vector_size(32)));
static inline uint32_t bf16_pair(float lo, float hi) { return (bf16_bits(lo) >> 16) | bf16_bits(hi); }
#else
#define HAVE_BF16_KERNEL 0
#endif

// Thread-local packing buffers, grown on demand and kept (no malloc per call in steady state).
typedef struct { void *p; size_t cap; } scratch;
static __thread scratch tls_a, tls_b;
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
  int *failed;  // set when a packing buffer could not be allocated
} gemm_job;

// Packing (gemm_pack.inc), micro-kernels (gemm_kernels.inc), the few-rows path (gemm_small.inc)
// and the blocking driver (gemm_block.inc) live in their own files, included here so they share
// this file's configuration and types.
#include "gemm_pack.inc"
#include "gemm_kernels.inc"
#include "gemm_small.inc"
#include "gemm_block.inc"

static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Below this many flops a parallel region costs more than it saves.
#define SERIAL_FLOPS 200000.0

// Under OMP_WAIT_POLICY=passive (what `primer serve` sets) the team sleeps between regions, and
// waking it costs tens of µs (50–65 µs measured on a 2-vCPU VM; a few on bare metal). A few-rows
// GEMM (decoding) runs serially there unless it takes longer than PASSIVE_SPLIT_US on one thread,
// estimated at ~35 GB/s streaming B and ~70 GFLOP/s (AVX2, Zen 3), so that halving it pays the wake.
// (Decoding the mini preset under passive waits, 2 threads: 120 µs gave 735–831 tokens/s for one
// stream and 2,472–2,552 for 8, splitting every such GEMM 531–534 and 2,007–2,044.)
#define PASSIVE_SPLIT_US 120.0
static bool passive_waits(void) {
  static int passive = -1;
  if (passive < 0) {
    const char *e = getenv("OMP_WAIT_POLICY");
    passive = e && strcasecmp(e, "passive") == 0;
  }
  return passive;
}
static bool small_split_pays(const gemm_job *g) {
  if (g->m > SMALL_M || !passive_waits()) return true;
  const double bytes_us = 4.0 * g->k * g->n / 35e3, flops_us = 2.0 * g->m * g->n * g->k / 70e3;
  return (bytes_us > flops_us ? bytes_us : flops_us) > PASSIVE_SPLIT_US;
}

// A rows-only split shares B's packing only above this many micro-panels per thread: with fewer
// rows each thread packing all of B into its own cache measured faster (m = 20..48, AVX2).
#ifndef SHARED_MIN_PANELS
#define SHARED_MIN_PANELS 4
#endif
// The team's packed-B blocks (see gemm_block), owned by the thread that opens the region.
static __thread scratch tls_shared;

// Splits mp×np micro-tiles over `team` threads as a tm×tn grid minimising the largest per-thread
// tile count; ties go to splitting rows (the team then packs B once, together). Returns tn.
static int grid_columns(long mp, long np, int team) {
  int tn = 1;
  long best = -1;
  for (int d = team; d >= 1; d--) {
    if (team % d) continue;
    long cost = ((mp + d - 1) / d) * ((np + team / d - 1) / (team / d));
    if (best < 0 || cost < best) { best = cost; tn = team / d; }
  }
  return tn;
}

// One matrix over the team: a rows-only split (tn = 1) hands out row chunks dynamically (sharing
// B's packing above SHARED_MIN_PANELS); other grids give each thread a fixed block of tiles.
static void gemm_parallel(const gemm_job *g) {
  const long mp = (g->m + MR - 1) / MR, np = (g->n + NR - 1) / NR;
  const int nt = max_threads();
  if (nt == 1 || 2.0 * g->m * g->n * g->k < SERIAL_FLOPS || mp * np == 1 || !small_split_pays(g)) {
    gemm_block(g, 0, g->m, 0, g->n, false, NULL);
    return;
  }
  float *shared = NULL;
  if (grid_columns(mp, np, nt) == 1 && g->k > 0 && g->m > SMALL_M && mp > SHARED_MIN_PANELS * nt) {
    const blocking bl = blocking_of(g, 0, g->n);
    shared = scratch_get(&tls_shared, (size_t)2 * (bl.ncmax * bl.slots + shared_a_slots(g, &bl, nt)) * 4);
    if (!shared) {
      *g->failed = 1;
      return;
    }
  }
#pragma omp parallel
  {
    int t = 0, team = 1;
#ifdef _OPENMP
    t = omp_get_thread_num(); team = omp_get_num_threads();
#endif
    // The few-rows path computes all its rows for its columns: split columns only.
    const int tn = g->m <= SMALL_M ? team : grid_columns(mp, np, team), tm = team / tn;
    if (tn == 1) {
      gemm_block(g, 0, g->m, 0, g->n, true, shared);  // (shared may be NULL: see SHARED_MIN_PANELS)
    } else {
      const int ti = t / tn, tj = t % tn;
      long pr0 = mp * ti / tm, pr1 = mp * (ti + 1) / tm, pc0 = np * tj / tn, pc1 = np * (tj + 1) / tn;
      long r1 = pr1 * MR < g->m ? pr1 * MR : g->m, c1 = pc1 * NR < g->n ? pc1 * NR : g->n;
      gemm_block(g, pr0 * MR, r1, pc0 * NR, c1, false, NULL);
    }
  }
}

static bool run_gemm(gemm_job base, long batch, long sa, long sb, long sc) {
  int failed = 0;
  base.failed = &failed;
  const int nt = max_threads();
  const double flops = 2.0 * base.m * base.n * base.k * batch;
  // Whole matrices, handed out one at a time, when the batch keeps every thread busy and outputs do
  // not overlap (with overlapping outputs, e.g. strideC = 0 with accumulate, items must run in order).
  const bool by_item = nt > 1 && batch >= nt && (batch % nt == 0 || batch >= 4 * nt) &&
                       sc >= base.m * base.n && flops >= SERIAL_FLOPS;
  if (by_item) {
#pragma omp parallel for schedule(dynamic, 1)
    for (long i = 0; i < batch; i++) {
      gemm_job g = base;
      g.a += i * sa; g.b += i * sb; g.c += i * sc;
      gemm_block(&g, 0, g.m, 0, g.n, false, NULL);
    }
  } else {
    for (long i = 0; i < batch; i++) {
      gemm_job g = base;
      g.a += i * sa; g.b += i * sb; g.c += i * sc;
      gemm_parallel(&g);
    }
  }
  return !failed;
}

// ---------------------------------------------------------------- N-API binding
// Elements needed to hold `count` matrices of `size` elements `stride` apart; -1 on overflow.
static int64_t span(int64_t count, int64_t stride, int64_t size) {
  if (count == 0 || size == 0) return 0;
  int64_t r;
  if (__builtin_mul_overflow(count - 1, stride, &r) || __builtin_add_overflow(r, size, &r)) return -1;
  return r;
}

// Whether `len` elements hold `need` (-1: the size overflowed); else throws a RangeError naming the
// shape (dims: m, n, k, batch, strideA, strideB, strideC), formatted only then.
static bool check_len(napi_env env, const char *name, size_t len, int64_t need, const int64_t *dims) {
  if (need >= 0 && (uint64_t)need <= len) return true;
  char shape[200], msg[320];
  snprintf(shape, sizeof shape, "(batch=%lld, m=%lld, n=%lld, k=%lld, strides %lld/%lld/%lld)", (long long)dims[3],
           (long long)dims[0], (long long)dims[1], (long long)dims[2], (long long)dims[4], (long long)dims[5], (long long)dims[6]);
  if (need < 0) snprintf(msg, sizeof msg, "gemm: %s size overflows for %s", name, shape);
  else snprintf(msg, sizeof msg, "gemm: %s has %zu elements but %s needs %lld", name, len, shape, (long long)need);
  napi_throw_range_error(env, NULL, msg);
  return false;
}

// gemm(a, b, c, bias, m, n, k, transA, transB, accumulate, batch, strideA, strideB, strideC, bf16)
static napi_value js_gemm(napi_env env, napi_callback_info info) {
  napi_value argv[15];
  if (!k_args(env, info, 15, argv, "gemm")) return NULL;
  float *a, *b, *c, *bias;
  size_t la, lb, lc, lbias;
  int64_t dims[7];  // m, n, k, batch, strideA, strideB, strideC
  static const char *dim_names[7] = {"m", "n", "k", "batch", "strideA", "strideB", "strideC"};
  static const int dim_args[7] = {4, 5, 6, 10, 11, 12, 13};
  bool ta, tb, accumulate, bf16;
  if (!k_f32(env, "gemm", argv[0], "a", &a, &la) || !k_f32(env, "gemm", argv[1], "b", &b, &lb) ||
      !k_f32(env, "gemm", argv[2], "c", &c, &lc) || !k_f32_or_null(env, "gemm", argv[3], "bias", &bias, &lbias))
    return NULL;
  for (int i = 0; i < 7; i++) {
    if (!k_size(env, "gemm", argv[dim_args[i]], dim_names[i], &dims[i])) return NULL;
    if (dims[i] > ((int64_t)1 << 40)) return throw_null(env, true, "gemm", "'%s' must be below 2^40, got %lld", dim_names[i], (long long)dims[i]);
  }
  if (!k_bool(env, "gemm", argv[7], "transA", &ta) || !k_bool(env, "gemm", argv[8], "transB", &tb) ||
      !k_bool(env, "gemm", argv[9], "accumulate", &accumulate) || !k_bool(env, "gemm", argv[14], "bf16", &bf16))
    return NULL;
  const int64_t m = dims[0], n = dims[1], k = dims[2], batch = dims[3];
  int64_t mk, kn, mn;
  if (__builtin_mul_overflow(m, k, &mk) || __builtin_mul_overflow(k, n, &kn) || __builtin_mul_overflow(m, n, &mn)) {
    mk = kn = mn = -1;
  }
  if (!check_len(env, "a", la, mk < 0 ? -1 : span(batch, dims[4], mk), dims) ||
      !check_len(env, "b", lb, kn < 0 ? -1 : span(batch, dims[5], kn), dims) ||
      !check_len(env, "c", lc, mn < 0 ? -1 : span(batch, dims[6], mn), dims) ||
      (bias && !check_len(env, "bias", lbias, n, dims)))
    return NULL;
  if (batch == 0 || m == 0 || n == 0) return js_undefined(env);
  gemm_job job = {.a = a, .b = b, .bias = bias, .c = c, .m = m, .n = n, .k = k,
                  .ta = ta, .tb = tb, .accumulate = accumulate, .bf16 = bf16};
  if (!run_gemm(job, batch, dims[4], dims[5], dims[6])) {
    napi_throw_error(env, NULL, "gemm: out of memory for packing buffers");
    return NULL;
  }
  return js_undefined(env);
}

void register_gemm(napi_env env, napi_value exports) { export_fn(env, exports, "gemm", js_gemm); }
