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

void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb);
napi_value js_undefined(napi_env env);
napi_value js_number(napi_env env, double x);

void register_gemm(napi_env env, napi_value exports);
void register_attention(napi_env env, napi_value exports);
void register_kernels(napi_env env, napi_value exports);
