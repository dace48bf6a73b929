//===- Cli.h - argument parsing and exits shared by kiln's subcommands ----*- C++ -*-===//
#ifndef KILN_TOOLS_CLI_H
#define KILN_TOOLS_CLI_H

#include "Commands.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::cli {

// The exit-code contract: 0 success, 1 bad input or failed check, 2 usage.
constexpr int kExitOk = 0, kExitBadInput = 1, kExitUsage = 2;

/// `kiln SUBCOMMAND POSITIONAL... --flag value --flag=value --switch`. The options are the command's table
/// (Commands.h), so an unknown one is a usage error rather than silently ignored, and each is in --help.
class Args {
public:
  Args(int argc, char **argv, int first, const Command &command);
  bool ok() const { return error_.empty(); }
  /// -h / --help was given (printHelpOr answers it).
  bool helpRequested() const { return help_; }
  const std::string &error() const { return error_; }
  const std::vector<std::string> &positional() const { return positional_; }
  std::optional<std::string> get(const std::string &name) const;
  bool has(const std::string &name) const { return values_.count(name) != 0; }
  /// Every value of a flag given more than once, in order (get() gives the last).
  std::vector<std::string> getAll(const std::string &name) const;

private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_;
  std::string error_;
  bool help_ = false;
};

/// Parses the command line with `command`'s table. Returns an exit code when the command is done: --help
/// printed (0) or a usage error printed (2); nullopt to go on with `args`.
std::optional<int> parseArgs(int argc, char **argv, const char *commandName, std::optional<Args> &args);

/// Prints "kiln: MESSAGE" on stderr and returns `code`.
int fail(int code, const std::string &message);

/// Parses "2,5,1"; nullopt on malformed text or a non-positive entry.
std::optional<std::vector<int64_t>> parseIntList(const std::string &text);

/// The most worker threads any command takes (run, generate, bench and compile's --threads alike).
constexpr uint64_t kMaxThreads = 1024;
/// The largest token count, batch or context a flag takes (--chunks, --max-context, --max-batch, bench's -p /
/// -n / --batch): an int32, as sessions count tokens.
constexpr uint64_t kMaxTokens = 2147483647;

/// The integer value `text` of flag `name`, in [min, max]. On failure nullopt and a one-line `error`:
/// "NAME must be an integer >= MIN, got 'TEXT'", or "NAME TEXT is too large (at most MAX)" for a number
/// beyond max (or beyond 64 bits).
std::optional<uint64_t> parseIntFlag(const std::string &name, const std::string &text, uint64_t min, uint64_t max,
                                     std::string *error);
/// "2,5,1" for flag `name`: each entry as parseIntFlag (max at most INT64_MAX).
std::optional<std::vector<int64_t>> parseIntListFlag(const std::string &name, const std::string &text, uint64_t min,
                                                     uint64_t max, std::string *error);

} // namespace kiln::cli

#endif // KILN_TOOLS_CLI_H
