//===- DeviceProfileJson.cpp - the one JSON reader / writer of device profiles ===//
//
// nlohmann-json without exceptions: parse(text, nullptr, false) + is_discarded(), and every value's type is
// checked before get<>() (a wrong get<>() would abort).
//
//===----------------------------------------------------------------------===//
#include "kiln/target/DeviceProfile.h"

#include "kiln/support/JsonError.h"
#include "kiln/support/Util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <iterator>

namespace kiln::target {
namespace {

using Json = nlohmann::json;

const char *const kProfileKeys[] = {"name",
                                    "api_version",
                                    "float16",
                                    "int8",
                                    "storage16",
                                    "storage8",
                                    "subgroup_size",
                                    "subgroup_ops",
                                    "max_shared_memory",
                                    "max_workgroup_invocations",
                                    "max_workgroup_size",
                                    "max_workgroup_count",
                                    "max_storage_buffer_range",
                                    "max_allocation_size",
                                    "max_push_constants_size",
                                    "cooperative_matrix",
                                    "cooperative_matrix_shapes",
                                    "cooperative_matrix_tile",
                                    "integer_dot_product",
                                    "integer_dot_product_accelerated",
                                    "unavailable_ops",
                                    "unavailable_dtypes"};

template <size_t N> bool isOneOf(const std::string &s, const char *const (&names)[N]) {
  return std::find_if(std::begin(names), std::end(names), [&](const char *n) { return s == n; }) != std::end(names);
}

template <size_t N> std::string joined(const char *const (&names)[N]) {
  std::string out;
  for (const char *n : names)
    out += (out.empty() ? "" : " ") + std::string(n);
  return out;
}

/// "major.minor.patch" with decimal numbers of at most 9 digits each.
bool isVersionTriple(const std::string &s) {
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - start < 9)
      ++i;
    if (i == start)
      return false;
    if (part < 2 && (i >= s.size() || s[i++] != '.'))
      return false;
  }
  return i == s.size();
}

bool hasControlCharacter(const std::string &s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

/// Reads the keys of one profile object, keeping the first error (one line: "SOURCE: key 'K': what").
class ProfileReader {
public:
  ProfileReader(const Json &object, const std::string &source) : j_(object), source_(source) {}

  bool failed() const { return !error_.empty(); }
  const std::string &error() const { return error_; }

  void fail(const std::string &key, const std::string &what) {
    if (error_.empty())
      error_ = source_ + ": key '" + key + "': " + what;
  }

  /// The value of a required key, or null (and an error) when it is absent.
  const Json *need(const std::string &key) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      fail(key, "missing");
      return nullptr;
    }
    return &*it;
  }

  void readBool(const std::string &key, bool *out) {
    if (const Json *v = need(key)) {
      if (!v->is_boolean())
        return fail(key, "expected true or false");
      *out = v->get<bool>();
    }
  }

  /// A key profiles written before it lack: absent leaves *out (false).
  void readOptionalBool(const std::string &key, bool *out) {
    if (j_.contains(key))
      readBool(key, out);
  }

  /// A non-negative JSON integer <= max.
  template <typename T> void readUint(const std::string &key, uint64_t max, T *out) {
    if (const Json *v = need(key)) {
      if (!v->is_number_unsigned())
        return fail(key, "expected a non-negative integer");
      uint64_t x = v->get<uint64_t>();
      if (x > max)
        return fail(key, std::to_string(x) + " is out of range (at most " + std::to_string(max) + ")");
      *out = T(x);
    }
  }

  void readTriple(const std::string &key, std::array<uint64_t, 3> *out) {
    if (const Json *v = need(key)) {
      if (!v->is_array() || v->size() != 3)
        return fail(key, "expected [x, y, z]");
      for (size_t i = 0; i < 3; ++i) {
        const Json &e = (*v)[i];
        if (!e.is_number_unsigned() || e.get<uint64_t>() > 0xffffffffull)
          return fail(key, "expected [x, y, z] of non-negative 32-bit integers");
        (*out)[i] = e.get<uint64_t>();
      }
    }
  }

  void readStrings(const std::string &key, bool required, std::vector<std::string> *out) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required)
        fail(key, "missing");
      return;
    }
    if (!it->is_array())
      return fail(key, "expected an array of strings");
    for (const Json &e : *it) {
      if (!e.is_string())
        return fail(key, "expected an array of strings");
      out->push_back(e.get<std::string>());
    }
  }

  void readOptionalString(const std::string &key, std::string *out) {
    auto it = j_.find(key);
    if (it == j_.end())
      return;
    if (!it->is_string())
      return fail(key, "expected a string");
    *out = it->get<std::string>();
  }

  void readName(std::string *out) {
    if (const Json *v = need("name")) {
      if (!v->is_string() || v->get<std::string>().empty())
        return fail("name", "expected a non-empty string");
      if (hasControlCharacter(v->get<std::string>()))
        return fail("name", "has a control character");
      *out = v->get<std::string>();
    }
  }

  void readApiVersion(std::string *out) {
    const Json *v = need("api_version");
    if (!v)
      return;
    if (v->is_number_unsigned()) { // VK_MAKE_API_VERSION, packed
      uint64_t x = v->get<uint64_t>();
      *out = std::to_string((x >> 22) & 0x7f) + "." + std::to_string((x >> 12) & 0x3ff) + "." +
             std::to_string(x & 0xfff);
      return;
    }
    if (!v->is_string())
      return fail("api_version", "expected \"major.minor.patch\"");
    if (!isVersionTriple(v->get<std::string>()))
      return fail("api_version", "expected \"major.minor.patch\", got " + support::quoteName(v->get<std::string>()));
    *out = v->get<std::string>();
  }

