//===- Cli.cpp ------------------------------------------------------------===//
#include "Cli.h"

#include <algorithm>

namespace kiln::cli {

Args::Args(int argc, char **argv, int first, std::vector<std::string> valued, std::vector<std::string> switches) {
  auto contains = [](const std::vector<std::string> &v, const std::string &s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool inlineValue = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inlineValue = true;
    }
    if (contains(switches, name) && !inlineValue) {
      values_[name] = "";
    } else if (contains(valued, name)) {
      if (!inlineValue) {
        if (i + 1 >= argc) {
          error_ = "option " + name + " needs a value";
          return;
        }
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      error_ = "unknown option " + a;
      return;
    }
  }
}

std::optional<std::string> Args::get(const std::string &name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return std::nullopt;
  return it->second;
}

int fail(int code, const std::string &message) {
  std::fprintf(stderr, "kiln: %s\n", message.c_str());
  return code;
}

std::optional<std::vector<int64_t>> parseIntList(const std::string &text) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.empty() || item.size() > 12 || item.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    int64_t v = std::stoll(item);
    if (v <= 0)
      return std::nullopt;
    out.push_back(v);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

} // namespace kiln::cli
