// The one device profile reader / writer (target/): round trips of the built-ins and of a file `kiln devices
// --json` wrote, every error one line naming the source and the key (unknown key, op, subgroup op and dtype
// names, wrong types, out-of-range numbers, truncated JSON), non-regular and oversized files refused before
// they are read, and missingCapabilities.
#include "kiln/target/DeviceProfile.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

using namespace kiln;
using namespace kiln::target;

namespace {

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// `text` with the first `from` replaced by `to`.
std::string replaced(std::string text, const std::string &from, const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    text.replace(at, from.size(), to);
  return text;
}

/// The message of a rejected profile; fails the test unless it is one line starting with "dev.json: ".
std::string rejection(const std::string &text) {
  StatusOr<DeviceProfile> p = parseDeviceProfile(text, "dev.json");
  EXPECT_FALSE(p.ok()) << "accepted:\n" << text;
  if (p.ok())
    return "";
  const std::string &m = p.status().message();
  EXPECT_EQ(m.rfind("dev.json: ", 0), 0u) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  return m;
}

const std::string kLavapipe = writeDeviceProfile(*builtinDeviceProfile("lavapipe"));

TEST(DeviceProfile, BuiltinsRoundTrip) {
  for (const std::string &name : builtinDeviceProfileNames()) {
    std::optional<DeviceProfile> p = builtinDeviceProfile(name);
    ASSERT_TRUE(p) << name;
    std::string text = writeDeviceProfile(*p);
    StatusOr<DeviceProfile> q = parseDeviceProfile(text, name + ".json");
    ASSERT_TRUE(q.ok()) << q.status().message();
    EXPECT_TRUE(*q == *p) << text;
    EXPECT_EQ(writeDeviceProfile(*q), text);
    StatusOr<DeviceProfile> loaded = loadDeviceProfile(name);
    ASSERT_TRUE(loaded.ok());
    EXPECT_TRUE(*loaded == *p);
  }
  DeviceProfile lvp = *builtinDeviceProfile("lavapipe");
  EXPECT_EQ(lvp.maxStorageBufferRange, 128ull << 20);
  EXPECT_EQ(lvp.subgroupSize, 8u);
  EXPECT_FALSE(lvp.hasSubgroupOp("clustered"));
  EXPECT_TRUE(lvp.hasSubgroupOp("arithmetic"));
  DeviceProfile h200 = *builtinDeviceProfile("nvidia-h200");
  EXPECT_EQ(h200.maxSharedMemory, 49152u);
  EXPECT_TRUE(h200.cooperativeMatrix);
  EXPECT_TRUE(h200.hasCooperativeMatrixShape("16x8x16 f16 f16 f32 f32"));
  EXPECT_FALSE(h200.hasCooperativeMatrixShape("16x8x16 f16 f16 f16 f32"));
  EXPECT_TRUE(lvp.cooperativeMatrixShapes.empty());
  DeviceProfile generic = *builtinDeviceProfile("generic");
  EXPECT_FALSE(generic.float16);
  EXPECT_FALSE(generic.storage16);
  EXPECT_EQ(generic.maxSharedMemory, 16384u);
  EXPECT_EQ(generic.maxWorkgroupInvocations, 256u);
  EXPECT_FALSE(builtinDeviceProfile("nope"));
}

// The writer is canonical: a file in that form (tests/e2e/vulkan/lavapipe-64k.json, the form of
// Manifest.device_profile_json) is written back byte for byte.
TEST(DeviceProfile, WriterIsCanonical) {
  const std::string path = std::string(KILN_SOURCE_DIR) + "/tests/e2e/vulkan/lavapipe-64k.json";
  std::string text = readText(path);
  ASSERT_FALSE(text.empty()) << path;
  StatusOr<DeviceProfile> p = loadDeviceProfile(path);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->maxStorageBufferRange, 65536u);
  EXPECT_EQ(writeDeviceProfile(*p), text);
  // Any spacing and key order reads the same.
  StatusOr<DeviceProfile> compact = parseDeviceProfile(
      R"({"unavailable_dtypes":[],"name":"lavapipe-64k","api_version":"1.3.230","float16":true,"int8":true,
          "storage16":true,"storage8":true,"subgroup_size":8,"subgroup_ops":["basic","vote","arithmetic",
          "ballot","shuffle","shuffle_relative","quad"],"max_shared_memory":32768,
          "max_workgroup_invocations":1024,"max_workgroup_size":[1024,1024,1024],
          "max_workgroup_count":[65535,65535,65535],"max_storage_buffer_range":65536,
          "max_allocation_size":2147483648,"max_push_constants_size":128,"cooperative_matrix":false,
          "integer_dot_product":true,"integer_dot_product_accelerated":false})",
      "compact.json");
  ASSERT_TRUE(compact.ok()) << compact.status().message();
  EXPECT_TRUE(*compact == *p);
}

