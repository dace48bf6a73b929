//===- WeightsFormat.h - kiln compile / eval --weights and --keep-f16 ----*- C++ -*-===//
#ifndef KILN_COMPILER_WEIGHTSFORMAT_H
#define KILN_COMPILER_WEIGHTSFORMAT_H

#include "kiln/frontend/SafeTensors.h"
#include "kiln/support/Quantize.h"

#include <optional>
#include <string>
#include <vector>

namespace kiln::compiler {

/// --weights FMT (kiln compile / eval) and --keep-f16.
struct WeightsFormat {
  std::optional<DType> floats;      ///< f32|f16|bf16: every float weight stored so
  std::optional<QuantFormat> quant; ///< q8_0|q4_0: the matmul / embedding matrices quantized, the rest f32
  /// --keep-f16 NAMES (with quant only): these matrices stay f16. A name is a tensor's or an alias:
  /// `embed` (every gathered table) or `lm_head` (a transposed matmul weight with vocabulary-size rows).
  std::vector<std::string> keepF16;
  bool any() const { return floats || quant; }
  std::string name() const; ///< "f16", "q8_0", ... ("" when neither)
};

/// --weights FMT: f32, f16, bf16, q8_0 or q4_0; otherwise nullopt and `error` says what is accepted.
std::optional<WeightsFormat> parseWeightsFormat(const std::string &text, std::string *error);

/// --weights and --keep-f16 as kiln compile / eval take them (either may be absent): nullopt and `error` on
/// a bad format, --keep-f16 without q8_0 / q4_0, or an empty name in its comma-separated list.
std::optional<WeightsFormat> parseWeightsFlags(const std::optional<std::string> &weights,
                                               const std::optional<std::string> &keepF16, std::string *error);

} // namespace kiln::compiler

#endif // KILN_COMPILER_WEIGHTSFORMAT_H
