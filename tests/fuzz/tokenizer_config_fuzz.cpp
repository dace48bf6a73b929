// libFuzzer target: tokenizer_config.json, special_tokens_map.json and generation_config.json (the input split
// at its first two NUL bytes) next to a fixed tokenizer.json. They load or fail with a one-line message naming
// the file.
#include "TokenizerFuzzCommon.h"

#include <fstream>
#include <sstream>

namespace {
const std::string &tokenizerJson() {
  static const std::string text = [] {
    std::ifstream in(std::string(KILN_FUZZ_TOKENIZERS) + "/sentencepiece/tokenizer.json", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  if (text.empty())
    std::abort();
  return text;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string input(reinterpret_cast<const char *>(data), size);
  kiln::tokenizer::TokenizerFiles files;
  files.tokenizerJson = tokenizerJson();
  std::string *parts[] = {&files.tokenizerConfigJson, &files.specialTokensMapJson, &files.generationConfigJson};
  size_t start = 0;
  for (int i = 0; i < 3 && start <= input.size(); ++i) {
    size_t nul = i < 2 ? input.find('\0', start) : std::string::npos;
    *parts[i] = input.substr(start, nul == std::string::npos ? std::string::npos : nul - start);
    start = nul == std::string::npos ? input.size() + 1 : nul + 1;
  }
  auto tok = kiln::tokenizer::Tokenizer::fromJson(files);
  if (!tok.ok()) {
    kiln_fuzz::checkMessage(tok.status().message(),
                            {"tokenizer_config.json: ", "special_tokens_map.json: ", "generation_config.json: "});
    return 0;
  }
  const auto &c = tok->config();
  for (uint32_t id : c.eosTokenIds)
    kiln_fuzz::checkDecoding(*tok, {id});
  kiln_fuzz::checkText(*tok, c.chatTemplate, /*mustEncode=*/true);
  if (c.bos)
    kiln_fuzz::checkText(*tok, c.bos->content + "hello", /*mustEncode=*/true);
  return 0;
}