// cooperative_matrix_shapes is optional on read (profiles written before it have none: no cooperative
// matrices for the kernels), always written, and a shape holds only with cooperative_matrix.
TEST(DeviceProfile, CooperativeMatrixShapes) {
  std::string text = writeDeviceProfile(*builtinDeviceProfile("lavapipe"));
  ASSERT_NE(text.find("\"cooperative_matrix_shapes\": []"), std::string::npos) << text;
  std::string before = replaced(text, "  \"cooperative_matrix_shapes\": [],\n", "");
  StatusOr<DeviceProfile> old = parseDeviceProfile(before, "old.json");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_TRUE(old->cooperativeMatrixShapes.empty());
  DeviceProfile p = *builtinDeviceProfile("nvidia-h200");
  StatusOr<DeviceProfile> back = parseDeviceProfile(writeDeviceProfile(p), "h200.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == p);
  p.cooperativeMatrix = false;
  EXPECT_FALSE(p.hasCooperativeMatrixShape("16x8x16 f16 f16 f32 f32"));
}

// cooperative_matrix_tile is optional, written only when set (profiles without it keep their canonical text),
// and must be a block the cooperative-matrix kernel can tile: "BMxBNxBK[xS]", BM and BN 32..256, BK 16..64, S
// (shared-memory stages) 1 or 2.
TEST(DeviceProfile, CooperativeMatrixTile) {
  DeviceProfile p = *builtinDeviceProfile("nvidia-h200");
  EXPECT_EQ(writeDeviceProfile(p).find("cooperative_matrix_tile"), std::string::npos);
  p.cooperativeMatrixTile = "128x64x32";
  std::string text = writeDeviceProfile(p);
  ASSERT_NE(text.find("\"cooperative_matrix_tile\": \"128x64x32\""), std::string::npos) << text;
  StatusOr<DeviceProfile> back = parseDeviceProfile(text, "tile.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == p);
  p.cooperativeMatrixTile = "64x256x16x2"; // two shared-memory stages
  StatusOr<DeviceProfile> staged = parseDeviceProfile(writeDeviceProfile(p), "tile.json");
  ASSERT_TRUE(staged.ok()) << staged.status().message();
  EXPECT_EQ(staged->cooperativeMatrixTile, "64x256x16x2");
  for (const char *bad : {"128x64", "128x64x32x3", "128x64x32x2x1", "128x64x32x", "100x64x32", "128x64x8",
                          "512x64x32", "x64x32", "0128x64x32", "7"}) {
    StatusOr<DeviceProfile> r = parseDeviceProfile(replaced(text, "128x64x32", bad), "tile.json");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("tile.json: key 'cooperative_matrix_tile'"), std::string::npos)
        << r.status().message();
  }
  StatusOr<DeviceProfile> number = parseDeviceProfile(replaced(text, "\"128x64x32\"", "128"), "tile.json");
  ASSERT_FALSE(number.ok());
  EXPECT_NE(number.status().message().find("expected a string"), std::string::npos) << number.status().message();
}

// integer_dot_product / integer_dot_product_accelerated are optional on read (profiles written before them:
// false), always written; the feature is a requirement (missingCapabilities), the acceleration is not. NVIDIA
// Hopper has both (dp4a), lavapipe the feature only.
TEST(DeviceProfile, IntegerDotProduct) {
  DeviceProfile lvp = *builtinDeviceProfile("lavapipe"), h200 = *builtinDeviceProfile("nvidia-h200");
  EXPECT_TRUE(lvp.integerDotProduct);
  EXPECT_FALSE(lvp.integerDotProductAccelerated);
  EXPECT_TRUE(h200.integerDotProduct);
  EXPECT_TRUE(h200.integerDotProductAccelerated);
  EXPECT_FALSE(builtinDeviceProfile("generic")->integerDotProduct);
  std::string text = writeDeviceProfile(h200);
  ASSERT_NE(text.find("\"integer_dot_product\": true,\n  \"integer_dot_product_accelerated\": true"), std::string::npos)
      << text;
  std::string before = replaced(text, "  \"integer_dot_product\": true,\n  \"integer_dot_product_accelerated\": true,\n", "");
  StatusOr<DeviceProfile> old = parseDeviceProfile(before, "old.json");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_FALSE(old->integerDotProduct);
  EXPECT_FALSE(old->integerDotProductAccelerated);
  h200.integerDotProduct = h200.integerDotProductAccelerated = false;
  EXPECT_TRUE(*old == h200);
  EXPECT_NE(rejection(replaced(kLavapipe, "\"integer_dot_product\": true", "\"integer_dot_product\": 1"))
                .find("key 'integer_dot_product': expected true or false"),
            std::string::npos);
  EXPECT_NE(rejection(replaced(kLavapipe, "\"integer_dot_product_accelerated\": false",
                               "\"integer_dot_product_accelerated\": \"no\""))
                .find("key 'integer_dot_product_accelerated': expected true or false"),
            std::string::npos);
  DeviceProfile need;
  need.integerDotProduct = true;
  EXPECT_EQ(missingCapabilities(lvp, need), "");
  EXPECT_EQ(missingCapabilities(*builtinDeviceProfile("generic"), need),
            "no shaderIntegerDotProduct (integer_dot_product)");
  need.integerDotProduct = false;
  need.integerDotProductAccelerated = true;
  EXPECT_EQ(missingCapabilities(lvp, need), "") << "acceleration is speed, no requirement";
}

TEST(DeviceProfile, UnavailableListsAndFiles) {
  DeviceProfile p = *builtinDeviceProfile("lavapipe");
  p.name = "lavapipe-no-rope";
  p.unavailableOps = {"kiln.rope", "layer_norm"};
  p.unavailableDtypes = {"f16"};
  EXPECT_TRUE(p.opUnavailable("kiln.rope"));
  EXPECT_TRUE(p.opUnavailable("kiln.layer_norm")); // a bare name means kiln.NAME
  EXPECT_FALSE(p.opUnavailable("kiln.matmul"));
  EXPECT_TRUE(p.dtypeUnavailable("f16"));
  EXPECT_FALSE(p.dtypeUnavailable("f32"));
  std::string path = ::testing::TempDir() + "/profile.json";
  std::ofstream(path) << writeDeviceProfile(p);
  StatusOr<DeviceProfile> q = loadDeviceProfile(path);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_TRUE(*q == p);
  StatusOr<DeviceProfile> missing = loadDeviceProfile(::testing::TempDir() + "/no-such.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no-such.json"), std::string::npos);
  EXPECT_NE(missing.status().message().find("lavapipe"), std::string::npos) << "lists the built-in names";
}

