// Toy kernel of tests/unit/runtime/VulkanTest.cpp (compiled there by glslangValidator).
#version 450
layout(local_size_x = 64) in;
// Manifest.symbols: b, p, s; with SYMBOLS_IN_UNIFORM (Kernel.symbols_in_uniform) from the std140 uniform at
// set 1 (b, p, s at offsets 0, 4, 8: the runtime's packing, four per uvec4), else push constants.
#ifdef SYMBOLS_IN_UNIFORM
layout(std140, set = 1, binding = 0) uniform P { uint b; uint p; uint s; } pc;
#else
layout(push_constant) uniform P { uint b; uint p; uint s; } pc;
#endif
layout(std430, set = 0, binding = 0) readonly buffer A { float present[]; };
layout(std430, set = 0, binding = 1) writeonly buffer H { float h[]; };
void main() {
  uint len = pc.p + pc.s, n = pc.b * pc.s * 4u;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * 64u) {
    uint r = i / (pc.s * 4u), t = (i / 4u) % pc.s, k = i % 4u, a = pc.p + t, row = r * len * 4u;
    float sum = 0.0;
    for (uint j = 0u; j <= a; ++j)
      sum += present[row + j * 4u + k];
    h[i] = present[row + a * 4u + k] + sum / float(a + 1u);
  }
}
