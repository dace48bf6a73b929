//===- Main.cpp - the kiln command ----------------------------------------===//
#include "Cli.h"
#include "Commands.h"
#include "Subcommands.h"

#ifdef KILN_WITH_COMPILER
#include "kiln/models/Models.h"
#endif

#include <string>

namespace {
// `kiln --help`: each command's synopses and summary from its table (Commands.cpp).
void printUsage(FILE *out) {
  std::fprintf(out, "kiln: ahead-of-time compiler for Hugging Face transformer models%s\n\nusage: kiln COMMAND ...\n\n",
#ifdef KILN_WITH_COMPILER
               ""
#else
               " (runtime-only build)"
#endif
  );
  for (const kiln::cli::Command *c : kiln::cli::commands()) {
    for (const char *synopsis : c->synopses)
      std::fprintf(out, "  kiln %s\n", synopsis);
    std::fprintf(out, "      %s\n", c->summary);
  }
  std::fprintf(out, "\n  kiln COMMAND --help   every flag and environment variable of COMMAND\n"
                    "  kiln --version        compiler version, git revision, artifact format version\n");
#ifdef KILN_WITH_COMPILER
  std::string archs;
  for (const std::string &a : kiln::models::supportedArchitectures())
    archs += (archs.empty() ? "" : ", ") + a;
  std::fprintf(out, "\nsupported architectures: %s\n", archs.c_str());
#endif
  std::fprintf(out, "exit codes: 0 success, 1 bad input or failed check, 2 usage\n");
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    printUsage(stderr);
    return kiln::cli::kExitUsage;
  }
  std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    printUsage(stdout);
    return kiln::cli::kExitOk;
  }
  if (command == "--version" || command == "version") {
    kiln::cli::printVersion(stdout);
    return kiln::cli::kExitOk;
  }
#ifdef KILN_WITH_COMPILER
  if (command == "compile")
    return kiln::cli::runCompile(argc, argv);
  if (command == "eval")
    return kiln::cli::runEval(argc, argv);
  if (command == "synth")
    return kiln::cli::runSynth(argc, argv);
#endif
  if (command == "inspect")
    return kiln::cli::runInspect(argc, argv);
  if (command == "run")
    return kiln::cli::runRun(argc, argv);
  if (command == "generate")
    return kiln::cli::runGenerate(argc, argv);
  if (command == "embed")
    return kiln::cli::runEmbed(argc, argv);
  if (command == "bench")
    return kiln::cli::runBench(argc, argv);
  if (command == "devices")
    return kiln::cli::runDevices(argc, argv);
  if (command == "tokenize")
    return kiln::cli::runTokenize(argc, argv);
  if (command == "detokenize")
    return kiln::cli::runDetokenize(argc, argv);
  if (command == "chat-template")
    return kiln::cli::runChatTemplate(argc, argv);
  std::fprintf(stderr, "kiln: unknown command '%s' (run kiln --help)\n", command.c_str());
  return kiln::cli::kExitUsage;
}