private:
  const Json &j_;
  const std::string &source_;
  std::string error_;
};

const char *const kComponentTypes[] = {"f16", "f32", "f64", "bf16", "s8",  "u8",   "s16",
                                       "u16", "s32", "u32", "s64",  "u64", "e4m3", "e5m2"};

/// "MxNxK A B C R": three positive sizes of at most 4 digits, then four component type names.
bool isCooperativeMatrixShape(const std::string &s) {
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - start < 4)
      ++i;
    if (i == start || s[start] == '0' || i == s.size() || s[i] != (part < 2 ? 'x' : ' '))
      return false;
    ++i;
  }
  for (int type = 0; type < 4; ++type) {
    size_t end = s.find(' ', i);
    std::string name = s.substr(i, end == std::string::npos ? std::string::npos : end - i);
    if (!isOneOf(name, kComponentTypes) || (type < 3) != (end != std::string::npos))
      return false;
    i = end + 1;
  }
  return true;
}

/// "BMxBNxBK" or "BMxBNxBKxS": the matmul's cooperative-matrix block, BM and BN 32, 64, 128 or 256, BK 16, 32
/// or 64, S (shared-memory stages) 1 or 2 (what codegen/spirv's matmul_coopmat.glsl can tile with 8 warps).
bool isCooperativeMatrixTile(const std::string &s) {
  const std::vector<std::vector<std::string>> sizes = {
      {"32", "64", "128", "256"}, {"32", "64", "128", "256"}, {"16", "32", "64"}, {"1", "2"}};
  size_t start = 0, part = 0;
  for (; part < sizes.size() && start <= s.size(); ++part) {
    size_t end = s.find('x', start);
    end = end == std::string::npos ? s.size() : end;
    if (std::find(sizes[part].begin(), sizes[part].end(), s.substr(start, end - start)) == sizes[part].end())
      return false;
    start = end + 1;
  }
  return part >= 3 && start > s.size();
}

/// The rules between keys and the name lists: every subgroup op, op and dtype name must be known.
void checkNames(const DeviceProfile &p, ProfileReader &r) {
  for (const std::string &op : p.subgroupOps)
    if (!isOneOf(op, kSubgroupOpNames))
      return r.fail("subgroup_ops", "unknown subgroup operation " + support::quoteName(op) + " (" +
                                        joined(kSubgroupOpNames) + ")");
  const std::vector<std::string> &ops = kilnOpNames();
  for (const std::string &op : p.unavailableOps)
    if (std::find(ops.begin(), ops.end(), canonicalOpName(op)) == ops.end())
      return r.fail("unavailable_ops", "unknown op " + support::quoteName(op) + " (not a kiln op, e.g. kiln.rope)");
  for (const std::string &d : p.unavailableDtypes)
    if (!isOneOf(d, kProfileDtypeNames))
      return r.fail("unavailable_dtypes", "unknown dtype " + support::quoteName(d) + " (" +
                                              joined(kProfileDtypeNames) + ")");
  for (const std::string &shape : p.cooperativeMatrixShapes)
    if (!isCooperativeMatrixShape(shape))
      return r.fail("cooperative_matrix_shapes", "expected \"MxNxK A B C R\" (e.g. \"16x8x16 f16 f16 f32 f32\"), got " +
                                                     support::quoteName(shape));
  if (!p.cooperativeMatrixTile.empty() && !isCooperativeMatrixTile(p.cooperativeMatrixTile))
    return r.fail("cooperative_matrix_tile", "expected \"BMxBNxBK\" or \"BMxBNxBKxS\" (e.g. \"128x128x32\"), got " +
                                                 support::quoteName(p.cooperativeMatrixTile));
  if (p.subgroupSize == 0)
    return r.fail("subgroup_size", "must be positive");
  if (p.maxWorkgroupInvocations == 0)
    return r.fail("max_workgroup_invocations", "must be positive");
}

} // namespace

