// Argument checking for every N-API function of the addon (kernels.c, gemm.c, attention.c, addon.c):
// every error names the kernel and the problem (TypeError for a wrong type, RangeError for a bad
// size or index), and every array length is checked against the sizes before any kernel touches
// memory. The one family of argument readers: k_args, k_f32, k_i32, k_number, k_integer, k_size, k_bool.
#pragma once
#include "common.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

// Above this many elements a loop is worth waking the OpenMP team for (~100 µs of work).
#define PAR_MIN_ELEMENTS (1 << 15)
// Parallel loops hand out work dynamically, about PAR_CHUNK_ELEMENTS per chunk: a thread that loses
// its core part-way (another process on it) holds up one chunk, not a static share of the range,
// and the chunk (a few µs of work) keeps the per-chunk atomic below 1 %. Each element's result does
// not depend on which thread computes it, so the bits do not change with the schedule.
#define PAR_CHUNK_ELEMENTS (1 << 14)
// Loop iterations per chunk when each iteration covers `per_iteration` elements (at least 1).
static inline int64_t par_chunk(int64_t per_iteration) {
  const int64_t c = PAR_CHUNK_ELEMENTS / (per_iteration > 0 ? per_iteration : 1);
  return c < 1 ? 1 : c;
}

static void throw_msg(napi_env env, bool range, const char *fn, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
// Throws and evaluates to false; a macro so the compiler sees the constant (no false
// "may be used uninitialized" warnings on the paths after a failed check).
#define throw_fmt(...) (throw_msg(__VA_ARGS__), false)
// The same, for napi callbacks: evaluates to NULL ("an exception is pending").
#define throw_null(...) (throw_msg(__VA_ARGS__), (napi_value)NULL)

static void throw_msg(napi_env env, bool range, const char *fn, const char *fmt, ...) {
  char msg[320];
  int k = snprintf(msg, sizeof msg, "primer native: %s: ", fn);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
  va_end(ap);
  if (range) napi_throw_range_error(env, NULL, msg);
  else napi_throw_type_error(env, NULL, msg);
}

static bool typed_array(napi_env env, napi_value v, napi_typedarray_type want, void **ptr, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type t;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &t, len, ptr, &buffer, &offset) != napi_ok) return false;
  return t == want;
}

static bool k_f32(napi_env env, const char *fn, napi_value v, const char *what, float **ptr, size_t *len) {
  void *p;
  if (!typed_array(env, v, napi_float32_array, &p, len)) return throw_fmt(env, false, fn, "'%s' must be a Float32Array", what);
  *ptr = (float *)p;
  return true;
}

static bool k_i32(napi_env env, const char *fn, napi_value v, const char *what, int32_t **ptr, size_t *len) {
  void *p;
  if (!typed_array(env, v, napi_int32_array, &p, len)) return throw_fmt(env, false, fn, "'%s' must be an Int32Array", what);
  *ptr = (int32_t *)p;
  return true;
}

static bool k_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

// A Float32Array, or null/undefined (then *ptr = NULL, *len = 0).
static bool k_f32_or_null(napi_env env, const char *fn, napi_value v, const char *what, float **ptr, size_t *len) {
  if (k_nullish(env, v)) { *ptr = NULL; *len = 0; return true; }
  return k_f32(env, fn, v, what, ptr, len);
}

// A Uint8Array, or null/undefined.
static bool k_u8_or_null(napi_env env, const char *fn, napi_value v, const char *what, uint8_t **ptr, size_t *len) {
  if (k_nullish(env, v)) { *ptr = NULL; *len = 0; return true; }
  void *p;
  if (!typed_array(env, v, napi_uint8_array, &p, len)) return throw_fmt(env, false, fn, "'%s' must be a Uint8Array or null", what);
  *ptr = (uint8_t *)p;
  return true;
}

static bool k_number(napi_env env, const char *fn, napi_value v, const char *what, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) return throw_fmt(env, false, fn, "'%s' must be a number", what);
  return true;
}

static bool k_bool(napi_env env, const char *fn, napi_value v, const char *what, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return throw_fmt(env, false, fn, "'%s' must be a boolean", what);
  return true;
}

// An integer JS number (any sign; magnitude below 2⁵³ so it is exact).
static bool k_integer(napi_env env, const char *fn, napi_value v, const char *what, int64_t *out) {
  double d;
  if (!k_number(env, fn, v, what, &d)) return false;
  if (!(d == floor(d) && fabs(d) < 9007199254740992.0)) return throw_fmt(env, true, fn, "'%s' must be an integer, got %g", what, d);
  *out = (int64_t)d;
  return true;
}

// A size: integer in [0, 2⁵³).
static bool k_size(napi_env env, const char *fn, napi_value v, const char *what, int64_t *out) {
  if (!k_integer(env, fn, v, what, out)) return false;
  if (*out < 0) return throw_fmt(env, true, fn, "'%s' must be non-negative, got %lld", what, (long long)*out);
  return true;
}

// a·b, throwing when the product of two sizes overflows (it could never describe a real array).
static bool k_mul(napi_env env, const char *fn, int64_t a, int64_t b, int64_t *out) {
  if (__builtin_mul_overflow(a, b, out)) return throw_fmt(env, true, fn, "size %lld × %lld overflows", (long long)a, (long long)b);
  return true;
}

static bool k_len(napi_env env, const char *fn, const char *what, size_t have, int64_t need, const char *need_what) {
  if ((uint64_t)need > (uint64_t)have) {
    return throw_fmt(env, true, fn, "'%s' has %zu elements, needs %lld (%s)", what, have, (long long)need, need_what);
  }
  return true;
}

// Reads the n arguments, with an error naming the kernel when fewer were given.
static bool k_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *fn) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_fmt(env, false, fn, "could not read arguments");
  if (argc < n) return throw_fmt(env, false, fn, "expects %zu arguments, got %zu", n, argc);
  return true;
}

// Like k_args, with up to nmax arguments: those past the n required ones that the caller left out
// read as undefined (optional flags).
static bool k_args_opt(napi_env env, napi_callback_info info, size_t n, size_t nmax, napi_value *argv, const char *fn) {
  size_t argc = nmax;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_fmt(env, false, fn, "could not read arguments");
  if (argc < n) return throw_fmt(env, false, fn, "expects %zu arguments, got %zu", n, argc);
  for (size_t i = argc; i < nmax; i++) napi_get_undefined(env, &argv[i]);
  return true;
}

// An optional boolean: undefined/null gives `dflt`.
static bool k_bool_opt(napi_env env, const char *fn, napi_value v, const char *what, bool dflt, bool *out) {
  if (k_nullish(env, v)) { *out = dflt; return true; }
  return k_bool(env, fn, v, what, out);
}

static void *k_alloc(napi_env env, const char *fn, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    char msg[160];
    snprintf(msg, sizeof msg, "primer native: %s: out of memory allocating %zu bytes", fn, bytes);
    napi_throw_error(env, NULL, msg);
  }
  return p;
}

// Declares char name[64] = "what[i]", for an error message about element i of a list (formatted only
// on the failing path: the list readers run every step).
#define ELEMENT_NAME(name, what, i) char name[64]; snprintf(name, sizeof name, "%s[%u]", what, i)

#define K_TRY(x) do { if (!(x)) return NULL; } while (0)
