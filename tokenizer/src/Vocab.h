// A token <-> id table shared by the BPE, WordPiece and WordLevel models.
#pragma once

#include "Components.h"
#include "Json.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kiln::tokenizer::detail {

struct Vocab {
  std::unordered_map<std::string, uint32_t> ids;
  std::unordered_map<uint32_t, std::string> tokens;

  // A {"token": id, ...} object.
  Status parse(const JsonNode &node);
  std::optional<uint32_t> find(std::string_view token) const {
    auto it = ids.find(std::string(token));
    if (it == ids.end())
      return std::nullopt;
    return it->second;
  }
  const std::string *token(uint32_t id) const {
    auto it = tokens.find(id);
    return it == tokens.end() ? nullptr : &it->second;
  }
};

// A model whose tokens live in a Vocab (BPE, WordPiece, WordLevel).
class VocabModel : public Model {
public:
  Vocab vocab;
  std::optional<uint32_t> tokenToId(std::string_view token) const override { return vocab.find(token); }
  const std::string *idToToken(uint32_t id) const override { return vocab.token(id); }
  size_t vocabSize() const override { return vocab.ids.size(); }
};

} // namespace kiln::tokenizer::detail
