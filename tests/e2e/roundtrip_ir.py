#!/usr/bin/env python3
"""kiln-opt reads every module kiln writes, and --dump-ir-after-all prints every phase --dump-dir writes.

usage: roundtrip_ir.py KILN KILN_OPT DATA_DIR

For every model of DATA_DIR:
- `kiln compile --emit=ir` through `kiln-opt --kiln-fuse` prints what `kiln compile --emit=ir --fuse` gives;
- `kiln compile -o X --dump-dir D --dump-ir-after-all`: every D/*.mlir (the kiln phases and the CPU
  codegen's lowering phases) parses, prints, and prints the same again (a fixpoint); the kiln phases also
  through --kiln-fuse; 00-imported.mlir through --kiln-fuse (with locations) is 01-fused.mlir; and stderr
  holds one "IR Dump After NAME" section per D/*.mlir, with the file's text.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, failures, summary  # noqa: E402

DEBUG = ["--mlir-print-debuginfo", "--mlir-print-local-scope"]


def run(args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=600)


def opt(kiln_opt, path, *flags):
    """kiln-opt's output for `path`, or None (the failure recorded)."""
    p = run([kiln_opt, path, *flags])
    check(p.returncode == 0, f"kiln-opt {path} {' '.join(flags)}: exit {p.returncode}: {p.stderr[:300]!r}")
    return p.stdout if p.returncode == 0 else None


def fixpoint(kiln_opt, path, tmp, *flags):
    once = opt(kiln_opt, path, *flags)
    if once is None:
        return
    again_path = os.path.join(tmp, "again.mlir")
    open(again_path, "w").write(once)
    again = opt(kiln_opt, again_path, *flags)
    check(again == once, f"kiln-opt {path}: printing its own output changes it")


def dump_sections(stderr):
    """{name: text} of the "// -----// IR Dump After NAME //----- //" sections."""
    sections, name = {}, None
    for line in stderr.splitlines(keepends=True):
        m = re.match(r"// -----// IR Dump After (\S+) //----- //$", line.rstrip("\n"))
        if m:
            name = m.group(1)
            check(name not in sections, f"--dump-ir-after-all prints {name} twice")
            sections[name] = ""
        elif line.startswith("kiln compile: "):
            name = None
        elif name:
            sections[name] += line
    return sections


def check_emit(kiln, kiln_opt, case, tmp):
    imported, fused = os.path.join(tmp, "imported.mlir"), os.path.join(tmp, "fused.mlir")
    for path, extra in ((imported, []), (fused, ["--fuse"])):
        p = run([kiln, "compile", case, "--emit=ir", *extra])
        check(p.returncode == 0, f"kiln compile {case} --emit=ir {' '.join(extra)}: {p.stderr[-300:]!r}")
        open(path, "w").write(p.stdout)
    fixpoint(kiln_opt, imported, tmp)
    check(opt(kiln_opt, imported, "--kiln-fuse") == opt(kiln_opt, fused),
          f"{case}: kiln-opt --kiln-fuse of --emit=ir differs from --emit=ir --fuse")


def check_dumps(kiln, kiln_opt, case, tmp, target="cpu"):
    dump = os.path.join(tmp, "dump-" + target)
    p = run([kiln, "compile", case, "-o", os.path.join(tmp, "x.kiln"), "--dump-dir", dump, "--dump-ir-after-all",
             "--target", target])
    check(p.returncode == 0, f"kiln compile {case} --dump-dir: {p.stderr[-300:]!r}")
    files = sorted(f for f in os.listdir(dump) if f.endswith(".mlir")) if os.path.isdir(dump) else []
    check((target != "cpu" or any(f.startswith("cpu-") for f in files)) and "03-planned.mlir" in files,
          f"{case}: dumps {files}")
    if target == "vulkan":  # each SPIR-V kernel as the GLSL glslang compiled and its disassembly
        spirv = sorted(os.listdir(os.path.join(dump, "spirv"))) if os.path.isdir(os.path.join(dump, "spirv")) else []
        comp = [f[:-5] for f in spirv if f.endswith(".comp")]
        check(comp and comp == [f[:-7] for f in spirv if f.endswith(".spvasm")], f"{case}: spirv dumps {spirv}")
    sections = dump_sections(p.stderr)
    check(sorted(sections) == files, f"{case}: --dump-ir-after-all printed {sorted(sections)}, --dump-dir wrote {files}")
    for f in files:
        path = os.path.join(dump, f)
        text = open(path).read()
        check(sections.get(f, "").strip() == text.strip(), f"{case}: --dump-ir-after-all's {f} differs from the file")
        fixpoint(kiln_opt, path, tmp)
        if not f.startswith("cpu-"):
            opt(kiln_opt, path, "--kiln-fuse")
    if "01-fused.mlir" in files:
        check(opt(kiln_opt, os.path.join(dump, "00-imported.mlir"), "--kiln-fuse", *DEBUG) ==
              opt(kiln_opt, os.path.join(dump, "01-fused.mlir"), *DEBUG),
              f"{case}: kiln-opt --kiln-fuse 00-imported.mlir is not 01-fused.mlir")
    return len(files)


def main():
    kiln, kiln_opt, data = sys.argv[1], sys.argv[2], sys.argv[3]
    cases = sorted(d for d in os.listdir(data) if os.path.isfile(os.path.join(data, d, "config.json")))
    check(len(cases) >= 5, f"models in {data}: {cases}")
    for name in cases:
        with tempfile.TemporaryDirectory() as tmp:
            before = len(failures)
            check_emit(kiln, kiln_opt, os.path.join(data, name), tmp)
            n = check_dumps(kiln, kiln_opt, os.path.join(data, name), tmp)
            if name == "llama-tiny":  # the Vulkan pipeline's dumps (partitioned IR, GLSL, SPIR-V); no device needed
                n += check_dumps(kiln, kiln_opt, os.path.join(data, name), tmp, "vulkan")
            print(f"{name}: --emit=ir and {n} dumped modules round-trip" if len(failures) == before else
                  f"{name}: FAILED")
    return summary(f"{len(cases)} models")


if __name__ == "__main__":
    sys.exit(main())
