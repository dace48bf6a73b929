//===- DeviceProfileJson.h - the JSON schema of a Vulkan capability profile -*- C++ -*-===//
//
// `kiln devices --json` writes, Manifest.device_profile_json records and `kiln compile --device-profile FILE`
// (the partitioner) reads one object per device with exactly these keys:
//
//   {
//     "name": "llvmpipe (LLVM 15.0.6, 256 bits)",  // VkPhysicalDeviceProperties::deviceName
//     "api_version": "1.3.230",                     // major.minor.patch of the device's apiVersion
//     "float16": true,            // shaderFloat16 (fp16 arithmetic)
//     "int8": true,               // shaderInt8
//     "storage16": true,          // storageBuffer16BitAccess
//     "storage8": true,           // storageBuffer8BitAccess
//     "subgroup_size": 8,         // the (default) subgroup size; 0 in a target profile: kernels assume none
//     "subgroup_ops": ["basic","vote","arithmetic","ballot","shuffle","shuffle_relative","quad"],
//                                 // supported compute-stage operations, a subset of basic, vote, arithmetic,
//                                 // ballot, shuffle, shuffle_relative, clustered, quad
//     "max_shared_memory": 32768,          // maxComputeSharedMemorySize (bytes)
//     "max_workgroup_invocations": 1024,   // maxComputeWorkGroupInvocations
//     "max_workgroup_size": [1024,1024,1024],
//     "max_workgroup_count": [65535,65535,65535],
//     "max_storage_buffer_range": 134217728, // maxStorageBufferRange (bytes one binding may span)
//     "max_allocation_size": 2147483648,     // maxMemoryAllocationSize
//     "max_push_constants_size": 128,
//     "cooperative_matrix": false,           // VK_KHR_cooperative_matrix present
//     "unavailable_ops": [],                 // e.g. ["kiln.rope"]: ops to treat as missing (device writes [])
//     "unavailable_dtypes": []               // e.g. ["f16"]: dtypes to treat as missing
//   }
//
// `kiln devices --json` writes the object of the one device present (or of `--device N|NAME`), a file that
// `--device-profile FILE` reads; with several devices and no --device, a JSON array of them. The runtime's
// reader (parseProfileJson) takes an object, or the first element of an array. Integers are JSON numbers (exact up
// to 2^53). Unknown keys are ignored; an absent key means "no requirement" in a target profile.
//
// missingCapabilities(device, need): a true flag needs the device's flag, every listed subgroup op must be
// supported, and every max_* must be <= the device's value. At load, `need` is the artifact's profile's
// features (float16, int8, storage16, storage8, subgroup_ops, cooperative_matrix) with the limits the
// artifact actually reaches (its kernels' workgroup sizes, grids at the symbols' max values and shared
// memory, its DEVICE buffers' sizes, 4 bytes of push constants per symbol): a profile's limits describe the
// device it was read from (the H200's maxMemoryAllocationSize is 2 MiB under 4 GiB, its
// maxComputeWorkGroupSize.z 64 is below lavapipe's), not a requirement. subgroup_size is not a requirement
// either: the generated kernels work with any subgroup size.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_VULKAN_DEVICEPROFILEJSON_H
#define KILN_RUNTIME_VULKAN_DEVICEPROFILEJSON_H

#include "kiln/vulkan/DeviceProfile.h"

#endif
