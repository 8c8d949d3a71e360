// Portable SIMD math for the elementwise kernels, written with GCC vector extensions so the same
// source compiles to AVX-512 (16 lanes), AVX/AVX2 (8 lanes) or SSE2/NEON (4 lanes).
// Every function is branch-free and lane-independent, so a value computes bit-identically whether
// it sits in the vector body or in a (padded) tail — results never depend on chunking or threads.
#pragma once
#include <stdint.h>
#include <string.h>
#include "vec_minmax.h"

#if defined(__AVX512F__)
#define VF_BYTES 64
#elif defined(__AVX__)
#define VF_BYTES 32
#else
#define VF_BYTES 16
#endif
#define VF_LEN (VF_BYTES / 4)

typedef float vf __attribute__((vector_size(VF_BYTES)));
typedef int32_t vi __attribute__((vector_size(VF_BYTES)));
typedef uint32_t vu __attribute__((vector_size(VF_BYTES)));

// memcpy compiles to a plain unaligned vector load/store; arrays may be arbitrary subarrays.
static inline vf vf_load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vf_store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vf_splat(float x) { return (vf){0} + x; }

// Tail helpers: the first n (< VF_LEN) lanes come from p, the rest are `fill`.
static inline vf vf_load_part(const float *p, int64_t n, float fill) {
  float t[VF_LEN];
  for (int i = 0; i < VF_LEN; i++) t[i] = i < n ? p[i] : fill;
  return vf_load(t);
}
static inline void vf_store_part(float *p, vf v, int64_t n) {
  float t[VF_LEN];
  vf_store(t, v);
  for (int i = 0; i < n; i++) p[i] = t[i];
}

// mask lanes are all-ones (true) or zero, as produced by vector comparisons.
static inline vf vf_select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
// A NaN in x propagates (VEC_MIN/VEC_MAX give their second operand when unordered).
static inline vf vf_min(vf x, float c) { return VEC_MIN(vf_splat(c), x); }
static inline vf vf_max(vf x, float c) { return VEC_MAX(vf_splat(c), x); }
static inline vf vf_abs(vf x) { return (vf)((vi)x & 0x7fffffff); }
static inline vf vf_copysign(vf mag, vf sign) {
  return (vf)(((vi)mag & 0x7fffffff) | ((vi)sign & INT32_MIN));
}

static inline float vf_hmax(vf v) {
  float t[VF_LEN], m;
  vf_store(t, v);
  m = t[0];
  for (int i = 1; i < VF_LEN; i++) m = t[i] > m ? t[i] : m;
  return m;
}
// Horizontal sum in double, so a row's result does not lose the precision the lanes kept.
static inline double vf_hsum(vf v) {
  float t[VF_LEN];
  double s = 0;
  vf_store(t, v);
  for (int i = 0; i < VF_LEN; i++) s += t[i];
  return s;
}

/*
 * e^x = 2ⁿ · eʳ with n = round(x·log₂e) and r = x − n·ln2 (Cody–Waite: ln2 split into a 9-bit head,
 * exact when multiplied by |n| ≤ 127, and a tail), |r| ≤ ln2/2. eʳ is the degree-7 Taylor polynomial:
 * remainder r⁸/8! < 5.3e-9, so the result is within ~1.5 ulp. 2ⁿ is built in the exponent bits.
 * x < −87.3 (including −∞) gives 0; x is clamped at 88.3 so the result never overflows to ∞
 * (callers rely on that to form e·σ products); NaN propagates.
 */
static inline vf vf_exp(vf x) {
  const vi underflow = x < -87.3f;
  x = vf_max(vf_min(x, 88.3f), -87.3f);
  const float magic = 12582912.0f; // 1.5·2²³: adding it rounds to an integer (nearest even)
  vf n = (x * 1.44269504088896341f + magic) - magic;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = vf_splat(1.0f / 5040);
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  vf y = p * (vf)bits;
  return (vf)((vi)y & ~underflow);
}

/*
 * tanh: for |x| < 0.4 the odd Taylor series to x¹³ (next term < 1.6e-9 there); otherwise
 * tanh|x| = (1 − e)/(1 + e) with e = e^{−2|x|} ≤ 0.45, which has no cancellation.
 */
