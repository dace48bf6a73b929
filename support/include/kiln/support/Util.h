// Small shared utilities of every stage: quoting names for one-line messages, whole-file I/O.
#pragma once

#include "kiln/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::support {

// 'name' in single quotes, control characters escaped (messages stay one line), long names cut.
std::string quoteName(std::string_view s);
// The message with control characters escaped: a message built from names in a file stays one line.
std::string oneLine(std::string_view message);
// Reads a whole file; an error names the path. Files above maxBytes are refused.
Status readFile(const std::string &path, std::string &out, uint64_t maxBytes);
Status writeFile(const std::string &path, const void *data, size_t size);

// An input of a command: what it is ("the artifact", "--inputs") and its path (a file, or a directory whose
// files are all inputs, as a model directory's).
struct InputPath {
  std::string role;
  std::string path;
};
// Refuses, before anything is computed or written, an output path whose directory does not exist, that is a
// directory, or that is one of `inputs` (or a file in an input directory), compared by device and inode so
// links and other spellings of the same file count. `flag` names the output in the message ("-o").
Status checkOutputPath(const std::string &flag, const std::string &output, const std::vector<InputPath> &inputs);

} // namespace kiln::support
