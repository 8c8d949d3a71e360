// Elementwise, normalisation, Llama-block (RMSNorm, RoPE, SiLU·gate), loss, embedding, dropout and
// optimizer kernels (the Backend methods other than gemm and attention). Same names and positional arguments as src/backend/types.ts;
// the reference backend (src/backend/reference/) is the spec these are tested against.
// The kernels are split over kernels_*.inc by family; this file is their single translation unit.
#include "common.h"
#include "kernels_args.h"
#include "kernels_vecmath.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels_elementwise.inc"
#include "kernels_norm.inc"
#include "kernels_llama.inc"
#include "kernels_loss.inc"
#include "kernels_train.inc"

void register_kernels(napi_env env, napi_value exports) {
  export_fn(env, exports, "sumRows", napi_sum_rows);
  export_fn(env, exports, "add", napi_add);
  export_fn(env, exports, "mul", napi_mul);
  export_fn(env, exports, "axpy", napi_axpy);
  export_fn(env, exports, "scale", napi_scale);
  export_fn(env, exports, "sumSquares", napi_sum_squares);
  export_fn(env, exports, "unary", napi_unary);
  export_fn(env, exports, "unaryBackward", napi_unary_backward);
  export_fn(env, exports, "permute", napi_permute);
  export_fn(env, exports, "layerNorm", napi_layer_norm);
  export_fn(env, exports, "layerNormBackward", napi_layer_norm_backward);
  export_fn(env, exports, "rmsNorm", napi_rms_norm);
  export_fn(env, exports, "rmsNormBackward", napi_rms_norm_backward);
  export_fn(env, exports, "rope", napi_rope);
  export_fn(env, exports, "ropeBackward", napi_rope_backward);
  export_fn(env, exports, "siluMul", napi_silu_mul);
  export_fn(env, exports, "siluMulBackward", napi_silu_mul_backward);
  export_fn(env, exports, "softmax", napi_softmax);
  export_fn(env, exports, "softmaxBackward", napi_softmax_backward);
  export_fn(env, exports, "crossEntropy", napi_cross_entropy);
  export_fn(env, exports, "crossEntropyBackward", napi_cross_entropy_backward);
  export_fn(env, exports, "embedding", napi_embedding);
  export_fn(env, exports, "embeddingBackward", napi_embedding_backward);
  export_fn(env, exports, "dropout", napi_dropout);
  export_fn(env, exports, "dropoutBackward", napi_dropout_backward);
  export_fn(env, exports, "adamw", napi_adamw);
  export_fn(env, exports, "adamwGroup", napi_adamw_group);
  export_fn(env, exports, "sumSquaresGroup", napi_sum_squares_group);
}
