//===- Inputs.h - the input file of `kiln run` and `kiln eval` --------*- C++ -*-===//
//
// One contract for both (the oracle must refuse what the artifact refuses): a safetensors file with
//   input_ids       I64 (or I32) [batch, seq], every id in [0, vocab_size);
//   attention_mask  optional, I64 (or I32), the shape of input_ids, values 0 or 1; a causal LM takes no
//                   padding, so its mask must be all ones (encoders use it);
// any other tensor is ignored (a reference file holding the expected outputs serves as the input file).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_INPUTS_H
#define KILN_TOOLS_INPUTS_H

#include "kiln/frontend/SafeTensors.h"
#include "kiln/support/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::cli {

struct IdInputs {
  std::vector<int64_t> ids, mask; // row-major [batch, seq]; mask empty when the file has none
  int64_t batch = 0, seq = 0;
};

/// The inputs of `path` checked against the model: `causal` (a causal LM) and its `vocabSize`, named
/// `model` in messages. Errors are one line naming the file and the tensor (and the first bad element).
StatusOr<IdInputs> readIdInputs(const SafeTensorsFile &file, const std::string &path, bool causal,
                                int64_t vocabSize, const std::string &model);

} // namespace kiln::cli

#endif // KILN_TOOLS_INPUTS_H
