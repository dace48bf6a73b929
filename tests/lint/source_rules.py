#!/usr/bin/env python3
"""Source rules that keep kiln readable, checked over the non-test sources.

usage: source_rules.py SOURCE_DIR [--max-lines 150]

1. No function (or lambda) longer than --max-lines lines, measured by Universal Ctags' start and end lines.
   Prints each offender as FILE:LINE NAME (N lines).
2. No GLSL `#version` string in a .cpp / .h file (tests included): fixed-structure kernels live in .comp files
   (codegen/spirv/shaders/); only the generated elementwise chains are built in C++, and they take their
   header from a .comp file too.
Exit 1 naming every violation; 0 when there is none.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

SOURCE_DIRS = ["support", "frontend", "models", "ir", "passes", "compiler", "codegen", "artifact", "target",
               "tokenizer", "runtime", "tools", "bench", "examples"]
CPP_EXT = (".cpp", ".h", ".hpp", ".cc", ".c")


def project_files(root, dirs):
    """The C/C++ files under dirs that are the project's: git's tracked and not-ignored files when root is a
    checkout (so fetched peers such as bench/peers/llama.cpp and node_modules are not linted), else all."""
    git = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "--"] + dirs,
                         capture_output=True, text=True)
    if git.returncode == 0:
        return [os.path.join(root, f) for f in sorted(set(git.stdout.splitlines()))
                if f.endswith(CPP_EXT) and os.path.isfile(os.path.join(root, f))]
    return [os.path.join(dirpath, f) for d in dirs for dirpath, _, files in os.walk(os.path.join(root, d))
            for f in sorted(files) if f.endswith(CPP_EXT)]


def sources(root):
    return project_files(root, SOURCE_DIRS)


def long_functions(root, files, max_lines):
    ctags = shutil.which("ctags-universal") or shutil.which("ctags")
    if not ctags:
        print("source_rules: Universal Ctags not found (apt install universal-ctags)", file=sys.stderr)
        sys.exit(1)
    out = subprocess.run([ctags, "-x", "--languages=C++,C", "--language-force=C++", "--kinds-C++=f",
                          "--fields=+ne", "--_xformat=%n %e %F %N"] + files,
                         capture_output=True, text=True, check=True).stdout
    bad = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        start, end, path, name = int(parts[0]), int(parts[1]), parts[2], parts[3]
        if end - start + 1 > max_lines:
            bad.append("%s:%d %s (%d lines)" % (os.path.relpath(path, root), start, name, end - start + 1))
    return bad


def glsl_in_cpp(root, files, pattern=r"#version\s+\d{3}"):
    bad = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f, 1):
                if re.search(pattern, line):
                    bad.append("%s:%d GLSL #version in C++ source" % (os.path.relpath(path, root), i))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--max-lines", type=int, default=150)
    args = ap.parse_args()
    files = list(sources(args.root))
    bad = long_functions(args.root, files, args.max_lines)
    for b in bad:
        print("function longer than %d lines: %s" % (args.max_lines, b))
    test_files = project_files(args.root, ["tests"])
    # In tests, a kernel is a raw string that starts with #version (asserting on emitted GLSL is fine).
    glsl = glsl_in_cpp(args.root, files) + glsl_in_cpp(args.root, test_files, r'R"[^(]*\(\s*#version')
    for g in glsl:
        print(g)
    print("%d files: %d functions over %d lines, %d GLSL #version strings in C++" %
          (len(files), len(bad), args.max_lines, len(glsl)))
    return 1 if bad or glsl else 0


if __name__ == "__main__":
    sys.exit(main())
