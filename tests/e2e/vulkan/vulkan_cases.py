#!/usr/bin/env python3
"""kiln compile --target vulkan: partition reports, --strict, device profiles, and (once the runtime runs
vulkan dispatches) kiln run on lavapipe against the Hugging Face references.

usage: vulkan_cases.py KILN DATA_DIR [--threshold 1e-3] [--cases a,b] [--no-run]

1. Every case with --device-profile lavapipe: compiles, the report says "0 on cpu", the artifact's partition
   (kiln inspect) has no cpu op; then kiln run under VK_DRIVER_FILES=lavapipe for every schedule (the
   case.json one, one chunk, token by token) within --threshold, when the runtime has a Vulkan executor.
   With --matmul-norms too: the RMS norms fold into the decode GEMVs, and every schedule still matches.
2. gemma3-tiny with a profile lacking kiln.rope, bert-tiny with one lacking kiln.layer_norm: compiles, the
   report names the ops ("kiln.rope x N -> cpu: profile lacks kiln.rope (model.layers.0..."); with --strict
   exit 1 with one line listing them; the outputs still match.
3. gemma3-tiny with --device-profile generic: compiles; every cpu op in the report has a reason; outputs match.
4. Bad profiles: a missing file, a file with a bad key, an unknown op or dtype: exit 1 naming the file and key;
   /dev/zero, a directory, a FIFO: exit 1 at once with one line; `kiln devices --json` output compiles.
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import st  # noqa: E402

RESULTS = [0, 0]
LVP_ICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"


def report(ok, what, msg=""):
    print("%-4s %-56s %s" % ("ok" if ok else "FAIL", what, msg))
    sys.stdout.flush()
    RESULTS[0 if ok else 1] += 1
    return ok


def run(cmd, timeout=900, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def lavapipe_profile(**changes):
    """The lavapipe profile's JSON with some keys changed (what `kiln devices --json` would write)."""
    p = {"name": "lavapipe", "api_version": "1.3.230", "float16": True, "int8": True, "storage16": True,
         "storage8": True, "subgroup_size": 8,
         "subgroup_ops": ["basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "quad"],
         "max_shared_memory": 32768, "max_workgroup_invocations": 1024, "max_workgroup_size": [1024, 1024, 1024],
         "max_workgroup_count": [65535, 65535, 65535], "max_storage_buffer_range": 134217728,
         "max_allocation_size": 2147483648, "max_push_constants_size": 128, "cooperative_matrix": False,
         "integer_dot_product": True, "integer_dot_product_accelerated": False,
         "unavailable_ops": [], "unavailable_dtypes": []}
    p.update(changes)
    return p


def partition_lines(stderr):
    """The report: the 'partition for vulkan' line and the 'OP x N -> cpu: ...' lines after it."""
    lines = [l[len("kiln compile: "):] for l in stderr.splitlines() if l.startswith("kiln compile: ")]
    head = [l for l in lines if l.startswith("partition for vulkan")]
    groups = [l for l in lines if re.match(r"^kiln\.\w+ x \d+ -> cpu: ", l)]
    return (head[0] if head else None), groups


def runtime_has_vulkan(kiln):
    p = run([kiln, "devices", "--json"], env=dict(os.environ, VK_DRIVER_FILES=LVP_ICD), timeout=120)
    return p.returncode == 0


def lavapipe_run(a):
    """(can_run, env): whether kiln run can run on lavapipe here (not --no-run, its ICD present, a runtime with
    Vulkan), said in one line, and the environment that selects it."""
    can_run = not a.no_run and os.path.exists(LVP_ICD) and runtime_has_vulkan(a.kiln)
    print("kiln run on lavapipe: %s" % ("yes" if can_run else "skipped (no Vulkan runtime or no lavapipe ICD)"))
    return can_run, dict(os.environ, VK_DRIVER_FILES=LVP_ICD)


def check_runs(kiln, artifact, case_dir, tmp, threshold, label, env):
    case = json.load(open(os.path.join(case_dir, "case.json")))
    ref = st.read(os.path.join(case_dir, "reference.safetensors"))
    schedules = [case.get("chunks")] if case.get("chunks") else [None]
    if case["task"] == "causal-lm":
        seq = ref["input_ids"][1][1]
        schedules += [None, [1] * seq]
    seen = set()
    for chunks in schedules:
        key = tuple(chunks) if chunks else ()
        if key in seen:
            continue
        seen.add(key)
        out = os.path.join(tmp, "out.safetensors")
        what = "%s run %s" % (label, ",".join(map(str, chunks)) if chunks else "one chunk")
        p = run([kiln, "run", artifact] + st.reference_io(case_dir, out, chunks), env=env)
        if p.returncode != 0:
            report(False, what, "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:]))
            continue
        ok, msg = st.compare_output(out, case_dir, threshold)
        report(ok, what, msg)


def check_unreadable_profiles(kiln, case_dir, tmp):
    """/dev/zero, a directory and a FIFO as --device-profile: exit 1 at once with one line naming the path
    (stat before reading: /dev/zero never ends, opening a FIFO blocks until a writer comes)."""
    fifo = os.path.join(tmp, "profile.fifo")
    os.mkfifo(fifo)
    for path in ["/dev/zero", tmp, fifo]:
        try:
            p = compile_case(kiln, case_dir, os.path.join(tmp, "x.kiln"), path, timeout=30)
        except subprocess.TimeoutExpired:
            report(False, "--device-profile %s: refused at once" % path, "still running after 30 s")
            continue
        lines = p.stderr.strip().splitlines()
        report(p.returncode == 1 and len(lines) == 1 and path in lines[0] and "not a regular file" in lines[0],
               "--device-profile %s: exit 1, one line" % ("FIFO" if path == fifo else path), p.stderr.strip()[-200:])
    os.unlink(fifo)


def compile_case(kiln, case_dir, out, profile, extra=(), timeout=900):
    cmd = [kiln, "compile", case_dir, "-o", out, "--target", "vulkan", "--device-profile", profile,
           "--max-context", "64"] + list(extra)
    return run(cmd, timeout=timeout)


def check_profile(kiln, art, c, env):
    """KILN_PROFILE=1 over prefill and decode steps: per-kernel lines, decode on the GEMV-only kernels."""
    p = run([kiln, "bench", art, "-p", "8", "-n", "4", "-r", "1"], env=dict(env, KILN_PROFILE="1"))
    # lavapipe reports no pipeline statistics: the profile says so instead of leaving them out silently
    ok = p.returncode == 0 and "GPU" in p.stderr and "_gemv" in p.stderr and "_only_" in p.stderr and \
        "pipeline statistics" in p.stderr
    report(ok, c + " KILN_PROFILE=1 bench (prefill + decode)", "" if ok else "exit %d: %s" % (p.returncode, p.stderr[-300:]))


def check_matmul_norms(a, c, d, tmp, can_run, env):
    """--matmul-norms: the RMSNorms fold into the decode GEMVs (the report counts them; encoders' layer norms do
    not fold) and every schedule still matches: token by token on the GEMV-only kernels that norm their rows, the
    chunks on the tiles that read the kept norm."""
    art = os.path.join(tmp, c + "-norms.kiln")
    p = compile_case(a.kiln, d, art, "lavapipe", ["--matmul-norms"])
    line = [l for l in p.stderr.splitlines() if "matmul norms: " in l]
    rms = json.load(open(os.path.join(d, "config.json"))).get("model_type") not in ("bert", "mpnet", "gpt2", "gptj")
    folded = bool(line) and not re.search(r" 0 rms_norms into", line[0])
    if not report(p.returncode == 0 and folded == rms, c + " --matmul-norms compiles",
                  (line[0] if line else "no 'matmul norms:' line") if p.returncode == 0 else p.stderr.strip()[-300:]):
        return
    if can_run:
        check_runs(a.kiln, art, d, tmp, a.threshold, c + " lavapipe --matmul-norms", env)


def main():
    a = st.case_arguments(threshold=1e-3, no_run=True).parse_args()
    cases = st.case_names(a.data, a.cases)
    can_run, env = lavapipe_run(a)
    with tempfile.TemporaryDirectory() as tmp:
        # 1. lavapipe: nothing on the cpu.
        for c in cases:
            d = os.path.join(a.data, c)
            art = os.path.join(tmp, c + ".kiln")
            p = compile_case(a.kiln, d, art, "lavapipe")
            head, groups = partition_lines(p.stderr)
            if not report(p.returncode == 0 and head is not None, c + " compile lavapipe",
                          (head or "") if p.returncode == 0 else "exit %d: %s" % (p.returncode, p.stderr.strip()[-400:])):
                continue
            report(" 0 on cpu" in head and not groups, c + " lavapipe: nothing on the cpu", head + " | ".join(groups))
            i = run([a.kiln, "inspect", art])
            ok = i.returncode == 0 and "partition (profile lavapipe)" in i.stdout and "on cpu" not in i.stdout.split("partition (profile", 1)[-1].split("\n\n")[0]
            report(ok, c + " inspect shows the partition", "" if ok else i.stderr.strip()[-200:])
            if can_run:
                check_runs(a.kiln, art, d, tmp, a.threshold, c + " lavapipe", env)
                if c == "llama-tiny":
                    check_profile(a.kiln, art, c, env)
            check_matmul_norms(a, c, d, tmp, can_run, env)

        # 2. Profiles lacking an op.
        for c, op in (("gemma3-tiny", "kiln.rope"), ("bert-tiny", "kiln.layer_norm")):
            if c not in cases:
                continue
            d = os.path.join(a.data, c)
            prof = os.path.join(tmp, "no-" + op + ".json")
            json.dump(lavapipe_profile(name="lavapipe-no-" + op.split(".")[1], unavailable_ops=[op]), open(prof, "w"))
            art = os.path.join(tmp, c + "-no-op.kiln")
            p = compile_case(a.kiln, d, art, prof)
            head, groups = partition_lines(p.stderr)
            named = [g for g in groups if g.startswith(op + " x ") and ("-> cpu: profile lacks " + op + " (") in g]
            report(p.returncode == 0 and bool(named), "%s without %s: report names the ops" % (c, op),
                   " | ".join([head or ""] + groups) if p.returncode == 0 else p.stderr.strip()[-300:])
            if p.returncode == 0:
                i = run([a.kiln, "inspect", art])
                report(i.returncode == 0 and ("%s x " % op) in i.stdout and "profile lacks " + op in i.stdout,
                       "%s without %s: inspect lists them" % (c, op))
                if can_run:
                    check_runs(a.kiln, art, d, tmp, a.threshold, "%s no %s" % (c, op.split(".")[1]), env)
            s = compile_case(a.kiln, d, art + ".strict", prof, ["--strict"])
            last = [l for l in s.stderr.splitlines() if l.startswith("kiln: ")]
            report(s.returncode == 1 and len(last) == 1 and "--strict" in last[0] and op in last[0]
                   and "profile lacks " + op in last[0],
                   "%s without %s: --strict exits 1 with the list" % (c, op), last[0][:200] if last else s.stderr[-200:])
        # --strict with nothing to fall back: fine.
        if "llama-tiny" in cases:
            s = compile_case(a.kiln, os.path.join(a.data, "llama-tiny"), os.path.join(tmp, "strict.kiln"), "lavapipe",
                             ["--strict", "--dump-dir", os.path.join(tmp, "dump")])
            report(s.returncode == 0, "llama-tiny lavapipe --strict passes", s.stderr.strip()[-200:] if s.returncode else "")
            dot = os.path.join(tmp, "dump", "partition.dot")
            report(os.path.exists(dot) and open(dot).read().startswith("digraph"), "--dump-dir writes partition.dot")

        # 3. generic.
        if "gemma3-tiny" in cases:
            d = os.path.join(a.data, "gemma3-tiny")
            art = os.path.join(tmp, "gemma3-generic.kiln")
            p = compile_case(a.kiln, d, art, "generic")
            head, groups = partition_lines(p.stderr)
            report(p.returncode == 0 and head is not None and all(": " in g for g in groups), "gemma3-tiny generic compiles",
                   " | ".join([head or ""] + groups) if p.returncode == 0 else p.stderr.strip()[-300:])
            if p.returncode == 0 and can_run:
                check_runs(a.kiln, art, d, tmp, a.threshold, "gemma3-tiny generic", env)

        # 4. Bad profiles.
        if cases:
            d = os.path.join(a.data, cases[0])
            p = compile_case(a.kiln, d, os.path.join(tmp, "x.kiln"), os.path.join(tmp, "missing.json"))
            report(p.returncode == 1 and "missing.json" in p.stderr, "missing profile file: exit 1 naming it")
            bad = os.path.join(tmp, "bad.json")
            json.dump(lavapipe_profile(subgroup_size="eight"), open(bad, "w"))
            p = compile_case(a.kiln, d, os.path.join(tmp, "x.kiln"), bad)
            report(p.returncode == 1 and "bad.json" in p.stderr and "subgroup_size" in p.stderr,
                   "bad profile key: exit 1 naming file and key", p.stderr.strip()[-200:])
            for key, value, needle in [("unavailable_ops", ["kiln.ropee"], "unknown op 'kiln.ropee'"),
                                       ("unavailable_dtypes", ["f8"], "unknown dtype 'f8'")]:
                json.dump(lavapipe_profile(**{key: value}), open(bad, "w"))
                p = compile_case(a.kiln, d, os.path.join(tmp, "x.kiln"), bad)
                report(p.returncode == 1 and "bad.json" in p.stderr and key in p.stderr and needle in p.stderr,
                       "profile %s %s: exit 1 naming it" % (key, value[0]), p.stderr.strip()[-200:])
            check_unreadable_profiles(a.kiln, d, tmp)
            p = run([a.kiln, "compile", d, "-o", os.path.join(tmp, "x.kiln"), "--device-profile", "lavapipe"])
            report(p.returncode == 2, "--device-profile without --target vulkan: usage error")
            if can_run:  # what `kiln devices --json` writes is a profile the compiler reads
                dev = run([a.kiln, "devices", "--json", "--device", "0"], env=env, timeout=120)
                mine = os.path.join(tmp, "this-device.json")
                open(mine, "w").write(dev.stdout)
                p = compile_case(a.kiln, d, os.path.join(tmp, "x.kiln"), mine)
                report(dev.returncode == 0 and p.returncode == 0, "kiln devices --json output as --device-profile",
                       (dev.stderr + p.stderr).strip()[-200:])
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
