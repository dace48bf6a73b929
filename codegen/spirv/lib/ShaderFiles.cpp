//===- ShaderFiles.cpp - the embedded codegen/spirv/shaders ---------------===//
#include "KernelBuilder.h"

namespace kiln::codegen::spirv {

const std::map<std::string, std::string> &shaderFiles() {
  // ShaderFiles.inc: {"name.comp", R"(text)"}, ... written at build time by cmake/EmbedShaders.cmake.
  static const std::map<std::string, std::string> files = {
#include "ShaderFiles.inc"
  };
  return files;
}

} // namespace kiln::codegen::spirv
