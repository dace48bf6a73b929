// libFuzzer target: arbitrary bytes through five small tokenizers that together use every component
// (tests/fuzz/tokenizers, written by make_tokenizers.py). The first byte picks the tokenizer. Valid UTF-8 always
// encodes; invalid UTF-8 is refused with a one-line message; ids decode, and stream to the same text. The
// input read as 16-bit ids is decoded too.
#include "TokenizerFuzzCommon.h"

#include "kiln/support/Utf8.h"
#include "kiln/support/Util.h"

namespace {
const std::vector<kiln::tokenizer::Tokenizer> &tokenizers() {
  static const std::vector<kiln::tokenizer::Tokenizer> all = [] {
    std::vector<kiln::tokenizer::Tokenizer> out;
    for (const char *name : {"bytelevel", "sentencepiece", "wordpiece", "unigram", "wordlevel"}) {
      auto t = kiln::tokenizer::Tokenizer::load(std::string(KILN_FUZZ_TOKENIZERS) + "/" + name);
      if (!t.ok())
        std::abort();
      out.push_back(std::move(*t));
    }
    return out;
  }();
  return all;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const auto &all = tokenizers();
  const auto &tok = all[data[0] % all.size()];
  std::string_view text(reinterpret_cast<const char *>(data) + 1, size - 1);
  kiln_fuzz::checkText(tok, text, /*mustEncode=*/kiln::support::isValidUtf8(text));
  std::vector<uint32_t> ids;
  for (size_t i = 1; i + 1 < size; i += 2)
    ids.push_back((uint32_t(data[i]) | uint32_t(data[i + 1]) << 8) % 600);
  kiln_fuzz::checkDecoding(tok, ids);
  return 0;
}
