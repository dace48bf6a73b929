#include "Pipeline.h"

#include "kiln/support/Util.h"

#include <unistd.h>

namespace kiln::tokenizer {

using namespace detail;

// ---------------------------------------------------------------------------------------------------------
// Encode / decode
// ---------------------------------------------------------------------------------------------------------

StatusOr<std::vector<uint32_t>> Tokenizer::Impl::encode(std::string_view text, bool addSpecialTokens,
                                                        const std::optional<Truncation> *batchTruncation) const {
  if (size_t bad = invalidUtf8Offset(text); bad != std::string_view::npos)
    return Status::error("text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  if (text.size() > UINT32_MAX)
    return Status::error("text is larger than 4 GiB");
  Splits splits;
  if (Status s = added.extractAndNormalize(text, normalizer.get(), splits); !s)
    return s;
  if (preTokenizer)
    if (Status s = preTokenizer->preTokenize(splits); !s)
      return s;
  std::vector<uint32_t> ids;
  for (const Split &split : splits) {
    if (split.final) {
      ids.insert(ids.end(), split.ids.begin(), split.ids.end());
      continue;
    }
    if (Status s = model->tokenize(split.text.text, ids); !s)
      return Status::error(oneLine(s.message()));
  }
  if (Status s = truncate(ids, addSpecialTokens, batchTruncation ? *batchTruncation : truncation); !s)
    return s;
  if (postProcessor)
    postProcessor->process(ids, addSpecialTokens);
  if (!batchTruncation)
    pad(ids);
  return ids;
}

Status Tokenizer::Impl::truncate(std::vector<uint32_t> &ids, bool addSpecialTokens,
                                 const std::optional<Truncation> &truncation) const {
  if (!truncation)
    return Status::ok();
  uint64_t maxLength = truncation->maxLength;
  size_t added = postProcessor ? postProcessor->addedTokens() : 0;
  if (addSpecialTokens && added > 0) {
    if (maxLength < added)
      return Status::ok(); // Hugging Face's unsigned subtraction wraps around: no limit
    maxLength -= added;
  }
  if (ids.size() <= maxLength)
    return Status::ok();
  if (truncation->strategy == Truncation::OnlySecond && maxLength > 0)
    return Status::error("truncation: strategy OnlySecond needs a second sequence");
  if (maxLength > 0 && truncation->stride >= maxLength)
    return Status::error("truncation: stride " + std::to_string(truncation->stride) +
                         " must be less than the maximum length " + std::to_string(maxLength));
  if (truncation->left)
    ids.erase(ids.begin(), ids.end() - ptrdiff_t(maxLength));
  else
    ids.resize(size_t(maxLength));
  return Status::ok();
}

void Tokenizer::Impl::pad(std::vector<uint32_t> &ids) const {
  if (!padding)
    return;
  uint64_t target = padding->fixedLength.value_or(ids.size());
  if (padding->multipleOf && *padding->multipleOf > 0 && target % *padding->multipleOf != 0)
    target += *padding->multipleOf - target % *padding->multipleOf;
  if (ids.size() >= target)
    return;
  size_t n = size_t(target - ids.size());
  ids.insert(padding->left ? ids.begin() : ids.end(), n, padding->padId);
}

StatusOr<std::string> Tokenizer::Impl::decode(const std::vector<uint32_t> &ids, bool skipSpecialTokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (uint32_t id : ids) {
    const std::string *t = added.decodeForm(id);
    if (!t)
      t = model->idToToken(id);
    if (!t || (skipSpecialTokens && added.isSpecialToken(*t)))
      continue;
    tokens.push_back(*t);
  }
  if (!decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i)
      out += (i ? " " : "") + tokens[i];
    return out;
  }
  if (Status s = decoder->decodeChain(tokens); !s)
    return s;
  std::string out;
  for (const std::string &t : tokens)
    out += t;
  return out;
}

std::optional<uint32_t> Tokenizer::Impl::tokenToId(std::string_view token) const {
  if (auto id = added.find(token))
    return id;
  return model->tokenToId(token);
}

std::optional<std::string> Tokenizer::Impl::idToToken(uint32_t id) const {
  const std::string *t = added.decodeForm(id);
  if (!t)
    t = model->idToToken(id);
  if (!t)
    return std::nullopt;
  return *t;
}

bool Tokenizer::Impl::endsInOpenByteRun(const std::vector<uint32_t> &ids, bool skipSpecialTokens) const {
  if (!decoder || !decoder->decodesByteRuns())
    return false;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const std::string *t = added.decodeForm(*it);
    if (!t)
      t = model->idToToken(*it);
    if (!t || (skipSpecialTokens && added.isSpecialToken(*t)))
      continue; // decode() drops it: the token before it is the last one the decoder sees
    return byteFallbackValue(*t) >= 0;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

StatusOr<Tokenizer> Tokenizer::fromJson(const TokenizerFiles &files) {
  auto impl = parseTokenizerJson(files.tokenizerJson);
  if (!impl.ok())
    return impl.status();
  if (Status s = applyConfigFiles(files, **impl); !s)
    return s;
  return Tokenizer(std::shared_ptr<const Impl>(std::move(*impl)));
}

StatusOr<Tokenizer> Tokenizer::load(const std::string &dir) {
  constexpr uint64_t kMaxBytes = uint64_t(1) << 30;
  TokenizerFiles files;
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  if (Status s = support::readFile(base + "tokenizer.json", files.tokenizerJson, kMaxBytes); !s)
    return s;
  struct Optional {
    const char *name;
    std::string *out;
  } optional[] = {{"tokenizer_config.json", &files.tokenizerConfigJson},
                  {"special_tokens_map.json", &files.specialTokensMapJson},
                  {"generation_config.json", &files.generationConfigJson}};
  for (const Optional &o : optional) {
    std::string path = base + o.name;
    if (access(path.c_str(), F_OK) != 0)
      continue;
    if (Status s = support::readFile(path, *o.out, kMaxBytes); !s)
      return s;
  }
  auto t = fromJson(files);
  if (!t.ok())
    return Status::error(oneLine(base + t.status().message()));
  return t;
}

StatusOr<std::vector<uint32_t>> Tokenizer::encode(std::string_view text, bool addSpecialTokens) const {
  return impl_->encode(text, addSpecialTokens);
}

StatusOr<std::vector<uint32_t>> Tokenizer::encodeForBatch(std::string_view text, bool addSpecialTokens,
                                                          uint64_t maxLength) const {
  std::optional<Truncation> t;
  if (maxLength > 0) {
    t.emplace();
    t->maxLength = maxLength;
  }
  return impl_->encode(text, addSpecialTokens, &t);
}

StatusOr<std::string> Tokenizer::decode(const std::vector<uint32_t> &ids, bool skipSpecialTokens) const {
  return impl_->decode(ids, skipSpecialTokens);
}

StreamDecoder Tokenizer::streamDecoder(bool skipSpecialTokens) const { return StreamDecoder(impl_, skipSpecialTokens); }

size_t Tokenizer::vocabSize() const {
  size_t n = impl_->model->vocabSize();
  for (const auto &[content, id] : impl_->added.ids())
    if (!impl_->model->tokenToId(content))
      ++n;
  return n;
}

std::optional<uint32_t> Tokenizer::tokenToId(std::string_view token) const { return impl_->tokenToId(token); }

std::optional<std::string> Tokenizer::idToToken(uint32_t id) const { return impl_->idToToken(id); }

bool Tokenizer::isSpecialToken(uint32_t id) const {
  const detail::AddedToken *t = impl_->added.token(id);
  return t != nullptr && t->special;
}

const std::string &Tokenizer::modelType() const { return impl_->modelType; }

const TextConfig &Tokenizer::config() const { return impl_->config; }

// ---------------------------------------------------------------------------------------------------------
// StreamDecoder (Hugging Face DecodeStream, plus finish())
// ---------------------------------------------------------------------------------------------------------

namespace {
const std::string kReplacement = "\xef\xbf\xbd";
bool endsWithReplacement(const std::string &s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, kReplacement) == 0;
}
} // namespace

StreamDecoder::StreamDecoder(std::shared_ptr<const Tokenizer::Impl> impl, bool skipSpecialTokens)
    : impl_(std::move(impl)), skipSpecialTokens_(skipSpecialTokens) {}

StatusOr<std::string> StreamDecoder::step(uint32_t id) {
  if (prefix_.empty() && !ids_.empty()) {
    auto p = impl_->decode(ids_, skipSpecialTokens_);
    if (!p.ok())
      return p.status();
    if (!endsWithReplacement(*p) && !impl_->endsInOpenByteRun(ids_, skipSpecialTokens_)) {
      prefix_ = std::move(*p);
      prefixIndex_ = ids_.size();
    }
  }
  ids_.push_back(id);
  auto text = impl_->decode(ids_, skipSpecialTokens_);
  if (!text.ok())
    return text.status();
  // Emit only once the window decodes past the prefix to a complete character, outside a run of byte tokens
  // (Hugging Face's DecodeStream emits inside one, and a later invalid byte then changes emitted text).
  if (text->size() <= prefix_.size() || endsWithReplacement(*text) || impl_->endsInOpenByteRun(ids_, skipSpecialTokens_))
    return std::string();
  if (text->compare(0, prefix_.size(), prefix_) != 0)
    return Status::error("stream decoding: token " + std::to_string(id) + " changed text already emitted");
  std::string fresh = text->substr(prefix_.size());
  // Drop the old context: the ids decoded since it become the context of the next step. Unless they decode to
  // nothing: a decoder's start-of-text rules (Strip, Metaspace, WordPiece) could then reach past them into
  // the next ids, which they never do in the whole text; keep the longer window instead.
  std::vector<uint32_t> window(ids_.begin() + ptrdiff_t(prefixIndex_), ids_.end());
  auto p = impl_->decode(window, skipSpecialTokens_);
  if (!p.ok())
    return p.status();
  if (p->empty()) {
    prefix_ = std::move(*text);
    prefixIndex_ = ids_.size();
  } else {
    ids_ = std::move(window);
    prefix_ = std::move(*p);
    prefixIndex_ = ids_.size();
  }
  return fresh;
}

StatusOr<std::string> StreamDecoder::finish() {
  std::string rest;
  if (!ids_.empty()) {
    auto text = impl_->decode(ids_, skipSpecialTokens_);
    if (!text.ok())
      return text.status();
    if (text->size() > prefix_.size() && text->compare(0, prefix_.size(), prefix_) == 0)
      rest = text->substr(prefix_.size());
  }
  reset();
  return rest;
}

void StreamDecoder::reset() {
  ids_.clear();
  prefix_.clear();
  prefixIndex_ = 0;
}

} // namespace kiln::tokenizer
