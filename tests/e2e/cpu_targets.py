#!/usr/bin/env python3
"""CPU targets: an artifact never dies with SIGILL on a CPU it was not compiled for.

usage: cpu_targets.py KILN DATA_DIR

On tests/data/llama-tiny (the CI's CPU is unknown: every expectation is derived at run time):
- `--cpu sapphirerapids` (AVX512-FP16): on a host without it, `kiln run` is refused with exit 1 and one
  line naming the missing feature and `--cpu`; on a host with it, the same refusal is forced by hiding the
  feature (KILN_CPU_DISABLE=avx512fp16); nothing is written either way, and `kiln bench` refuses alike;
- `--cpu x86-64,x86-64-v3,native` carries three objects (two when native is x86-64-v3; kiln inspect lists
  them, most features first); it runs here, loading the first object the host's features cover, and with
  AVX2 hidden the first without it (KILN_VERBOSE names it; run's stdout stays empty); every run matches the
  HF reference and the single-target artifact within the HF tolerance;
- with every object's features hidden the multi-target artifact is refused naming all of them;
- `--cpu portable` runs here; a bad --cpu is one line, exit 1, before anything is written.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402
from compare import load  # noqa: E402

THRESHOLD = 1e-4  # the HF tolerance of the reference cases (artifact_cases.py)


def kiln_cmd(kiln, args, env=None, cwd=None):
    e = dict(os.environ)
    e.pop("KILN_CPU_DISABLE", None)
    e.pop("KILN_VERBOSE", None)
    e.update(env or {})
    return subprocess.run([kiln, *args], capture_output=True, text=True, timeout=600, env=e, cwd=cwd)


def rel_err(a_path, b_path, name="logits"):
    sa, a = load(a_path, name)
    sb, b = load(b_path, name)
    if sa != sb:
        return float("inf")
    scale = max(abs(x) for x in b) or 1.0
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def run_ok(kiln, artifact, case, out, chunks, env=None, label=""):
    p = kiln_cmd(kiln, ["run", artifact, "--inputs", os.path.join(case, "reference.safetensors"),
                        "--outputs", out, "--chunks", chunks], env)
    check(p.returncode == 0, f"{label}: kiln run exit {p.returncode}: {p.stderr.strip()}")
    check(p.stdout == "", f"{label}: kiln run printed on stdout: {p.stdout!r}")
    if p.returncode == 0:
        err = rel_err(out, os.path.join(case, "reference.safetensors"))
        check(err <= THRESHOLD, f"{label}: rel err vs HF {err:.3e} > {THRESHOLD}")
    return p


def refused(kiln, args, env, words, out, label):
    p = kiln_cmd(kiln, args, env)
    lines = p.stderr.splitlines()
    check(p.returncode == 1, f"{label}: exit {p.returncode}, expected 1 ({p.stderr.strip()!r})")
    check(len(lines) == 1, f"{label}: {len(lines)} lines on stderr, expected one: {p.stderr!r}")
    for w in words:
        check(w in p.stderr, f"{label}: {w!r} not in {p.stderr.strip()!r}")
    if out:
        check(not os.path.exists(out), f"{label}: wrote {out}")
    return p


def compile_ok(kiln, case, artifact, cpu):
    p = kiln_cmd(kiln, ["compile", case, "-o", artifact, "--cpu", cpu])
    check(p.returncode == 0, f"compile --cpu {cpu}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def cpu_objects(kiln, artifact):
    p = kiln_cmd(kiln, ["inspect", artifact, "--json"])
    if not check(p.returncode == 0, f"inspect {artifact}: {p.stderr.strip()}"):
        return []
    return json.loads(p.stdout)["manifest"]["cpu_objects"]


def check_refusals(kiln, case, tmp, chunks):
    spr = os.path.join(tmp, "spr.kiln")
    compile_ok(kiln, case, spr, "sapphirerapids")
    objects = cpu_objects(kiln, spr)
    check(len(objects) == 1 and "avx512fp16" in objects[0]["features"], f"sapphirerapids object: {objects}")
    out = os.path.join(tmp, "refused.safetensors")
    run = ["run", spr, "--inputs", os.path.join(case, "reference.safetensors"), "--outputs", out, "--chunks", chunks]
    natural = kiln_cmd(kiln, run)
    if natural.returncode == 0:  # this host has every feature: hide one
        os.remove(out)
        refused(kiln, run, {"KILN_CPU_DISABLE": "avx512fp16"}, ["spr.kiln", "avx512fp16", "--cpu", "sapphirerapids"],
                out, "run sapphirerapids, avx512fp16 hidden")
        refused(kiln, ["bench", spr, "-p", "4", "-n", "2", "-r", "1"], {"KILN_CPU_DISABLE": "avx512fp16"},
                ["avx512fp16", "--cpu"], None, "bench sapphirerapids, avx512fp16 hidden")
    else:
        print("this host lacks sapphirerapids' features:", natural.stderr.strip())
        refused(kiln, run, {}, ["spr.kiln", "avx512", "--cpu", "sapphirerapids"], out, "run sapphirerapids")
    check(natural.returncode in (0, 1), f"run sapphirerapids: exit {natural.returncode} (a signal?)")


def check_multi_target(kiln, case, tmp, chunks):
    single, multi = os.path.join(tmp, "native.kiln"), os.path.join(tmp, "multi.kiln")
    compile_ok(kiln, case, single, "native")
    compile_ok(kiln, case, multi, "x86-64,x86-64-v3,native")
    objects = cpu_objects(kiln, multi)
    cpus = [o["cpu"] for o in objects]
    check(len(objects) in (2, 3) and cpus[-1] == "x86-64", f"multi-target objects: {cpus}")
    check(set(objects[-1]["features"]) == {"cmov", "cx8", "sse", "sse2"}, f"x86-64 records {objects[-1]}")
    counts = [len(o["features"]) for o in objects]
    check(counts == sorted(counts, reverse=True), f"objects not most-features-first: {cpus} {counts}")
    text = kiln_cmd(kiln, ["inspect", multi]).stdout
    check("cpu kernel objects (%d;" % len(objects) in text and all(c in text for c in cpus),
          "kiln inspect does not list the objects")
    # The host's features as the runtime sees them: what the native object records (kiln_cpu_target_tests
    # checks that the runtime's detection and LLVM's agree).
    native = cpu_objects(kiln, single)
    host = set(native[0]["features"]) if native else set()

    def first_runnable(features):
        return next((o["cpu"] for o in objects if set(o["features"]) <= features), None)

    outs = {}
    for label, env, picks in [("native", {}, None), ("multi", {"KILN_VERBOSE": "1"}, first_runnable(host)),
                              ("multi, avx2 hidden", {"KILN_VERBOSE": "1", "KILN_CPU_DISABLE": "avx2"},
                               first_runnable(host - {"avx2"}))]:
        out = os.path.join(tmp, label.replace(" ", "_").replace(",", "") + ".safetensors")
        p = run_ok(kiln, single if label == "native" else multi, case, out, chunks, env, label)
        if picks:
            check(f"CPU kernels for {picks} (object" in p.stderr, f"{label}: KILN_VERBOSE did not name {picks}: "
                  f"{p.stderr.strip()!r}")
        outs[label] = out
    for label in ("multi", "multi, avx2 hidden"):
        if os.path.exists(outs[label]) and os.path.exists(outs["native"]):
            err = rel_err(outs[label], outs["native"])
            check(err <= THRESHOLD, f"{label} vs the single-target artifact: rel err {err:.3e}")
    out = os.path.join(tmp, "none.safetensors")
    refused(kiln, ["run", multi, "--inputs", os.path.join(case, "reference.safetensors"), "--outputs", out],
            {"KILN_CPU_DISABLE": "sse2"}, ["none of the %d CPU kernel objects" % len(objects), "x86-64: this CPU lacks sse2"],
            out, "multi, sse2 hidden")


def main():
    kiln, data = os.path.abspath(sys.argv[1]), sys.argv[2]
    case = os.path.join(data, "llama-tiny")
    chunks = ",".join(map(str, json.load(open(os.path.join(case, "case.json")))["chunks"]))
    with tempfile.TemporaryDirectory() as tmp:
        check_refusals(kiln, case, tmp, chunks)
        check_multi_target(kiln, case, tmp, chunks)
        portable = os.path.join(tmp, "portable.kiln")
        compile_ok(kiln, case, portable, "portable")
        check(len(cpu_objects(kiln, portable)) >= 3, "--cpu portable: fewer than 3 objects")
        run_ok(kiln, portable, case, os.path.join(tmp, "portable.safetensors"), chunks, None, "portable")
        for bad, words in [("no-such-cpu", ["no-such-cpu", "not a CPU LLVM knows"]),
                           ("x86-64,,native", ["empty entry"])]:
            out = os.path.join(tmp, "bad.kiln")
            refused(kiln, ["compile", case, "-o", out, "--cpu", bad], {}, words, out, f"compile --cpu {bad}")
    return summary("cpu targets: refusal, multi-target, portable, bad --cpu")


if __name__ == "__main__":
    sys.exit(main())
