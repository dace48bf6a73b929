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

} // namespace kiln::cli

#endif // KILN_TOOLS_CLI_H
