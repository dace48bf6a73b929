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
  regex_t *reg = nullptr;
  OnigErrorInfo info;
  const auto *p = reinterpret_cast<const OnigUChar *>(re->pattern_.data());
  int r = onig_new(&reg, p, p + re->pattern_.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT,
                   &info);
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
