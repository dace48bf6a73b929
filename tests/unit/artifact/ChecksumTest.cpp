#include "kiln/artifact/ArtifactFormat.h"
#include "kiln/artifact/Checksum.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace kiln::artifact;

namespace {
uint64_t xxh(const std::string &s) { return checksum64(s.data(), s.size()); }
} // namespace

TEST(Checksum, KnownVectors) {
  EXPECT_EQ(xxh(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xxh("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(xxh("abc"), 0x44BC2CF5AD770999ULL);
  // Longer inputs exercise the 32-byte stripes and every tail length (reference values from xxhsum -H1).
  EXPECT_EQ(xxh("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1ULL);
  EXPECT_EQ(xxh("The quick brown fox jumps over the lazy dog"), 0x0B242D361FDA71BCULL);
}

TEST(Checksum, StreamingEqualsOneShot) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = uint8_t(i * 131 + 7);
  for (size_t len : {0u, 1u, 3u, 4u, 7u, 8u, 31u, 32u, 33u, 63u, 64u, 65u, 100u, 1000u}) {
    uint64_t expect = checksum64(data.data(), len);
    for (size_t step : {1u, 5u, 13u, 32u, 200u}) {
      Xxh64 h;
      for (size_t off = 0; off < len; off += step)
        h.update(data.data() + off, std::min(step, len - off));
      EXPECT_EQ(h.digest(), expect) << "len " << len << " step " << step;
    }
  }
}
