// Toy kernel of tests/unit/runtime/VulkanTest.cpp (compiled there by glslangValidator).
#version 450
layout(local_size_x = 64) in;
layout(push_constant) uniform P { uint b; uint p; uint s; } pc; // Manifest.symbols: b, p, s
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer B { float o[]; };
void main() {
  uint n = pc.b * pc.s * 16u;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * 64u)
    o[i] = 2.0 * a[i];
}
