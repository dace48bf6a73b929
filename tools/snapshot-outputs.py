#!/usr/bin/env python3
"""Compile every reference case in tests/data and save what the artifacts output, for a bit-exact comparison
of two builds (a refactoring must not change one bit of any output).

usage: snapshot-outputs.py KILN DATA_DIR OUT_DIR [--vulkan]        writes OUT_DIR/<case>.<variant>.safetensors
       snapshot-outputs.py --compare DIR_A DIR_B                   exit 1 unless every file is byte-identical

Variants: cpu (default flags), cpu-nofuse (--no-fuse), cpu-copykv (--no-kv-in-place), and with --vulkan
vulkan (--target vulkan --device-profile lavapipe, run under lavapipe). Each causal case runs its case.json chunk
schedule; encoders one chunk. Outputs are compared as files: safetensors written by kiln are deterministic.
"""
import json
import os
import subprocess
import sys
import tempfile

LVP_ICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"


def variants(vulkan):
    v = [("cpu", []), ("cpu-nofuse", ["--no-fuse"]), ("cpu-copykv", ["--no-kv-in-place"])]
    if vulkan:
        v.append(("vulkan", ["--target", "vulkan", "--device-profile", "lavapipe"]))
    return v


def snapshot(kiln, data, out, vulkan):
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, VK_DRIVER_FILES=LVP_ICD)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in sorted(os.listdir(data)):
            cdir = os.path.join(data, case)
            if not os.path.isfile(os.path.join(cdir, "case.json")):
                continue
            info = json.load(open(os.path.join(cdir, "case.json")))
            for name, flags in variants(vulkan):
                art = os.path.join(tmp, "%s.%s.kiln" % (case, name))
                dst = os.path.join(out, "%s.%s.safetensors" % (case, name))
                p = subprocess.run([kiln, "compile", cdir, "-o", art] + flags, capture_output=True, text=True,
                                   env=env)
                if p.returncode == 0:
                    cmd = [kiln, "run", art, "--inputs", os.path.join(cdir, "reference.safetensors"),
                           "--outputs", dst]
                    if info.get("chunks"):
                        cmd += ["--chunks", ",".join(str(c) for c in info["chunks"])]
                    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                print("%-4s %s %s %s" % ("ok" if p.returncode == 0 else "FAIL", case, name,
                                         p.stderr.strip().splitlines()[-1:] if p.returncode else ""))
                failed += p.returncode != 0
    return 1 if failed else 0


def compare(a, b):
    names = sorted(set(os.listdir(a)) | set(os.listdir(b)))
    bad = 0
    for n in names:
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        same = os.path.isfile(pa) and os.path.isfile(pb) and open(pa, "rb").read() == open(pb, "rb").read()
        print("%-9s %s" % ("identical" if same else "DIFFERENT", n))
        bad += not same
    print("%d files, %d different" % (len(names), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--compare" and len(args) == 3:
        sys.exit(compare(args[1], args[2]))
    if len(args) not in (3, 4) or (len(args) == 4 and args[3] != "--vulkan"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(snapshot(args[0], args[1], args[2], len(args) == 4))
