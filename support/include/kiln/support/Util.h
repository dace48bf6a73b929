// Small shared utilities of every stage: UTF-8 checks, quoting names for one-line messages, whole-file I/O.
#pragma once

#include "kiln/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::support {

bool isValidUtf8(std::string_view s);
// 'name' in single quotes, control characters escaped (messages stay one line), long names cut.
std::string quoteName(std::string_view s);
// Reads a whole file; an error names the path. Files above maxBytes are refused.
Status readFile(const std::string &path, std::string &out, uint64_t maxBytes);
Status writeFile(const std::string &path, const void *data, size_t size);

} // namespace kiln::support
