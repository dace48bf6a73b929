// libFuzzer target: tokenizer.json text. It loads or fails with a one-line message; a tokenizer that loads
// encodes a few texts and decodes ids without crashing.
#include "TokenizerFuzzCommon.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::tokenizer::TokenizerFiles files;
  files.tokenizerJson.assign(reinterpret_cast<const char *>(data), size);
  auto tok = kiln::tokenizer::Tokenizer::fromJson(files);
  if (!tok.ok()) {
    kiln_fuzz::checkMessage(tok.status().message(), {"tokenizer.json: "});
    return 0;
  }
  for (const char *text : {"", "Hello world!", " a  b\n\tc", "<s>x</s> 12 caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"})
    kiln_fuzz::checkText(*tok, text, /*mustEncode=*/false);
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < 64; ++id)
    ids.push_back(id * 7 % 300);
  kiln_fuzz::checkDecoding(*tok, ids);
  return 0;
}
