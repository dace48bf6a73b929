// A trie over byte strings: which keys a string starts with. Vocabularies of Unigram models and added tokens.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::tokenizer::detail {

class ByteTrie {
public:
  // Maps `key` to `value` (an empty key is never found: Hugging Face's tries never report the empty prefix).
  void insert(std::string_view key, uint32_t value) {
    uint32_t node = 0;
    for (unsigned char b : key) {
      uint64_t edge = (uint64_t(node) << 8) | b;
      auto it = children_.find(edge);
      if (it == children_.end()) {
        it = children_.emplace(edge, uint32_t(values_.size())).first;
        values_.push_back(-1);
      }
      node = it->second;
    }
    if (!key.empty())
      values_[node] = int64_t(value);
  }
  bool empty() const { return children_.empty(); }
  // Calls f(length, value) for each key that `s` starts with, shortest first.
  template <class F> void prefixes(std::string_view s, F f) const {
    uint32_t node = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      auto it = children_.find((uint64_t(node) << 8) | static_cast<unsigned char>(s[i]));
      if (it == children_.end())
        return;
      node = it->second;
      if (values_[node] >= 0)
        f(i + 1, uint32_t(values_[node]));
    }
  }

private:
  std::unordered_map<uint64_t, uint32_t> children_; // (node << 8 | byte) -> node
  std::vector<int64_t> values_{-1};                 // per node: the value of the key ending there, or -1
};

} // namespace kiln::tokenizer::detail
