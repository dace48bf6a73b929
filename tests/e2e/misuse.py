#!/usr/bin/env python3
"""Guard rails: an output that is an input, or that cannot be written, is refused before any work.

usage: misuse.py KILN DATA_DIR

Each case runs kiln on a copy of tests/data/llama-tiny and checks: the exit code, exactly one line on
stderr with the expected words, no input file changed, and no output written. Also: a --max-batch whose
session is larger than any machine's memory compiles with one warning naming the size and the limits, and
kiln run refuses it at session creation (exit 1, one line naming the limits), allocating nothing.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402


def digests(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def refused(kiln, tmp, args, code, words, must_not_exist=None):
    before = digests(tmp)
    p = subprocess.run([kiln, *args], capture_output=True, text=True, timeout=300, cwd=tmp)
    what = "kiln " + " ".join(args)
    lines = p.stderr.splitlines()
    check(p.returncode == code, f"{what}: exit {p.returncode}, expected {code} ({p.stderr.strip()!r})")
    check(len(lines) == 1, f"{what}: {len(lines)} lines on stderr, expected one: {p.stderr!r}")
    for w in words:
        check(w in p.stderr, f"{what}: {w!r} not in {p.stderr.strip()!r}")
    check(digests(tmp) == before, f"{what}: a file changed or appeared")
    if must_not_exist:
        check(not os.path.exists(os.path.join(tmp, must_not_exist)), f"{what}: wrote {must_not_exist}")


def main():
    kiln, data = os.path.abspath(sys.argv[1]), sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(data, "llama-tiny"), os.path.join(tmp, "m"))
        ref = "m/reference.safetensors"
        p = subprocess.run([kiln, "compile", "m", "-o", "x.kiln"], capture_output=True, text=True, cwd=tmp)
        check(p.returncode == 0, f"kiln compile m -o x.kiln: {p.stderr}")
        os.symlink("m/model.safetensors", os.path.join(tmp, "link.safetensors"))
        os.mkdir(os.path.join(tmp, "out"))

        # compile: -o is a file of the model directory (any spelling), a missing directory, a directory.
        refused(kiln, tmp, ["compile", "m", "-o", "m/model.safetensors"], 1,
                ["-o m/model.safetensors", "model directory", "refusing to overwrite an input"])
        refused(kiln, tmp, ["compile", "m", "-o", "./out/../m/config.json"], 1, ["the same file as", "config.json"])
        refused(kiln, tmp, ["compile", "m", "-o", "link.safetensors"], 1, ["the same file as m/model.safetensors"])
        refused(kiln, tmp, ["compile", "m", "-o", "nodir/x.kiln"], 1, ["directory nodir does not exist"],
                must_not_exist="nodir")
        refused(kiln, tmp, ["compile", "m", "-o", "out"], 1, ["-o out is a directory"])
        # run / eval: --outputs is the artifact, the inputs or a file of the model directory.
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", "x.kiln"], 1, ["the artifact x.kiln"])
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", ref], 1, ["--inputs " + ref])
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", "out/../" + ref], 1, ["--inputs " + ref])
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", "nodir/o.safetensors"], 1,
                ["directory nodir does not exist"], must_not_exist="nodir")
        refused(kiln, tmp, ["eval", "m", "--inputs", ref, "--outputs", "m/config.json"], 1,
                ["m/config.json in the model directory m"])
        refused(kiln, tmp, ["eval", "m", "--inputs", ref, "--outputs", ref], 1, ["refusing to overwrite an input"])

        # A session far larger than any machine (batch 10^7 of llama-tiny: terabytes): compiled, with a warning.
        p = subprocess.run([kiln, "compile", "m", "-o", "big.kiln", "--max-batch", "10000000"], capture_output=True,
                           text=True, timeout=300, cwd=tmp)
        warnings = [l for l in p.stderr.splitlines() if "warning" in l]
        check(p.returncode == 0, f"compile --max-batch 10000000: exit {p.returncode}: {p.stderr[-300:]!r}")
        check(len(warnings) == 1 and "a session needs" in warnings[0] and "GiB" in warnings[0] and "batch 10000000" in warnings[0] and
              "lower --max-context or --max-batch" in warnings[0], f"compile --max-batch 10000000: {warnings}")
        # ... and refused at session creation, before allocating, naming the limits to lower.
        refused(kiln, tmp, ["run", "big.kiln", "--inputs", ref, "--outputs", "o.safetensors"], 1,
                ["a session needs", "more than this machine's memory", "--max-context or --max-batch"],
                must_not_exist="o.safetensors")
        p = subprocess.run([kiln, "compile", "m", "-o", "small.kiln"], capture_output=True, text=True, cwd=tmp)
        check("warning" not in p.stderr, f"compile with the default limits warns: {p.stderr!r}")
    return summary("guard rails")


if __name__ == "__main__":
    sys.exit(main())
