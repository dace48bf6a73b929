# kiln_vulkan_runtime_tests: the Vulkan executor and `kiln devices` on hand-made artifacts with GLSL kernels
# compiled at test time (glslangValidator, from glslang-tools). Runs on lavapipe in CI; skips without a device.
find_program(KILN_GLSLANG_VALIDATOR glslangValidator)
if(NOT KILN_GLSLANG_VALIDATOR)
  message(STATUS "kiln: glslangValidator not found; kiln_vulkan_runtime_tests not built (apt install glslang-tools)")
  return()
endif()
add_executable(kiln_vulkan_runtime_tests
  ${CMAKE_CURRENT_SOURCE_DIR}/VulkanTest.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/ToyArtifact.cpp)
target_link_libraries(kiln_vulkan_runtime_tests PRIVATE kiln_runtime kiln_artifact kiln_frontend GTest::gtest
                      GTest::gtest_main)
# IntegerDotProductKernel reads the executor's internal deviceRequirements (runtime/src/vulkan/VulkanProgram.h).
target_include_directories(kiln_vulkan_runtime_tests PRIVATE ${CMAKE_SOURCE_DIR}/runtime/src)
target_compile_definitions(kiln_vulkan_runtime_tests PRIVATE KILN_C_COMPILER="${CMAKE_C_COMPILER}"
                           KILN_BINARY="$<TARGET_FILE:kiln>" KILN_GLSLANG_VALIDATOR="${KILN_GLSLANG_VALIDATOR}"
                           KILN_TEST_SHADERS="${CMAKE_CURRENT_SOURCE_DIR}/shaders")
set(KILN_VULKAN_TEST_ICD /usr/share/vulkan/icd.d/lvp_icd.x86_64.json CACHE STRING
    "VK_DRIVER_FILES for the Vulkan runtime tests (lavapipe)")
gtest_discover_tests(kiln_vulkan_runtime_tests TEST_PREFIX "runtime." DISCOVERY_TIMEOUT 60
                     PROPERTIES ENVIRONMENT "VK_DRIVER_FILES=${KILN_VULKAN_TEST_ICD}")
