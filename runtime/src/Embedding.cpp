//===- Embedding.cpp - sentence embeddings: batch, pad, run, pool, normalize as sentence-transformers ===//
#include "Session.h"
#include "Text.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::runtime::core {
namespace {

Error invalid(std::string message) { return Error(KILN_INVALID_ARGUMENT, std::move(message)); }

struct ResolvedEmbed {
  PoolingMode mode = PoolingMode::Mean;
  bool normalize = false;
  std::string prefix;
  int64_t maxTokens = 0; // per text, special tokens included: longer texts are truncated to it
};

Error resolve(const Session &session, const TextModel &text, const EmbedRequest &request, ResolvedEmbed &out) {
  const kiln::artifact::Pooling *p = text.pooling();
  if (request.mode == PoolingMode::Default && !p)
    return invalid(text.path() + ": the model has no sentence-transformers pooling config; choose a pooling mode");
  out.mode = request.mode != PoolingMode::Default ? request.mode : PoolingMode(int(p->mode()));
  out.normalize = request.normalize >= 0 ? request.normalize != 0 : (p && p->normalize());
  if (request.prefix)
    out.prefix = *request.prefix;
  else if (p && !p->default_prompt_name().empty())
    out.prefix = p->prompts().at(p->default_prompt_name());
  if (p && !p->include_prompt() && !out.prefix.empty())
    return invalid(text.path() + ": the pooling excludes the prompt (include_prompt false), which kiln does not "
                                 "support with a prefix");
  out.maxTokens = session.maxContext();
  if (p && p->max_seq_length() > 0)
    out.maxTokens = std::min(out.maxTokens, p->max_seq_length());
  return {};
}

/// sentence-transformers' Pooling.forward on one row of last_hidden_state ([seq, hidden]) with `len` real
/// tokens (right padding), then Normalize (torch.nn.functional.normalize: x / max(||x||, 1e-12)).
void poolRow(const float *h, int64_t len, int64_t hidden, const ResolvedEmbed &r, float *out) {
  std::vector<double> acc(size_t(hidden), r.mode == PoolingMode::Max ? -std::numeric_limits<double>::infinity() : 0.0);
  if (r.mode == PoolingMode::Cls || r.mode == PoolingMode::Last) {
    const float *row = h + (r.mode == PoolingMode::Cls ? 0 : len - 1) * hidden;
    std::copy(row, row + hidden, acc.begin());
  } else {
    for (int64_t t = 0; t < len; ++t)
      for (int64_t d = 0; d < hidden; ++d) {
        double v = h[t * hidden + d];
        acc[size_t(d)] = r.mode == PoolingMode::Max ? std::max(acc[size_t(d)], v) : acc[size_t(d)] + v;
      }
    const double div = r.mode == PoolingMode::Mean ? double(len) : r.mode == PoolingMode::MeanSqrtLen ? std::sqrt(double(len)) : 1.0;
    for (double &v : acc)
      v /= div;
  }
  double norm = 0.0;
  for (double v : acc)
    norm += v * v;
  const double scale = r.normalize ? 1.0 / std::max(std::sqrt(norm), 1e-12) : 1.0;
  for (int64_t d = 0; d < hidden; ++d)
    out[d] = float(acc[size_t(d)] * scale);
}

/// Runs rows [begin, end) of `ids` (padded into one [batch, seq] chunk; rows past `end` repeat the first) and
/// pools each into out + row * hidden.
Error runGroup(Session &session, const std::vector<std::vector<int64_t>> &ids, size_t begin, size_t end,
               int64_t padId, const ResolvedEmbed &r, int64_t hidden, float *out) {
  const int64_t batch = session.batch();
  int64_t seq = 0;
  for (size_t i = begin; i < end; ++i)
    seq = std::max(seq, int64_t(ids[i].size()));
  std::vector<int64_t> chunk(size_t(batch * seq), padId), mask(size_t(batch * seq), 0);
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<int64_t> &row = ids[begin + size_t(b) < end ? begin + size_t(b) : begin];
    std::copy(row.begin(), row.end(), chunk.begin() + b * seq);
    std::fill(mask.begin() + b * seq, mask.begin() + b * seq + int64_t(row.size()), 1);
  }
  session.reset();
  if (Error e = session.run(chunk.data(), mask.data(), batch, seq))
    return e;
  const float *h = nullptr;
  const std::vector<int64_t> *shape = nullptr;
  if (Error e = session.output("last_hidden_state", &h, &shape))
    return e;
  if (shape->size() != 3 || (*shape)[2] != hidden)
    return Error(KILN_INTERNAL, "last_hidden_state has an unexpected shape");
  for (size_t i = begin; i < end; ++i)
    poolRow(h + int64_t(i - begin) * seq * hidden, int64_t(ids[i].size()), hidden, r, out + int64_t(i) * hidden);
  return {};
}

} // namespace

Error embed(Session &session, const TextModel &text, const std::vector<std::string> &texts,
            const EmbedRequest &request, float *out, size_t outFloats) {
  if (session.model().plan().task != "encoder")
    return invalid(text.path() + ": embeddings need an encoder; this model is a " + session.model().plan().task);
  const kiln::tokenizer::Tokenizer *tok = nullptr;
  if (Error e = text.tokenizer(&tok))
    return e;
  ResolvedEmbed r;
  if (Error e = resolve(session, text, request, r))
    return e;
  const int64_t hidden = session.model().plan().hiddenSize;
  if (outFloats / size_t(hidden) < texts.size())
    return invalid("the output holds " + std::to_string(outFloats) + " floats, " + std::to_string(texts.size()) +
                   " embeddings need " + std::to_string(texts.size() * size_t(hidden)));
  std::vector<std::vector<int64_t>> ids(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    if (Error e = text.encode(r.prefix + texts[i], request.addSpecialTokens, ids[i], uint64_t(r.maxTokens)))
      return Error(e.code(), "text " + std::to_string(i) + ": " + e.message());
    if (ids[i].empty())
      return invalid("text " + std::to_string(i) + " has no tokens");
    if (int64_t(ids[i].size()) > r.maxTokens) // truncation cannot go below the special tokens
      return invalid("text " + std::to_string(i) + " has " + std::to_string(ids[i].size()) +
                     " tokens, more than the " + std::to_string(r.maxTokens) + " the model takes");
  }
  const tokenizer::TextConfig &config = tok->config();
  const int64_t padId = config.pad && config.pad->id ? int64_t(*config.pad->id) : 0;
  const size_t batch = size_t(session.batch());
  for (size_t begin = 0; begin < texts.size(); begin += batch)
    if (Error e = runGroup(session, ids, begin, std::min(texts.size(), begin + batch), padId, r, hidden, out))
      return e;
  return {};
}

} // namespace kiln::runtime::core