TEST(DeviceProfile, ErrorsNameTheKey) {
  auto expectError = [&](const std::string &from, const std::string &to, const std::string &needle) {
    std::string m = rejection(replaced(kLavapipe, from, to));
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  };
  // Wrong types.
  expectError("\"float16\": true", "\"float16\": 1", "key 'float16': expected true or false");
  expectError("\"name\": \"lavapipe\"", "\"name\": 7", "key 'name'");
  expectError("\"name\": \"lavapipe\"", "\"name\": \"\"", "key 'name'");
  expectError("\"api_version\": \"1.3.230\"", "\"api_version\": true", "key 'api_version'");
  std::string ops = kLavapipe.substr(kLavapipe.find("\"subgroup_ops\""));
  ops = ops.substr(0, ops.find(']') + 1); // "subgroup_ops": [ ... ]
  expectError(ops, "\"subgroup_ops\": \"basic vote\"", "key 'subgroup_ops': expected an array of strings");
  expectError("\"max_shared_memory\": 32768", "\"max_shared_memory\": \"32 KiB\"", "key 'max_shared_memory'");
  expectError("\"max_shared_memory\": 32768", "\"max_shared_memory\": 32768.5", "key 'max_shared_memory'");
  expectError("\"max_shared_memory\": 32768", "\"max_shared_memory\": null", "key 'max_shared_memory'");
  expectError("\"max_workgroup_size\": [", "\"max_workgroup_size\": [7, ", "key 'max_workgroup_size'");
  expectError("\"max_workgroup_count\": [\n    65535", "\"max_workgroup_count\": [\n    -1",
              "key 'max_workgroup_count'");
  expectError("\"unavailable_ops\": []", "\"unavailable_ops\": [3]", "key 'unavailable_ops'");
  expectError("\"unavailable_dtypes\": []", "\"unavailable_dtypes\": \"f16\"", "key 'unavailable_dtypes'");
  // Values out of range or of no meaning.
  expectError("\"subgroup_size\": 8", "\"subgroup_size\": -8", "key 'subgroup_size'");
  expectError("\"subgroup_size\": 8", "\"subgroup_size\": 0", "key 'subgroup_size': must be positive");
  expectError("\"subgroup_size\": 8", "\"subgroup_size\": 4294967296",
              "key 'subgroup_size': 4294967296 is out of range");
  expectError("\"max_workgroup_invocations\": 1024", "\"max_workgroup_invocations\": 0",
              "key 'max_workgroup_invocations'");
  expectError("\"api_version\": \"1.3.230\"", "\"api_version\": \"1.3\"", "key 'api_version'");
  expectError("\"api_version\": \"1.3.230\"", "\"api_version\": \"1.3.230-rc\"", "key 'api_version'");
  expectError("\"name\": \"lavapipe\"", "\"name\": \"lava\\npipe\"", "key 'name': has a control character");
  // Missing and unknown keys.
  expectError("\"subgroup_size\": 8,", "", "key 'subgroup_size': missing");
  expectError("\"cooperative_matrix\": false,", "", "key 'cooperative_matrix': missing");
  expectError("\"name\": \"lavapipe\"", "\"name\": \"lavapipe\", \"colour\": 1", "unknown key 'colour'");
  expectError("\"float16\"", "\"Float16\"", "unknown key 'Float16'");
}

