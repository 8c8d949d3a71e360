// N-API entry point: argument helpers shared by all kernel files, and module registration.
#include "common.h"
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static bool fail(napi_env env, const char *what, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "primer native: argument '%s' must be %s", what, expected);
  napi_throw_type_error(env, NULL, msg);
  return false;
}

static bool typed(napi_env env, napi_value v, napi_typedarray_type want, void **ptr, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type t; napi_value ab; size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, ptr, &ab, &off) != napi_ok) return false;
  return t == want;
}

static bool is_null(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

bool arg_f32(napi_env env, napi_value v, float **ptr, size_t *len, const char *what) {
  void *p; if (!typed(env, v, napi_float32_array, &p, len)) return fail(env, what, "a Float32Array");
  *ptr = (float *)p; return true;
}
bool arg_f32_or_null(napi_env env, napi_value v, float **ptr, size_t *len, const char *what) {
  if (is_null(env, v)) { *ptr = NULL; *len = 0; return true; }
  return arg_f32(env, v, ptr, len, what);
}
bool arg_i32(napi_env env, napi_value v, int32_t **ptr, size_t *len, const char *what) {
  void *p; if (!typed(env, v, napi_int32_array, &p, len)) return fail(env, what, "an Int32Array");
  *ptr = (int32_t *)p; return true;
}
bool arg_u8_or_null(napi_env env, napi_value v, uint8_t **ptr, size_t *len, const char *what) {
  if (is_null(env, v)) { *ptr = NULL; *len = 0; return true; }
  void *p; if (!typed(env, v, napi_uint8_array, &p, len)) return fail(env, what, "a Uint8Array or null");
  *ptr = (uint8_t *)p; return true;
}
bool arg_int(napi_env env, napi_value v, int64_t *out, const char *what) {
  if (napi_get_value_int64(env, v, out) != napi_ok) return fail(env, what, "an integer");
  return true;
}
bool arg_double(napi_env env, napi_value v, double *out, const char *what) {
  if (napi_get_value_double(env, v, out) != napi_ok) return fail(env, what, "a number");
  return true;
}
bool arg_bool(napi_env env, napi_value v, bool *out, const char *what) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return fail(env, what, "a boolean");
  return true;
}
bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *fn) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < n) {
    char msg[160];
    snprintf(msg, sizeof msg, "primer native: %s expects %zu arguments, got %zu", fn, n, argc);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}
void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}
napi_value js_undefined(napi_env env) { napi_value u; napi_get_undefined(env, &u); return u; }
napi_value js_number(napi_env env, double x) { napi_value r; napi_create_double(env, x, &r); return r; }

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef _OPENMP
  return js_number(env, omp_get_max_threads());
#else
  return js_number(env, 1);
#endif
}
static napi_value set_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1]; int64_t n;
  if (!get_args(env, info, 1, argv, "setThreads") || !arg_int(env, argv[0], &n, "n")) return NULL;
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads((int)n);
#endif
  return js_undefined(env);
}
// Which instruction-set paths this build compiled in (for benchmarks and tests).
static napi_value build_info(napi_env env, napi_callback_info info) {
  (void)info;
  const char *s =
#if defined(__AVX512BF16__)
    "avx512bf16"
#elif defined(__AVX512F__)
    "avx512"
#elif defined(__AVX2__)
    "avx2"
#elif defined(__ARM_NEON)
    "neon"
#else
    "generic"
#endif
    ;
  napi_value r; napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r); return r;
}

static napi_value init(napi_env env, napi_value exports) {
  export_fn(env, exports, "getThreads", get_threads);
  export_fn(env, exports, "setThreads", set_threads);
  export_fn(env, exports, "buildInfo", build_info);
  register_gemm(env, exports);
  register_attention(env, exports);
  register_kernels(env, exports);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
