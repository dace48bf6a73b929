#!/usr/bin/env python3
"""kiln compile's plan decisions as IR, and its report as one source (compiler/, passes/PlanAnnotations.h).

usage: plan_ir.py KILN KILN_OPT DATA_DIR

For every case in DATA_DIR (cpu, cpu --no-fuse, vulkan on lavapipe) and for llama-tiny / gemma3-tiny /
gpt2-tiny with a 64 KiB buffer limit (split weights) and without kiln.rope (cpu fallbacks), plus a bf16
llama-tiny on vulkan (folded weight converts), `kiln compile --dump-dir D --report` must:
1. write D/03-planned.mlir, the plan's decisions as attributes, and kiln-opt must reproduce it byte for byte
   from the phase before it (02-split.mlir, 01-fused.mlir or 00-imported.mlir) with the plan passes
   (--kiln-partition, --kiln-fold-device-weights, --kiln-place-kv-cache): one implementation of each
   decision, the same IR in both;
2. store its report in the artifact: `kiln inspect`'s compile report holds exactly the lines it printed
   (all but the last, "wrote ...", which names the file's own size).
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vulkan"))
import vulkan_cases as vc  # noqa: E402
from vulkan_cases import report, run  # noqa: E402

CONTEXT, BATCH = "16", "2"


def profile_file(path, **changes):
    """The built-in lavapipe profile with some keys changed, as a --device-profile file."""
    with open(path, "w") as f:
        json.dump(vc.lavapipe_profile(**changes), f)
    return path


def plan_passes(profile, flags):
    """The kiln-opt pipeline that decides what kiln compile decided with these flags."""
    bounds = "max-context=%s max-batch=%s" % (CONTEXT, BATCH)
    passes = []
    if profile:
        passes += ["--kiln-partition=profile=%s %s" % (profile, bounds), "--kiln-fold-device-weights=" + bounds]
    if "--no-kv-in-place" not in flags:
        # kiln compile lets the Vulkan kernels take the strided views (KvInPlaceOptions::vulkan).
        passes.append("--kiln-place-kv-cache=" + bounds + (" vulkan=true" if profile else ""))
    return passes


def check(kiln, kiln_opt, model, label, tmp, profile=None, flags=()):
    dump = os.path.join(tmp, label.replace(" ", "_").replace("/", "_"))
    art = dump + ".kiln"
    cmd = [kiln, "compile", model, "-o", art, "--max-context", CONTEXT, "--max-batch", BATCH, "--dump-dir", dump,
           "--report"] + list(flags)
    if profile:
        cmd += ["--target", "vulkan", "--device-profile", profile]
    p = run(cmd)
    if not report(p.returncode == 0, label + ": compile", p.stderr.strip()[-300:] if p.returncode else ""):
        return
    planned = os.path.join(dump, "03-planned.mlir")
    before = [os.path.join(dump, n) for n in (
        "02-matmul-norms.mlir", "02-grouped.mlir", "02-split.mlir", "01-fused.mlir", "00-imported.mlir")]
    before = [b for b in before if os.path.exists(b)][0]
    passes = plan_passes(profile, flags)
    if passes:
        q = run([kiln_opt, before, "--mlir-print-debuginfo", "--mlir-print-local-scope"] + passes)
        same = q.returncode == 0 and os.path.exists(planned) and q.stdout == open(planned).read()
        report(same, label + ": kiln-opt reproduces 03-planned.mlir",
               "" if same else (q.stderr.strip()[-300:] or "%s differs from kiln-opt's output" % planned))
    printed = [l[len("kiln compile: "):] for l in p.stderr.splitlines() if l.startswith("kiln compile: ")]
    i = run([kiln, "inspect", art])
    section = i.stdout.split("\ncompile report\n", 1)[-1].split("\n\n")[0].splitlines()
    stored = [l[4:] for l in section if l.startswith("    ")]
    ok = i.returncode == 0 and len(printed) > 1 and printed[-1].startswith("wrote ") and stored == printed[:-1]
    report(ok, label + ": inspect's compile report is what compile printed",
           "" if ok else "printed %d lines, stored %d" % (len(printed) - 1, len(stored)))


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    kiln, kiln_opt, data = sys.argv[1:]
    cases = sorted(c for c in os.listdir(data) if os.path.isfile(os.path.join(data, c, "case.json")))
    with tempfile.TemporaryDirectory() as tmp:
        small = profile_file(os.path.join(tmp, "lavapipe-64k.json"), name="lavapipe-64k",
                                 max_storage_buffer_range=65536)
        no_rope = profile_file(os.path.join(tmp, "no-rope.json"), name="no-rope", unavailable_ops=["kiln.rope"])
        for c in cases:
            model = os.path.join(data, c)
            check(kiln, kiln_opt, model, c + " cpu", tmp)
            check(kiln, kiln_opt, model, c + " cpu --no-fuse", tmp, flags=["--no-fuse"])
            check(kiln, kiln_opt, model, c + " vulkan", tmp, profile="lavapipe")
        for c in ("llama-tiny", "gemma3-tiny", "gpt2-tiny"):
            check(kiln, kiln_opt, os.path.join(data, c), c + " vulkan 64k", tmp, profile=small)
            check(kiln, kiln_opt, os.path.join(data, c), c + " vulkan no-rope", tmp, profile=no_rope)
        check(kiln, kiln_opt, os.path.join(data, "llama-tiny"), "llama-tiny cpu --no-kv-in-place", tmp,
              flags=["--no-kv-in-place"])
        bf16 = os.path.join(tmp, "llama-bf16")
        p = run([kiln, "synth", os.path.join(data, "llama-tiny", "config.json"), "-o", bf16, "--dtype", "bf16"])
        if report(p.returncode == 0, "llama-tiny bf16: synth", p.stderr.strip()[-300:] if p.returncode else ""):
            check(kiln, kiln_opt, bf16, "llama-tiny bf16 vulkan", tmp, profile="lavapipe")
            planned = open(os.path.join(tmp, "llama-tiny_bf16_vulkan", "03-planned.mlir")).read()
            report('kiln.folded = "weight-convert"' in planned, "llama-tiny bf16 vulkan: weight converts folded")
    print("%d passed, %d failed" % tuple(vc.RESULTS))
    return 1 if vc.RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
