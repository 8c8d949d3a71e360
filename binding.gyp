{
  # PRIMER_MARCH selects the instruction set at build time: "native" (default, uses AVX-512/BF16
  # where the CPU has them), "x86-64-v3" (AVX2+FMA), "x86-64" (SSE2 only: the generic vector
  # fallbacks) — tests build the non-native variants to prove portability.
  "variables": { "primer_march%": "<!(node -p \"process.env.PRIMER_MARCH || 'native'\")" },
  "targets": [{
    "target_name": "primer_native",
    "sources": [
      "native/addon.c",
      "native/gemm.c",
      "native/attention.c",
      "native/kernels.c"
    ],
    "cflags": ["-O3", "-march=<(primer_march)", "-fopenmp", "-std=gnu11", "-ffp-contract=fast", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
    "cflags!": ["-O2", "-O3"],
    "cflags_c": ["-O3"],
    "ldflags": ["-fopenmp"],
    "conditions": [["OS=='mac'", { "xcode_settings": { "OTHER_CFLAGS": ["-O3"] } }]]
  }]
}
