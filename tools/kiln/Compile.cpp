//===- Compile.cpp - `kiln compile`: flags -> CompileOptions -> compile() -> exit code ===//
//
// kiln compile MODEL_DIR -o MODEL.kiln [--target cpu|vulkan] [--device-profile NAME|FILE] [--cpu NAME]
//              [--max-context N] [--max-batch N] [--threads N] [--dump-dir DIR] [--dump-ir-after-all]
//              [--no-fuse] [--no-kv-in-place] [--report] [--strict] [--synthetic-weights SEED]
// kiln compile MODEL_DIR --emit=ir [--fuse]
// The pipeline is the compiler library (compiler/include/kiln/compiler/Compile.h); this driver only parses
// the flags (usage errors: exit 2), prints the report lines as "kiln compile: ..." on stderr, and maps an
// error to exit 1.
//
//===----------------------------------------------------------------------===//
#include "Cli.h"
#include "Subcommands.h"

#include "kiln/compiler/Compile.h"
#include "kiln/compiler/ModelLoader.h"

#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstdlib>

namespace kiln::cli {
namespace {


std::optional<int64_t> positiveInt(const Args &args, const std::string &name, std::string *error) {
  std::optional<std::string> text = args.get(name);
  if (!text)
    return std::nullopt;
  std::optional<std::vector<int64_t>> v = parseIntList(*text);
  if (!v || v->size() != 1) {
    *error = name + " wants a positive integer, got '" + *text + "'";
    return std::nullopt;
  }
  return (*v)[0];
}

/// --synthetic-weights SEED: a non-negative integer.
std::optional<uint64_t> seedArg(const std::string &text, std::string *error) {
  char *end = nullptr;
  errno = 0;
  unsigned long long seed = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-') {
    *error = "--synthetic-weights takes a non-negative integer seed, got '" + text + "'";
    return std::nullopt;
  }
  return uint64_t(seed);
}

/// The flags as CompileOptions, or a usage error (the message for exit 2) in `error`.
compiler::CompileOptions parseOptions(const Args &args, std::string *error) {
  compiler::CompileOptions o;
  o.modelDir = args.positional()[0];
  const std::string emit = args.get("--emit").value_or("");
  o.emitIr = emit == "ir";
  o.output = args.get("-o").value_or("");
  const std::string target = args.get("--target").value_or("cpu");
  if (!emit.empty() && emit != "ir")
    *error = "compile: --emit takes 'ir' (print the imported module); " + usageLine(*findCommand("compile"));
  else if (!o.emitIr && o.output.empty())
    *error = "compile: -o MODEL.kiln is required; " + usageLine(*findCommand("compile"));
  else if (target != "cpu" && target != "vulkan")
    *error = "compile: unknown --target '" + target + "' (cpu, vulkan)";
  else if (target != "vulkan" && args.has("--device-profile"))
    *error = "compile: --device-profile needs --target vulkan";
  if (!error->empty())
    return o;
  o.target = target == "vulkan" ? compiler::Target::Vulkan : compiler::Target::Cpu;
  o.deviceProfile = args.get("--device-profile").value_or("lavapipe");
  std::string intError;
  o.maxContext = positiveInt(args, "--max-context", &intError);
  o.maxBatch = positiveInt(args, "--max-batch", &intError);
  o.threads = positiveInt(args, "--threads", &intError);
  if (!intError.empty()) {
    *error = "compile: " + intError;
    return o;
  }
  if (std::optional<std::string> seed = args.get("--synthetic-weights"))
    o.syntheticWeightsSeed = seedArg(*seed, error);
  if (std::optional<std::string> weights = args.get("--weights"); weights && error->empty())
    if (!(o.weights = compiler::parseWeightsFormat(*weights, error)))
      *error = "compile: " + *error;
  // --emit=ir prints the imported module, fused only with --fuse; an artifact is fused unless --no-fuse.
  o.fuse = o.emitIr ? args.has("--fuse") : !args.has("--no-fuse");
  o.cpu = args.get("--cpu").value_or("native");
  o.kvInPlace = !args.has("--no-kv-in-place");
  o.strict = args.has("--strict");
  o.reportDetails = args.has("--report");
  o.dumpDir = args.get("--dump-dir").value_or("");
  return o;
}

} // namespace

int runCompile(int argc, char **argv) {
  std::optional<Args> parsed;
  if (std::optional<int> done = parseArgs(argc, argv, "compile", parsed))
    return *done;
  const Args &args = *parsed;
  const std::string usage = usageLine(*findCommand("compile"));
  if (args.positional().size() != 1)
    return fail(kExitUsage, usage);
  std::string usageError;
  compiler::CompileOptions options = parseOptions(args, &usageError);
  if (!usageError.empty())
    return fail(kExitUsage, usageError);
  options.commandLine.assign(argv, argv + argc);
  options.progress = [](const std::string &line) { std::fprintf(stderr, "kiln compile: %s\n", line.c_str()); };
  if (args.has("--dump-ir-after-all")) // each phase's module on stderr, headed like --mlir-print-ir-after-all
    options.irDump = [](const std::string &text) { llvm::errs() << text; };
  StatusOr<compiler::CompileResult> result = compiler::compile(options);
  if (!result.ok())
    return fail(kExitBadInput, result.status().message());
  if (options.emitIr)
    llvm::outs() << result->ir << "\n";
  return kExitOk;
}

} // namespace kiln::cli
