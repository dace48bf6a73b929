//===- Compile.cpp - `kiln compile`: flags -> CompileOptions -> compile() -> exit code ===//
//
// kiln compile MODEL_DIR -o MODEL.kiln [--target cpu|vulkan] [--device-profile NAME|FILE] [--cpu NAME]
//              [--max-context N] [--max-batch N] [--threads N] [--dump-dir DIR] [--dump-ir-after-all]
//              [--no-fuse] [--no-kv-in-place] [--matmul-norms] [--report] [--strict] [--synthetic-weights SEED]
//              [--weights FMT [--keep-f16 NAMES]] [--matmul-precision f32|f16]
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


/// Flag `name` as an integer in [1, max] (nullopt when absent or bad: then `error` is set, if not already).
std::optional<int64_t> positiveInt(const Args &args, const std::string &name, uint64_t max, std::string *error) {
  std::optional<std::string> text = args.get(name);
  if (!text)
    return std::nullopt;
  std::string why;
  std::optional<uint64_t> v = parseIntFlag(name, *text, 1, max, &why);
  if (!v && error->empty())
    *error = why;
  return v ? std::optional<int64_t>(int64_t(*v)) : std::nullopt;
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
  o.maxContext = positiveInt(args, "--max-context", kMaxTokens, &intError);
  o.maxBatch = positiveInt(args, "--max-batch", kMaxTokens, &intError);
  o.threads = positiveInt(args, "--threads", kMaxThreads, &intError);
  if (std::optional<std::string> seed = args.get("--synthetic-weights")) // kiln synth --seed's range
    if (!(o.syntheticWeightsSeed = parseIntFlag("--synthetic-weights", *seed, 0, UINT64_MAX, &intError)))
      intError = intError.empty() ? "--synthetic-weights: bad seed" : intError;
  if (!intError.empty()) {
    *error = "compile: " + intError;
    return o;
  }
  if (std::optional<compiler::WeightsFormat> w =
          compiler::parseWeightsFlags(args.get("--weights"), args.get("--keep-f16"), error))
    o.weights = *w;
  else
    *error = "compile: " + *error;
  // --emit=ir prints the imported module, fused only with --fuse; an artifact is fused unless --no-fuse.
  o.fuse = o.emitIr ? args.has("--fuse") : !args.has("--no-fuse");
  o.cpu = args.get("--cpu").value_or("native");
  o.kvInPlace = !args.has("--no-kv-in-place");
  o.strict = args.has("--strict");
  o.matmulNorms = args.has("--matmul-norms");
  o.groupDispatches = !args.has("--no-group-dispatches");
  const std::string precision = args.get("--matmul-precision").value_or("f32");
  if (precision != "f32" && precision != "f16" && error->empty())
    *error = "compile: unknown --matmul-precision '" + precision + "' (f32, f16)";
  o.f16MatmulsForF32Weights = precision == "f16";
  o.reportDetails = args.has("--report");
  o.dumpDir = args.get("--dump-dir").value_or("");
  return o;
}

/// "warning: ..." naming the given flags that do nothing in this combination, "" when none.
std::string ignoredFlagsWarning(const Args &args, bool emitIr, bool vulkan) {
  std::vector<std::string> ignored;
  std::string why;
  if (emitIr) { // the module is printed; nothing is planned, generated or written
    for (const char *f : {"-o", "--target", "--device-profile", "--strict", "--cpu", "--max-context", "--max-batch",
                          "--threads", "--no-kv-in-place", "--synthetic-weights", "--matmul-precision",
                          "--matmul-norms", "--no-group-dispatches"})
      if (args.has(f))
        ignored.push_back(f);
    why = "with --emit=ir (the module is printed on stdout, nothing compiled or written)";
  } else {
    if (args.has("--fuse"))
      ignored.push_back("--fuse");
    for (const char *f : {"--strict", "--matmul-precision", "--matmul-norms", "--no-group-dispatches"})
      if (args.has(f) && !vulkan)
        ignored.push_back(f);
    why = "here (--fuse: only with --emit=ir, an artifact is fused unless --no-fuse; --strict, --matmul-precision, "
          "--matmul-norms, --no-group-dispatches: only with --target vulkan)";
  }
  if (ignored.empty())
    return "";
  std::string names;
  for (const std::string &f : ignored)
    names += (names.empty() ? "" : ", ") + f;
  return "warning: " + names + (ignored.size() == 1 ? " does" : " do") + " nothing " + why;
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
  if (std::string warning = ignoredFlagsWarning(args, options.emitIr, options.target == compiler::Target::Vulkan);
      !warning.empty())
    std::fprintf(stderr, "kiln compile: %s\n", warning.c_str());
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
