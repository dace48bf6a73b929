#version 450
// The start of every kiln SPIR-V kernel (codegen/spirv). The code generator puts the kernel's variant
// defines right after the #version line (which must stay first), then the rest of this file, then the
// buffer declarations and specialization constants of the op, then the kernel's own .comp file, with every
// `#include "x.glsl"` replaced by that file (once per kernel). --dump-dir writes the assembled source.
//
// Always defined by the generator:
//   WG_X, WG_Y, WG_Z   the workgroup size
//   NUM_SYMBOLS        the number of symbols (the step function's symbolic dims b, s, p), read from the uniform
//                      buffer at set 1, binding 0 as pc.symbols[i / 4][i % 4] (not push constants: the runtime
//                      records a step's command buffers once and replays them, writing only this buffer)
// Optional: STORAGE_8BIT, STORAGE_16BIT (i1 / f16 / bf16 buffers), SUBGROUP_ARITHMETIC (subgroupAdd & co),
// COOPERATIVE_MATRIX (GL_NV_cooperative_matrix under the Vulkan memory model; the generator rewrites the
// module to SPV_KHR_cooperative_matrix after validation), INTEGER_DOT_PRODUCT (dotSU4x8 below: the device's
// shaderIntegerDotProduct).
#ifdef STORAGE_8BIT
#extension GL_EXT_shader_8bit_storage : require
#endif
#ifdef STORAGE_16BIT
#extension GL_EXT_shader_16bit_storage : require
#endif
#ifdef SUBGROUP_ARITHMETIC
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#ifdef COOPERATIVE_MATRIX
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#pragma use_vulkan_memory_model
#endif
#ifdef INTEGER_DOT_PRODUCT
// glslang 12 (Debian 12) has no GL_EXT_integer_dot_product: the instruction through GL_EXT_spirv_intrinsics.
#extension GL_EXT_spirv_intrinsics : require
#endif
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : enable
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : enable
#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;
#if NUM_SYMBOLS > 0
layout(std140, set = 1, binding = 0) uniform KilnSymbols { uvec4 symbols[(NUM_SYMBOLS + 3) / 4]; } pc;
#endif

#ifdef INTEGER_DOT_PRODUCT
// OpSUDot (4452) on packed 4 x 8-bit vectors (packedFormat 0, PackedVectorFormat4x8Bit): the sum of a's four
// bytes as signed times b's four bytes as unsigned, exact in int. Capabilities DotProduct (6019) and
// DotProductInput4x8BitPacked (6018).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4452)
int dotSU4x8(uint a, uint b, spirv_literal int packedFormat);
#endif

#include "types.glsl"
