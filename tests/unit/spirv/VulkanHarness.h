//===- VulkanHarness.h - a minimal Vulkan compute dispatcher for the kernel tests -*- C++ -*-===//
//
// Only for tests: the first device, one queue, host-visible coherent buffers, one descriptor set of storage
// buffers, the symbols uniform (set 1, binding 0, as codegen/spirv's kernels read it), vkCmdDispatch and a fence per call. The production executor is runtime/src/vulkan/. Enabled:
// 8/16-bit storage, int8 / int16 / float16 arithmetic, the Vulkan memory model and, where present,
// VK_KHR_cooperative_matrix and VK_KHR_shader_integer_dot_product (the kernels of a GPU profile need them;
// kiln_spirv_replay runs those).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_SPIRV_VULKANHARNESS_H
#define KILN_TESTS_SPIRV_VULKANHARNESS_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::test {

class VulkanHarness {
public:
  /// Null (with `why`) when no Vulkan device is present.
  static std::unique_ptr<VulkanHarness> create(std::string &why);
  ~VulkanHarness();

  std::string deviceName() const { return deviceName_; }
  /// VK_KHR_cooperative_matrix's subgroup-scope shapes as "MxNxK A B C Result" (device profile form), empty
  /// without the extension. With it, the device is created with the extension enabled.
  const std::vector<std::string> &cooperativeMatrixShapes() const { return shapes_; }
  /// Whether the device was created with shaderIntegerDotProduct (the quantized GEMV's OpSUDot kernels run).
  bool integerDotProduct() const { return integerDotProduct_; }

  /// Runs `spirv` once with buffers[i] at binding i (contents copied in, and back out for all of them),
  /// the symbol values `pushWords` (the uniform at set 1, binding 0), and `groups` workgroups; `specialization`: the values of constant_id 0 .. n-1.
  /// Returns an empty string or an error.
  std::string dispatch(const std::vector<uint32_t> &spirv, std::vector<std::vector<uint8_t> *> buffers,
                       const std::vector<uint32_t> &pushWords, const uint32_t groups[3],
                       const std::vector<uint32_t> &specialization = {});

private:
  VulkanHarness() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string deviceName_;
  bool integerDotProduct_ = false;
  std::vector<std::string> shapes_;
};

} // namespace kiln::test

#endif
