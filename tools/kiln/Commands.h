//===- Commands.h - one table per kiln command: its flags, help and environment ----*- C++ -*-===//
//
// The parser (cli::Args) and `kiln COMMAND --help` read the same table, so a flag cannot be accepted
// without being documented (tests/e2e/help.py checks the README against --help).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_COMMANDS_H
#define KILN_TOOLS_COMMANDS_H

#include <cstdio>
#include <string>
#include <vector>

namespace kiln::cli {

struct Flag {
  const char *name;
  const char *value; // the value's placeholder ("N", "FILE"); nullptr for a switch
  const char *help;
};

struct EnvVar {
  const char *name;
  const char *help;
};

struct Command {
  const char *name;
  std::vector<const char *> synopses; // each "kiln NAME ..." form, without the leading "kiln "
  const char *summary;                 // one line, for `kiln --help`
  const char *details;                 // paragraphs for `kiln NAME --help` ("" if none)
  std::vector<Flag> flags;
  std::vector<EnvVar> env;
  bool needsCompiler; // absent from a runtime-only build
};

/// Every command of this build, in `kiln --help` order.
std::vector<const Command *> commands();
/// The command named `name`; nullptr if this build has none.
const Command *findCommand(const std::string &name);

/// `kiln NAME --help`: synopses, details, every flag and environment variable.
void printCommandHelp(const Command &command, FILE *out);
/// "usage: kiln SYNOPSIS (run kiln NAME --help)" for a usage error's one line.
std::string usageLine(const Command &command);
/// `kiln --version`: the compiler version, its git revision and the artifact format version.
void printVersion(FILE *out);

} // namespace kiln::cli

#endif // KILN_TOOLS_COMMANDS_H