static inline vf vf_tanh(vf x) {
  vf ax = vf_abs(x);
  vf x2 = x * x;
  vf p = vf_splat(21844.0f / 6081075);
  p = p * x2 - 1382.0f / 155925;
  p = p * x2 + 62.0f / 2835;
  p = p * x2 - 17.0f / 315;
  p = p * x2 + 2.0f / 15;
  p = p * x2 - 1.0f / 3;
  vf small = x + x * x2 * p;
  vf e = vf_exp(-2.0f * ax);
  vf large = vf_copysign((1.0f - e) / (1.0f + e), x);
  return vf_select(ax < 0.4f, small, large);
}
// d tanh/dx = 1 − tanh² = 4e/(1+e)², e = e^{−2|x|}: exact form for large |x| where 1 − t² cancels.
static inline vf vf_tanh_grad(vf x) {
  vf t = vf_tanh(x);
  vf e = vf_exp(-2.0f * vf_abs(x));
  vf d = 1.0f + e;
  return vf_select(vf_abs(x) < 0.4f, 1.0f - t * t, 4.0f * e / (d * d));
}

/*
 * GELU, tanh form (GPT-2 gelu_new): ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³).
 * Since ½(1 + tanh u) = σ(2u) = 1/(1 + e), e = e^{−2u}, this is x/(1 + e): accurate for all x
 * (no 1 + tanh cancellation for negative x). The derivative is
 *   σ + x·σ(1−σ)·2u',  u' = √(2/π)(1 + 3·0.044715x²),  1 − σ = e·σ.
 */
#define GELU_K0 0.7978845608028654f // √(2/π)
#define GELU_K1 0.044715f
static inline vf vf_gelu_tanh(vf x) {
  vf u = GELU_K0 * (x + GELU_K1 * x * x * x);
  return x / (1.0f + vf_exp(-2.0f * u));
}
static inline vf vf_gelu_tanh_grad(vf x) {
  vf x2 = x * x;
  vf u = GELU_K0 * (x + GELU_K1 * x2 * x);
  vf du = GELU_K0 * (1.0f + 3.0f * GELU_K1 * x2);
  vf e = vf_exp(-2.0f * u);
  vf s = 1.0f / (1.0f + e);
  vf one_minus_s = e * s; // formed first: e alone may be ~1e38, and 2x·u'·e would overflow
  return s * (1.0f + 2.0f * x * du * one_minus_s);
}

/*
 * Standard normal CDF Φ(x) = ½ erfc(z), z = |x|/√2 (reflected for x > 0), and density
 * φ(x) = e^{−z²}/√(2π), sharing the one exponential: with t = 1/(1 + z/2) ∈ (0, 1],
 *   erfc(z) = t·g(t)·e^{−z²},  g(t) = e^{z²}·erfc(z)/t,
 * g smooth on [0, 1] (g(0) = 1/(2√π)) and fitted by a degree-10 polynomial to relative error 1.1e-8
 * (≤ 2e-7 evaluated in fp32) — relative accuracy in both tails. GELU's backward needs both Φ and φ:
 * one e^{−z²} instead of two exponentials made it 1.8× faster, and the shorter chain of dependent
 * operations the forward 1.37× (2048×512 elements, 2 threads, Zen 3).
 */
static inline vf vf_normal_cdf_pdf(vf x, vf *pdf) {
  vf z = vf_abs(x) * 0.70710678118654752f;
  vf t = 1.0f / (1.0f + 0.5f * z);
  vf g = vf_splat(0.042352088f);
  g = g * t - 0.23085538f;
  g = g * t + 0.48617458f;
  g = g * t - 0.446973f;
  g = g * t + 0.12708673f;
  g = g * t - 0.05723145f;
  g = g * t + 0.09300035f;
  g = g * t + 0.17537686f;
  g = g * t + 0.24688059f;
  g = g * t + 0.28209385f;
  g = g * t + 0.2820948f;
  vf e = vf_exp(-(z * z));
  *pdf = e * 0.3989422804014327f; // 1/√(2π)
  vf half_erfc = 0.5f * t * g * e;
  return vf_select(x < 0.0f, half_erfc, 1.0f - half_erfc);
}
// GELU, erf form (BERT gelu): x·Φ(x); derivative Φ(x) + x·φ(x).
static inline vf vf_gelu_erf(vf x) {
  vf pdf;
  return x * vf_normal_cdf_pdf(x, &pdf);
}
static inline vf vf_gelu_erf_grad(vf x) {
  vf pdf;
  vf cdf = vf_normal_cdf_pdf(x, &pdf);
  return cdf + x * pdf;
}

// lowbias32 (see src/tensor/random.ts: mix32), lane-wise on 32-bit unsigned integers.
static inline vu vu_mix32(vu x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}
static inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}
static inline vu vu_iota(void) {
  uint32_t t[VF_LEN];
  vu v;
  for (int i = 0; i < VF_LEN; i++) t[i] = (uint32_t)i;
  memcpy(&v, t, sizeof v);
  return v;
}
