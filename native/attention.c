// Placeholder: filled in by the attention kernel work.
#include "common.h"
void register_attention(napi_env env, napi_value exports) { (void)env; (void)exports; }
