// Shared helpers for the N-API bindings of Primer's kernels.
// Every kernel file exposes `void register_<file>(napi_env env, napi_value exports)` which
// adds its functions to the addon's exports; addon.c calls them all.
#pragma once
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define NAPI_CALL(env, call) do { if ((call) != napi_ok) { \
    napi_throw_error((env), NULL, "primer native: N-API call failed: " #call); return NULL; } } while (0)

// Argument helpers: return false (and throw a JS error) when the argument has the wrong type.
bool arg_f32(napi_env env, napi_value v, float **ptr, size_t *len, const char *what);
bool arg_f32_or_null(napi_env env, napi_value v, float **ptr, size_t *len, const char *what);
bool arg_i32(napi_env env, napi_value v, int32_t **ptr, size_t *len, const char *what);
bool arg_u8_or_null(napi_env env, napi_value v, uint8_t **ptr, size_t *len, const char *what);
bool arg_int(napi_env env, napi_value v, int64_t *out, const char *what);
bool arg_double(napi_env env, napi_value v, double *out, const char *what);
bool arg_bool(napi_env env, napi_value v, bool *out, const char *what);
// Reads exactly n arguments into argv; throws when fewer were given.
bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *fn);
void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb);
napi_value js_undefined(napi_env env);
napi_value js_number(napi_env env, double x);

void register_gemm(napi_env env, napi_value exports);
void register_attention(napi_env env, napi_value exports);
void register_kernels(napi_env env, napi_value exports);
