// Toy kernel of tests/unit/runtime/VulkanTest.cpp (compiled there by glslangValidator).
#version 450
#ifdef INTEGER_DOT_PRODUCT
// The factor 2 as a packed 4 x 8-bit dot product (OpSUDot, as codegen/spirv's quantized GEMV takes it): the
// module declares the DotProduct capability, which the runtime must require and enable.
#extension GL_EXT_spirv_intrinsics : require
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4452)
int dotSU4x8(uint a, uint b, spirv_literal int packedFormat);
#endif
layout(local_size_x = 64) in;
// Manifest.symbols: b, p, s; with SYMBOLS_IN_UNIFORM (Kernel.symbols_in_uniform) from the std140 uniform at
// set 1 (b, p, s at offsets 0, 4, 8: the runtime's packing, four per uvec4), else push constants.
#ifdef SYMBOLS_IN_UNIFORM
layout(std140, set = 1, binding = 0) uniform P { uint b; uint p; uint s; } pc;
#else
layout(push_constant) uniform P { uint b; uint p; uint s; } pc;
#endif
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer B { float o[]; };
void main() {
  uint n = pc.b * pc.s * 16u;
#ifdef INTEGER_DOT_PRODUCT
  // (1, -1) signed . (129, 127) unsigned = 2 (another reading of the signs gives -254 or more).
  const float two = float(dotSU4x8(0x0000ff01u, 0x00007f81u, 0));
#else
  const float two = 2.0;
#endif
  for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * 64u)
    o[i] = two * a[i];
}
