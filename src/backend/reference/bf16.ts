/**
 * bfloat16 rounding for the reference kernels' autocast (bf16 = true) paths.
 * bf16 keeps fp32's sign and 8 exponent bits and the top 7 mantissa bits, so rounding an fp32 value
 * to bf16 is rounding its bit pattern to a multiple of 2^16, ties to even — exactly what the native
 * kernels do (VDPBF16PS inputs, _mm512_cvtne2ps_pbh, or the portable bit trick below).
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds x (first to fp32, as the native kernels only ever see fp32) to the nearest bf16 value, ties to even. */
export function roundBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  // NaN must stay NaN: adding the rounding bias could carry a quiet NaN's payload into ±Inf.
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return x;
  // Round to nearest even on the low 16 bits: add 0x7fff plus the lowest kept bit, then truncate.
  // Overflow of the largest finite values carries into the exponent and correctly yields ±Inf.
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  u32[0] = rounded >>> 0;
  return f32[0];
}
