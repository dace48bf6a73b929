//===- Compile.cpp - `kiln compile` ---------------------------------------===//
#include "Cli.h"
#include "ModelLoader.h"
#include "Subcommands.h"

#include "mlir/IR/AsmState.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln::cli {

int runCompile(int argc, char **argv) {
  Args args(argc, argv, 2, {"--emit", "-o"}, {});
  if (!args.ok() || args.positional().size() != 1)
    return fail(kExitUsage, (args.ok() ? std::string("") : args.error() + "; ") +
                                "usage: kiln compile MODEL_DIR --emit=ir");
  std::string emit = args.get("--emit").value_or("");
  if (emit != "ir")
    return fail(kExitUsage, "kiln compile: only --emit=ir (print the imported module) is available in this "
                            "build; artifacts (-o MODEL.kiln) come with the CPU backend");
  mlir::MLIRContext context;
  StatusOr<ImportedModel> model = importModel(context, args.positional()[0]);
  if (!model.ok())
    return fail(kExitBadInput, model.status().message());
  mlir::OpPrintingFlags flags;
  flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/true);
  model->module->print(llvm::outs(), flags);
  llvm::outs() << "\n";
  return kExitOk;
}

} // namespace kiln::cli