TEST(DeviceProfile, UnknownNamesInListsAreErrors) {
  auto expectError = [&](const std::string &key, const std::string &value, const std::string &needle) {
    std::string m = rejection(replaced(kLavapipe, "\"" + key + "\": []", "\"" + key + "\": [" + value + "]"));
    EXPECT_NE(m.find("key '" + key + "'"), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  };
  expectError("unavailable_ops", "\"kiln.ropee\"", "unknown op 'kiln.ropee'");
  expectError("unavailable_ops", "\"ropee\"", "unknown op 'ropee'");
  expectError("unavailable_ops", "\"kiln.rope\", \"tosa.add\"", "unknown op 'tosa.add'");
  expectError("unavailable_ops", "\"\"", "unknown op ''");
  expectError("unavailable_dtypes", "\"f8\"", "unknown dtype 'f8' (f32 f16 bf16 i64 i32 i8 i1)");
  expectError("unavailable_dtypes", "\"F16\"", "unknown dtype 'F16'");
  for (const char *shape : {"\"16x8x16 f16 f16 f32\"", "\"16x8 f16 f16 f32 f32\"", "\"16x8x16 f16 f16 f32 f33\"",
                            "\"0x8x16 f16 f16 f32 f32\"", "\"16x8x16 f16 f16 f32 f32 \"",
                            "\"16X8X16 f16 f16 f32 f32\""})
    expectError("cooperative_matrix_shapes", shape, "expected \"MxNxK A B C R\"");
  std::string m = rejection(replaced(kLavapipe, "\"quad\"", "\"quadruple\""));
  EXPECT_NE(m.find("key 'subgroup_ops': unknown subgroup operation 'quadruple'"), std::string::npos) << m;
  // Every kiln op and dtype, with and without the dialect prefix, is accepted.
  std::string ops, dtypes;
  for (const std::string &op : kilnOpNames())
    ops += (ops.empty() ? "\"" : ", \"") + op + "\", \"" + op.substr(5) + "\"";
  for (const char *d : kProfileDtypeNames)
    dtypes += (dtypes.empty() ? "\"" : ", \"") + std::string(d) + "\"";
  std::string text = replaced(kLavapipe, "\"unavailable_ops\": []", "\"unavailable_ops\": [" + ops + "]");
  text = replaced(text, "\"unavailable_dtypes\": []", "\"unavailable_dtypes\": [" + dtypes + "]");
  StatusOr<DeviceProfile> p = parseDeviceProfile(text, "all.json");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->unavailableOps.size(), 2 * kilnOpNames().size());
  EXPECT_TRUE(p->opUnavailable("kiln.attention"));
  StatusOr<DeviceProfile> again = parseDeviceProfile(writeDeviceProfile(*p), "again.json");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(*again == *p);
}

TEST(DeviceProfile, OptionalListsAndPackedVersion) {
  // unavailable_* may be omitted; a packed VK_MAKE_API_VERSION is read as major.minor.patch.
  std::string text = replaced(kLavapipe, "\"1.3.230\"", std::to_string((1u << 22) | (3u << 12) | 230u));
  text = replaced(text, ",\n  \"unavailable_ops\": []", "");
  text = replaced(text, ",\n  \"unavailable_dtypes\": []", "");
  StatusOr<DeviceProfile> q = parseDeviceProfile(text, "dev.json");
  ASSERT_TRUE(q.ok()) << q.status().message() << "\n" << text;
  EXPECT_EQ(q->apiVersion, "1.3.230");
  EXPECT_TRUE(*q == *builtinDeviceProfile("lavapipe"));
}

