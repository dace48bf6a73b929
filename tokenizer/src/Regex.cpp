#include "Regex.h"

#include "Unicode.h"

#include <oniguruma.h>

#include <mutex>

namespace kiln::tokenizer::detail {

namespace {
// Backtracking budget of one search. Tokenizer patterns need a few steps per byte; a pathological pattern
// fails with a message instead of running for hours.
constexpr unsigned long kRetryLimitInSearch = 50'000'000;

void initializeOniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

// Debian's Oniguruma has Unicode 14.0 tables, Hugging Face's 16.0: each general-category class (\p{L},
// \P{N}, \d, \w...) gets the characters Unicode 16.0 added to it. A negated class inside a bracket
// expression ([\P{L}]) is left as it is; so is the one character that changed category (U+1171E, Mn -> Mc).
std::string withUnicode16(std::string_view p) {
  std::string out;
  int depth = 0; // bracket expressions can nest in Oniguruma
  for (size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c != '\\' || i + 1 >= p.size()) {
      depth += c == '[' ? 1 : (c == ']' && depth > 0) ? -1 : 0;
      out += c;
      ++i;
      continue;
    }
    char e = p[i + 1];
    std::string_view name, original = p.substr(i, 2);
    bool negated = e == 'P' || e == 'D' || e == 'W';
    size_t next = i + 2;
    if ((e == 'p' || e == 'P') && i + 2 < p.size() && p[i + 2] == '{' && p.find('}', i + 3) != std::string_view::npos) {
      size_t close = p.find('}', i + 3);
      name = p.substr(i + 3, close - i - 3);
      original = p.substr(i, close + 1 - i);
      next = close + 1;
      if (!name.empty() && name[0] == '^') {
        negated = !negated;
        name.remove_prefix(1);
      }
    } else if (e == 'd' || e == 'D' || e == 'w' || e == 'W') {
      name = e == 'd' || e == 'D' ? "\\d" : "\\w";
    }
    std::string extra = name.empty() ? std::string() : regexClassAdditions(name);
    if (extra.empty() || (negated && depth > 0)) {
      out += original;
    } else if (depth > 0) {
      out += std::string(original) + extra;
    } else {
      // The class itself stays outside brackets (Oniguruma's \w differs inside and outside them).
      out += negated ? "(?:(?![" + extra + "])" + std::string(original) + ")"
                     : "(?:" + std::string(original) + "|[" + extra + "])";
    }
    i = next;
  }
  return out;
}

std::string errorText(int code, OnigErrorInfo *info) {
  OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN];
  int n = info ? onig_error_code_to_str(buf, code, info) : onig_error_code_to_str(buf, code);
  return std::string(reinterpret_cast<const char *>(buf), n > 0 ? size_t(n) : 0);
}

struct MatchParam {
  OnigMatchParam *param = onig_new_match_param();
  MatchParam() {
    onig_initialize_match_param(param);
    onig_set_retry_limit_in_search_of_match_param(param, kRetryLimitInSearch);
  }
  ~MatchParam() { onig_free_match_param(param); }
};

struct Region {
  OnigRegion *region = onig_region_new();
  ~Region() { onig_region_free(region, 1); }
};
} // namespace

StatusOr<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern) {
  initializeOniguruma();
  std::shared_ptr<Regex> re(new Regex());
  re->pattern_ = std::string(pattern);
  if (!isValidUtf8(pattern))
    return Status::error("regex is not valid UTF-8");
  std::string compiled = withUnicode16(pattern);
  regex_t *reg = nullptr;
  OnigErrorInfo info;
  const auto *p = reinterpret_cast<const OnigUChar *>(compiled.data());
  int r = onig_new(&reg, p, p + compiled.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
  if (r != ONIG_NORMAL)
    return Status::error("bad regex '" + re->pattern_ + "': " + errorText(r, &info));
  re->regex_ = reg;
  return std::shared_ptr<const Regex>(std::move(re));
}

StatusOr<std::shared_ptr<const Regex>> Regex::literal(std::string_view text) {
  std::string escaped;
  // The characters Rust's regex::escape escapes; each escaped one is a literal in Oniguruma too.
  static constexpr std::string_view kMeta = "\\.+*?()|[]{}^$#&-~";
  for (char c : text) {
    if (kMeta.find(c) != std::string_view::npos)
      escaped += '\\';
    escaped += c;
  }
  return compile(escaped);
}

Regex::~Regex() {
  if (regex_)
    onig_free(static_cast<regex_t *>(regex_));
}

StatusOr<std::vector<std::pair<size_t, size_t>>> Regex::findAll(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  auto *reg = static_cast<regex_t *>(regex_);
  const auto *str = reinterpret_cast<const OnigUChar *>(s.data());
  const OnigUChar *end = str + s.size();
  MatchParam param;
  Region region;
  size_t lastEnd = 0;
  bool skipNextEmpty = false;
  while (lastEnd <= s.size()) {
    onig_region_clear(region.region);
    int r = onig_search_with_param(reg, str, end, str + lastEnd, end, region.region, ONIG_OPTION_NONE, param.param);
    if (r == ONIG_MISMATCH)
      break;
    if (r < 0)
      return Status::error("regex '" + pattern_ + "': " + errorText(r, nullptr));
    size_t b = size_t(region.region->beg[0]), e = size_t(region.region->end[0]);
    lastEnd = e;
    if (b == e) {
      // An empty match: step over one character; one right after a match is not reported (the `onig`
      // crate's find_iter).
      lastEnd += lastEnd < s.size() ? utf8Length(static_cast<unsigned char>(s[lastEnd])) : 1;
      if (skipNextEmpty) {
        skipNextEmpty = false;
        continue;
      }
    } else {
      skipNextEmpty = true;
    }
    out.push_back({b, e});
  }
  return out;
}

StatusOr<Matches> Regex::findMatches(std::string_view s) const {
  Matches out;
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return out;
  }
  auto found = findAll(s);
  if (!found.ok())
    return found.status();
  size_t prev = 0;
  for (auto [b, e] : *found) {
    if (prev != b)
      out.push_back({{prev, b}, false});
    out.push_back({{b, e}, true});
    prev = e;
  }
  if (prev != s.size())
    out.push_back({{prev, s.size()}, false});
  return out;
}

} // namespace kiln::tokenizer::detail
