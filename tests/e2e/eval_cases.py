#!/usr/bin/env python3
"""kiln eval against the Hugging Face references in tests/data, for every case and chunk schedule.

usage: eval_cases.py KILN DATA_DIR [--threshold 1e-4] [--no-fused]

For each case: the schedule of case.json, one chunk, and token by token (causal LMs), each with the
transformers 5.x config.json and with its 4.x twin config.v4.json, each on the imported IR and on the
fused IR (`kiln eval --fuse`: the differential test of the fusion passes). Prints one line per run and a
closing 'N passed, N failed' line; exits 1 on any failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def run_case(kiln, case_dir, model_dir, chunks, tmp, threshold, fuse=False):
    out = os.path.join(tmp, "out.safetensors")
    cmd = [kiln, "eval", model_dir] + st.reference_io(case_dir, out, chunks) + (["--fuse"] if fuse else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return False, "exit %d: %s" % (proc.returncode, proc.stderr.strip())
    return st.compare_output(out, case_dir, threshold)


def main():
    ap = st.case_arguments(cases=False)
    ap.add_argument("--no-fused", action="store_true", help="skip the kiln eval --fuse runs")
    args = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case_name in st.case_names(args.data):
            case_dir = os.path.join(args.data, case_name)
            case = json.load(open(os.path.join(case_dir, "case.json")))
            # The 4.x twin: same weights, config.v4.json as config.json.
            v4 = os.path.join(tmp, case_name + "-v4")
            os.makedirs(v4, exist_ok=True)
            shutil.copy(os.path.join(case_dir, "config.v4.json"), os.path.join(v4, "config.json"))
            link = os.path.join(v4, "model.safetensors")
            if not os.path.exists(link):
                os.symlink(os.path.abspath(os.path.join(case_dir, "model.safetensors")), link)
            for style, model_dir in (("5.x", case_dir), ("4.x", v4)):
                for chunks in st.schedules(case):
                    for fuse in (False,) if args.no_fused else (False, True):
                        ok, msg = run_case(args.kiln, case_dir, model_dir, chunks, tmp, args.threshold, fuse)
                        label = st.schedule_label(chunks)
                        print("%-4s %-14s %-4s %-7s %-16s %s" % ("ok" if ok else "FAIL", case_name, style,
                                                                "fused" if fuse else "imported", label, msg))
                        sys.stdout.flush()
                        passed, failed = passed + ok, failed + (not ok)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
