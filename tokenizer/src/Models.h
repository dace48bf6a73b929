// The models' parsers (one per model type); parseModel() in Models.cpp dispatches on "type".
#pragma once

#include "Components.h"
#include "Vocab.h"

namespace kiln::tokenizer::detail {

StatusOr<std::unique_ptr<Model>> parseBpe(const JsonNode &node);
StatusOr<std::unique_ptr<Model>> parseUnigram(const JsonNode &node);

} // namespace kiln::tokenizer::detail
