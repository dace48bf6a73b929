#!/usr/bin/env python3
"""kiln's own kernels give byte-identical outputs for every thread count: every reference case in tests/data,
compiled fused and --no-fuse, run with its chunk schedule at 1 thread and then at 2 and 4 threads with
KILN_THREADS_GRAIN=1 (every kernel that has a range is split as finely as the threads allow, so the tiny test
shapes are split too) and at 3 threads with the kernels' own grains, all with KILN_BLAS_THREADS=1 (OpenBLAS's
threaded GEMM is not reproducible across thread counts on every CPU: 3 threads on a 2-core AMD EPYC differ from 1
by about 3e-7); with OpenBLAS at 3 threads too, the output is within 1e-5 of the 1-thread one. The 1-thread output
must also be within 1e-4 of the Hugging Face reference (so the comparison is of outputs that mean something). The
same holds for the weights' memory: with KILN_HUGE_PAGES=0 (the file mapping) the output is the one of the default
(a copy in transparent huge pages, which KILN_VERBOSE=1 reports wherever the kernel has them).

usage: threads.py KILN DATA_DIR
Prints one line per case and variant and a closing 'N passed, N failed' line; exits 1 on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

RUNS = [(2, "1"), (4, "1"), (3, None)]  # (threads, KILN_THREADS_GRAIN)


def thp_available():
    try:
        mode = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return False
    return "[never]" not in mode


def run(kiln, art, case_dir, chunks, out, threads, grain, huge_pages=None, blas_threads="1"):
    env = dict(os.environ)
    for var in ("KILN_THREADS_GRAIN", "KILN_HUGE_PAGES", "KILN_BLAS_THREADS"):
        env.pop(var, None)
    if grain:
        env["KILN_THREADS_GRAIN"] = grain
    if blas_threads:
        env["KILN_BLAS_THREADS"] = blas_threads
    env["KILN_VERBOSE"] = "1"
    if huge_pages is not None:
        env["KILN_HUGE_PAGES"] = huge_pages
    cmd = [kiln, "run", art, "--inputs", os.path.join(case_dir, "reference.safetensors"), "--outputs", out,
           "--threads", str(threads)]
    if chunks:
        cmd += ["--chunks", ",".join(map(str, chunks))]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return "kiln run --threads %d: exit %d: %s" % (threads, p.returncode, p.stderr.strip())
    said = "in transparent huge pages" in p.stderr
    if said != (huge_pages != "0" and thp_available()):
        return "KILN_HUGE_PAGES=%s: KILN_VERBOSE %s the huge pages: %s" % (
            huge_pages or "(unset)", "reports" if said else "does not report", p.stderr.strip()[-200:])
    return None


def check_case(kiln, case_dir, flags, tmp):
    case = json.load(open(os.path.join(case_dir, "case.json")))
    chunks = case.get("chunks")
    art = os.path.join(tmp, "model.kiln")
    p = subprocess.run([kiln, "compile", case_dir, "-o", art] + flags, capture_output=True, text=True)
    if p.returncode != 0:
        return "compile: exit %d: %s" % (p.returncode, p.stderr.strip())
    base = os.path.join(tmp, "t1.safetensors")
    err = run(kiln, art, case_dir, chunks, base, 1, None)
    if err:
        return err
    name = "logits" if case["task"] == "causal-lm" else "last_hidden_state"
    ref = st.read(os.path.join(case_dir, "reference.safetensors"))[name]
    got = st.read(base)[name]
    rel = st.rel_err(got[2], ref[2])
    if got[1] != ref[1] or rel > 1e-4:
        return "1 thread: %s rel err %.3e vs the reference" % (got[1], rel)
    want = open(base, "rb").read()
    for threads, grain in RUNS:
        out = os.path.join(tmp, "t%d.safetensors" % threads)
        err = run(kiln, art, case_dir, chunks, out, threads, grain)
        if err:
            return err
        if open(out, "rb").read() != want:
            return "%d threads (grain %s): output differs from 1 thread" % (threads, grain or "kernel's")
    out = os.path.join(tmp, "blas3.safetensors")
    err = run(kiln, art, case_dir, chunks, out, 3, None, blas_threads=None)
    if err:
        return err
    rel = st.rel_err(st.read(out)[name][2], got[2])
    if rel > 1e-5:
        return "3 threads, OpenBLAS's too: rel err %.3e vs 1 thread (bound 1e-5)" % rel
    out = os.path.join(tmp, "mapped.safetensors")
    err = run(kiln, art, case_dir, chunks, out, 1, None, huge_pages="0")
    if err:
        return err
    if open(out, "rb").read() != want:
        return "KILN_HUGE_PAGES=0: output differs from the weights in huge pages"
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    kiln, data = sys.argv[1], sys.argv[2]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case_name in sorted(os.listdir(data)):
            case_dir = os.path.join(data, case_name)
            if not os.path.exists(os.path.join(case_dir, "case.json")):
                continue
            for variant, flags in (("fused", []), ("no-fuse", ["--no-fuse"])):
                err = check_case(kiln, case_dir, flags, tmp)
                print("%-4s %s %s%s" % ("ok" if not err else "FAIL", case_name, variant, ": " + err if err else ""))
                passed += err is None
                failed += err is not None
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
