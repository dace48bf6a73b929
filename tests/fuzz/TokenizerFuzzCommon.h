// Shared checks of the tokenizer fuzzers: failures are one-line messages naming their file; a loaded tokenizer
// encodes, decodes and streams without crashing, and streaming concatenates to decode().
#pragma once

#include "kiln/tokenizer/Tokenizer.h"

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace kiln_fuzz {

inline void checkMessage(const std::string &m, std::initializer_list<std::string_view> prefixes) {
  if (m.empty() || m.find('\n') != std::string::npos)
    std::abort();
  for (std::string_view p : prefixes)
    if (m.rfind(p, 0) == 0)
      return;
  std::abort();
}

// decode(ids) == the concatenated stream, with and without special tokens.
inline void checkDecoding(const kiln::tokenizer::Tokenizer &tok, const std::vector<uint32_t> &ids) {
  for (bool skip : {false, true}) {
    auto text = tok.decode(ids, skip);
    if (!text.ok()) {
      checkMessage(text.status().message(), {"regex"});
      continue;
    }
    auto stream = tok.streamDecoder(skip);
    std::string all;
    bool failed = false;
    for (uint32_t id : ids) {
      auto piece = stream.step(id);
      if (!piece.ok()) {
        failed = true;
        break;
      }
      all += *piece;
    }
    auto rest = stream.finish();
    if (failed || !rest.ok() || all + *rest != *text)
      std::abort();
  }
}

// Encodes `text` both ways and checks the decoding of the ids.
inline void checkText(const kiln::tokenizer::Tokenizer &tok, std::string_view text, bool mustEncode) {
  for (bool special : {true, false}) {
    auto ids = tok.encode(text, special);
    if (!ids.ok()) {
      if (mustEncode)
        std::abort();
      checkMessage(ids.status().message(), {"text is not valid UTF-8", "BPE:", "WordPiece:", "WordLevel:",
                                            "Unigram:", "regex", "truncation:"});
      continue;
    }
    checkDecoding(tok, *ids);
  }
}

} // namespace kiln_fuzz
