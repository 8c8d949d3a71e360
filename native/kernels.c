// Placeholder: filled in by the kernels kernel work.
#include "common.h"
void register_kernels(napi_env env, napi_value exports) { (void)env; (void)exports; }