TEST(DeviceProfile, MalformedJson) {
  EXPECT_NE(rejection("").find("not valid JSON"), std::string::npos);
  EXPECT_NE(rejection("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(rejection("\"lavapipe\"").find("a device profile is a JSON object"), std::string::npos);
  EXPECT_NE(rejection("null").find("a device profile is a JSON object"), std::string::npos);
  EXPECT_NE(rejection("[" + kLavapipe + "]").find("a JSON array"), std::string::npos);
  EXPECT_NE(rejection(kLavapipe + "{}").find("not valid JSON"), std::string::npos);
  EXPECT_NE(rejection(std::string(kLavapipe).insert(20, 1, '\0')).find("not valid JSON"), std::string::npos);
  EXPECT_NE(rejection(std::string(100000, '[')).find("not valid JSON"), std::string::npos);
  // Every proper prefix of a valid profile (a truncated file) is rejected with one line.
  for (size_t n = 0; n + 1 < kLavapipe.size(); ++n)
    rejection(kLavapipe.substr(0, n));
}

TEST(DeviceProfile, NonRegularAndLargeFilesAreRefusedUnread) {
  auto expectRefused = [](const std::string &path, const std::string &needle) {
    auto start = std::chrono::steady_clock::now();
    StatusOr<DeviceProfile> p = loadDeviceProfile(path);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(p.ok()) << path;
    const std::string &m = p.status().message();
    EXPECT_EQ(m.rfind(path + ": ", 0), 0u) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(seconds, 1.0) << path << " was read";
  };
  expectRefused("/dev/zero", "not a regular file");
  expectRefused(::testing::TempDir(), "not a regular file");
  std::string fifo = ::testing::TempDir() + "/profile-fifo-" + std::to_string(::getpid());
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expectRefused(fifo, "not a regular file"); // opening it would block until a writer came
  ::unlink(fifo.c_str());
  std::string big = ::testing::TempDir() + "/profile-big.json";
  {
    std::ofstream out(big, std::ios::binary);
    out << kLavapipe;
  }
  ASSERT_EQ(::truncate(big.c_str(), off_t(kMaxProfileFileBytes) + 1), 0); // sparse: nothing written
  expectRefused(big, "more than the limit");
  ::unlink(big.c_str());
}

TEST(DeviceProfile, MissingCapabilities) {
  DeviceProfile lvp = *builtinDeviceProfile("lavapipe"), h200 = *builtinDeviceProfile("nvidia-h200");
  EXPECT_EQ(missingCapabilities(lvp, lvp), "");
  EXPECT_EQ(missingCapabilities(lvp, DeviceProfile()), "") << "an empty requirement needs nothing";
  std::string m = missingCapabilities(lvp, h200);
  for (const char *part : {"no VK_KHR_cooperative_matrix (cooperative_matrix)", "no subgroup op clustered",
                           "max_shared_memory 32768 < 49152", "max_workgroup_count.x 65535 < 2147483647",
                           "max_storage_buffer_range 134217728 < 4294967295", "max_push_constants_size 128 < 256"})
    EXPECT_NE(m.find(part), std::string::npos) << part << " in " << m;
  EXPECT_EQ(m.find("max_workgroup_size.z"), std::string::npos) << "lavapipe's z 1024 >= the H200's 64: " << m;
  DeviceProfile generic = *builtinDeviceProfile("generic");
  m = missingCapabilities(generic, lvp);
  EXPECT_NE(m.find("no shaderFloat16 (float16)"), std::string::npos) << m;
  EXPECT_NE(m.find("no 8-bit storage (storage8)"), std::string::npos) << m;
  // subgroup_size, names and the unavailable lists are no requirement.
  DeviceProfile need;
  need.subgroupSize = 64;
  need.unavailableOps = {"kiln.rope"};
  EXPECT_EQ(missingCapabilities(generic, need), "");
}

TEST(DeviceProfile, OpNamesAreUniqueKilnOps) {
  std::set<std::string> seen;
  for (const std::string &op : kilnOpNames()) {
    EXPECT_EQ(op.rfind("kiln.", 0), 0u) << op;
    EXPECT_TRUE(seen.insert(op).second) << op << " twice";
    EXPECT_EQ(canonicalOpName(op.substr(5)), op);
  }
}

} // namespace
