//===- Cli.h - argument parsing and exits shared by kiln's subcommands ----*- C++ -*-===//
#ifndef KILN_TOOLS_CLI_H
#define KILN_TOOLS_CLI_H

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::cli {

// The exit-code contract: 0 success, 1 bad input or failed check, 2 usage.
constexpr int kExitOk = 0, kExitBadInput = 1, kExitUsage = 2;

/// `kiln SUBCOMMAND POSITIONAL... --flag value --flag=value --switch`. Options are declared up front so an
/// unknown one is a usage error rather than silently ignored.
class Args {
public:
  /// `valued`: options that take a value; `switches`: options that do not.
  Args(int argc, char **argv, int first, std::vector<std::string> valued, std::vector<std::string> switches);
  bool ok() const { return error_.empty(); }
  const std::string &error() const { return error_; }
  const std::vector<std::string> &positional() const { return positional_; }
  std::optional<std::string> get(const std::string &name) const;
  bool has(const std::string &name) const { return values_.count(name) != 0; }

private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> values_;
  std::string error_;
};

/// Prints "kiln: MESSAGE" on stderr and returns `code`.
int fail(int code, const std::string &message);

/// Parses "2,5,1"; nullopt on malformed text or a non-positive entry.
std::optional<std::vector<int64_t>> parseIntList(const std::string &text);

} // namespace kiln::cli

#endif // KILN_TOOLS_CLI_H