StatusOr<DeviceProfile> parseDeviceProfile(const std::string &jsonText, const std::string &source) {
  Json j = Json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Status::error(source + ": " + support::jsonSyntaxError(jsonText));
  if (j.is_array())
    return Status::error(source + ": a JSON array; a device profile is one object (with several devices, "
                                  "`kiln devices --json --device N` writes one)");
  if (!j.is_object())
    return Status::error(source + ": a device profile is a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!isOneOf(it.key(), kProfileKeys))
      return Status::error(source + ": unknown key " + support::quoteName(it.key()) +
                           " in the device profile (keys: " + joined(kProfileKeys) + ")");
  DeviceProfile p;
  ProfileReader r(j, source);
  r.readName(&p.name);
  r.readApiVersion(&p.apiVersion);
  r.readBool("float16", &p.float16);
  r.readBool("int8", &p.int8);
  r.readBool("storage16", &p.storage16);
  r.readBool("storage8", &p.storage8);
  r.readUint("subgroup_size", 0xffffffffull, &p.subgroupSize);
  r.readStrings("subgroup_ops", /*required=*/true, &p.subgroupOps);
  r.readUint("max_shared_memory", 0xffffffffull, &p.maxSharedMemory);
  r.readUint("max_workgroup_invocations", 0xffffffffull, &p.maxWorkgroupInvocations);
  r.readTriple("max_workgroup_size", &p.maxWorkgroupSize);
  r.readTriple("max_workgroup_count", &p.maxWorkgroupCount);
  r.readUint("max_storage_buffer_range", ~0ull, &p.maxStorageBufferRange);
  r.readUint("max_allocation_size", ~0ull, &p.maxAllocationSize);
  r.readUint("max_push_constants_size", 0xffffffffull, &p.maxPushConstantsSize);
  r.readBool("cooperative_matrix", &p.cooperativeMatrix);
  r.readStrings("cooperative_matrix_shapes", /*required=*/false, &p.cooperativeMatrixShapes);
  r.readOptionalString("cooperative_matrix_tile", &p.cooperativeMatrixTile);
  r.readOptionalBool("integer_dot_product", &p.integerDotProduct);
  r.readOptionalBool("integer_dot_product_accelerated", &p.integerDotProductAccelerated);
  r.readStrings("unavailable_ops", /*required=*/false, &p.unavailableOps);
  r.readStrings("unavailable_dtypes", /*required=*/false, &p.unavailableDtypes);
  if (!r.failed())
    checkNames(p, r);
  if (r.failed())
    return Status::error(r.error());
  return p;
}

std::string writeDeviceProfile(const DeviceProfile &p) {
  nlohmann::ordered_json j;
  j["name"] = p.name;
  j["api_version"] = p.apiVersion;
  j["float16"] = p.float16;
  j["int8"] = p.int8;
  j["storage16"] = p.storage16;
  j["storage8"] = p.storage8;
  j["subgroup_size"] = p.subgroupSize;
  j["subgroup_ops"] = p.subgroupOps;
  j["max_shared_memory"] = p.maxSharedMemory;
  j["max_workgroup_invocations"] = p.maxWorkgroupInvocations;
  j["max_workgroup_size"] = p.maxWorkgroupSize;
  j["max_workgroup_count"] = p.maxWorkgroupCount;
  j["max_storage_buffer_range"] = p.maxStorageBufferRange;
  j["max_allocation_size"] = p.maxAllocationSize;
  j["max_push_constants_size"] = p.maxPushConstantsSize;
  j["cooperative_matrix"] = p.cooperativeMatrix;
  j["cooperative_matrix_shapes"] = p.cooperativeMatrixShapes;
  if (!p.cooperativeMatrixTile.empty()) // optional: profiles without it keep their canonical form
    j["cooperative_matrix_tile"] = p.cooperativeMatrixTile;
  j["integer_dot_product"] = p.integerDotProduct;
  j["integer_dot_product_accelerated"] = p.integerDotProductAccelerated;
  j["unavailable_ops"] = p.unavailableOps;
  j["unavailable_dtypes"] = p.unavailableDtypes;
  // A device name that is not UTF-8 (the loader's bytes) is written with U+FFFD instead of aborting.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

} // namespace kiln::target
