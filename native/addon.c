// N-API entry point: thread control, build info and module registration (argument checking: kernels_args.h).
#ifdef __linux__
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#endif
#include "common.h"
#include "kernels_args.h"
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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
  if (!k_args(env, info, 1, argv, "setThreads") || !k_integer(env, "setThreads", argv[0], "n", &n)) return NULL;
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads((int)n);
#endif
  return js_undefined(env);
}
/*
 * pinThreads(mode): 0 = every OpenMP thread back on the process's CPU mask; 1 = worker thread t
 * (t ≥ 1) fixed to the t-th CPU of that mask, the calling thread left free; 2 = every thread,
 * the caller included, fixed to its own CPU. Returns how many threads were pinned (0 where the
 * platform has no affinity calls). libgomp keeps its workers between parallel regions, so the
 * pinning lasts until the team size changes.
 */
#ifdef __linux__
static cpu_set_t process_mask;
static int process_mask_ok = 0;
#endif
static napi_value pin_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1]; int64_t mode;
  if (!k_args(env, info, 1, argv, "pinThreads") || !k_integer(env, "pinThreads", argv[0], "mode", &mode)) return NULL;
  int pinned = 0;
#if defined(__linux__) && defined(_OPENMP)
  if (!process_mask_ok) process_mask_ok = sched_getaffinity(0, sizeof process_mask, &process_mask) == 0;
  if (!process_mask_ok) return js_number(env, 0);
  int cpus[CPU_SETSIZE], ncpu = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) if (CPU_ISSET(c, &process_mask)) cpus[ncpu++] = c;
#pragma omp parallel reduction(+ : pinned)
  {
    const int t = omp_get_thread_num();
    cpu_set_t set;
    if (mode == 0 || (mode == 1 && t == 0) || t >= ncpu) {
      set = process_mask;
    } else {
      CPU_ZERO(&set);
      CPU_SET(cpus[t], &set);
      pinned++;
    }
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
#endif
  return js_number(env, pinned);
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
  export_fn(env, exports, "pinThreads", pin_threads);
  register_gemm(env, exports);
  register_attention(env, exports);
  register_kernels(env, exports);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
