# lit configuration for kiln's IR tests (IR in, IR out, FileCheck).
import os
import lit.formats

config.name = "kiln-ir"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_binary_dir, "tests", "ir")
config.environment["PATH"] = os.pathsep.join(
    [os.path.join(config.kiln_binary_dir, "bin"), config.llvm_tools_dir, config.environment.get("PATH", "")])
