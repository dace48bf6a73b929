// Tensor storage (the Kernel contract of kiln_artifact.proto): binding i is the op's buffer i (operands,
// then results), std430, row-major and contiguous. Element kinds and their storage:
//   F32 float, F16 float16_t, BF16 the upper 16 bits of a float in a uint16_t, I32 int, I1 one uint8_t,
//   I64 two 32-bit words (arithmetic in 32-bit int: exact for |values| < 2^31, no Int64 capability needed).
// Float kinds load as float, integer kinds as int. The generator declares each buffer with INPUT_BUFFER /
// OUTPUT_BUFFER and names it for the kernel by its role R (a binding's meaning: X, W, OUT, ...):
//   BUF_R (the array), LOAD_R(i), STORE_R(i, v) (results only), and R_IS_<KIND>, R_IS_FLOAT or R_IS_INT.
#define STORAGE_F32 float
#define STORAGE_F16 float16_t
#define STORAGE_BF16 uint16_t
#define STORAGE_I64 uint
#define STORAGE_I32 int
#define STORAGE_I1 uint8_t
#define STORAGE_QUANT uint // a q8_0 / q4_0 weight matrix's words (quant.glsl)
#define INPUT_BUFFER(n, KIND) layout(std430, set = 0, binding = n) readonly buffer B##n { STORAGE_##KIND d[]; } b##n;
#define OUTPUT_BUFFER(n, KIND) layout(std430, set = 0, binding = n) buffer B##n { STORAGE_##KIND d[]; } b##n;
// A buffer other workgroups of the same dispatch write and this one reads after an atomic says they are done
// (attention's split partials and counters): coherent, so the reads bypass incoherent caches.
#define COHERENT_BUFFER(n, KIND) layout(std430, set = 0, binding = n) coherent buffer B##n { STORAGE_##KIND d[]; } b##n;

// A static dim the kernel's code does not depend on (Kernel.specialization in the artifact), so that ops
// differing only in it share one SPIR-V module.
#define SPEC_CONSTANT(id) layout(constant_id = id) const uint SC##id = 1u;

// Round to nearest even; NaN stays a (quiet) NaN.
uint bf16Bits(float f) {
  uint u = floatBitsToUint(f);
  if (isnan(f)) return 0x7fc0u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

#define LOAD_F32(buf, i) buf[i]
#define LOAD_F16(buf, i) float(buf[i])
#define LOAD_BF16(buf, i) uintBitsToFloat(uint(buf[i]) << 16)
#define LOAD_I64(buf, i) int(buf[2u * (i)])
#define LOAD_I32(buf, i) buf[i]
#define LOAD_I1(buf, i) int(uint(buf[i]))

#define STORE_F32(buf, i, v) buf[i] = v
#define STORE_F16(buf, i, v) buf[i] = float16_t(v)
#define STORE_BF16(buf, i, v) buf[i] = uint16_t(bf16Bits(v))
#define STORE_I64(buf, i, v) { int v_ = v; buf[2u * (i)] = uint(v_); buf[2u * (i) + 1u] = uint(v_ >> 31); }
#define STORE_I32(buf, i, v) buf[i] = v
#define STORE_I1(buf, i, v) buf[i] = uint8_t((v) != 0 ? 1u : 0u)
