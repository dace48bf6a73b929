// Hand-made artifacts for the runtime tests: tiny kernels in C, compiled at test time with the C compiler
// the build uses (KILN_C_COMPILER), a manifest filled by hand, written with the artifact writer.
//
// The toy causal LM (vocab V = 16, hidden H = 4, one KV-cache entry "key.0" [b, 1, p, H]):
//   x       = embed[ids]                               (toy_gather:  embed, ids -> x [b, s, H])
//   present = concat(past, x) along the sequence       (toy_concat:  past, x -> present [b, 1, p + s, H])
//   h[t]    = present[p + t] + mean(present[0 .. p + t]) (causal prefix mean)
//   logits  = h . embed^T                              (toy_logits:  present, embed -> logits [b, s, V])
// The toy encoder (same embed): last_hidden_state[t] = mask[t] * (embed[ids[t]] + masked mean over the row).
#pragma once

#include "kiln/artifact/ArtifactWriter.h"
#include "kiln_artifact.pb.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime::test {

constexpr int64_t kVocab = 16, kHidden = 4, kMaxContext = 32, kMaxBatch = 4;

/// The embedding table of the toys (deterministic).
std::vector<float> toyEmbedding();

/// The C every toy kernel source starts with: kernel_abi.h's range type and TOY_RANGE(name), which defines
/// name_range running the kernel whole (extent 1).
extern const char *const kToyKernelPrelude;

// Pieces of hand-made manifests.
kiln::artifact::Dim dimConst(int64_t c);
/// coeff * sym, plus sym2 if given.
kiln::artifact::Dim dimSym(const char *sym, int64_t coeff = 1, const char *sym2 = nullptr);
void addPort(google::protobuf::RepeatedPtrField<kiln::artifact::Port> *ports, const std::string &name, int buffer);

/// B rows of S token ids below kVocab; `salt` gives another prompt.
std::vector<int64_t> toyPrompt(int64_t B, int64_t S, int64_t salt = 0);
/// Positions [pos, pos + c) of each row of `ids` [B, S]: the [B, c] chunk a session runs next.
std::vector<int64_t> promptChunk(const std::vector<int64_t> &ids, int64_t B, int64_t S, int64_t pos, int64_t c);

struct ToyOptions {
  bool encoder = false;
  std::string missingKernel;   // if set, the manifest names this kernel symbol (absent from the .so)
  bool garbageCode = false;    // the code section is not an ELF
  bool idsI32 = false;         // the artifact's input_ids buffer is I32
  int logitsScale = 1;         // compiled into toy_logits (-DTOY_SCALE): another code section, same symbols
  bool blasProbe = false;      // toy_logits is flagged as calling OpenBLAS and writes its thread count to logits[0]
};

/// The toy's manifest (what writeToyArtifact writes, without the code and weights).
kiln::artifact::Manifest toyManifest(const ToyOptions &options = {});

/// Writes the toy artifact to `path`; returns "" or an error message.
std::string writeToyArtifact(const std::string &path, const ToyOptions &options = {});

/// The toy causal LM's logits for `ids` [B, S] from an empty cache, computed here in C++.
std::vector<float> toyCausalReference(const std::vector<int64_t> &ids, int64_t B, int64_t S);
/// The toy encoder's output for `ids` / `mask` [B, S].
std::vector<float> toyEncoderReference(const std::vector<int64_t> &ids, const std::vector<int64_t> &mask,
                                       int64_t B, int64_t S);

/// A fresh directory under the test temp dir.
std::string makeTempDir(const std::string &tag);

/// Runs `command` through the shell, its stdout into `output`; the exit code, or -1 when it did not exit.
int runCommand(const std::string &command, std::string &output);

} // namespace kiln::runtime::test
