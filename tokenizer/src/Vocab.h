// A token <-> id table shared by the BPE, WordPiece and WordLevel models.
#pragma once

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

} // namespace kiln::tokenizer::detail
