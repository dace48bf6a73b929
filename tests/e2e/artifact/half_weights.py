#!/usr/bin/env python3
"""f16 / bf16 weights read in place by the CPU kernels (passes/DeviceWeights.h foldCpuWeightConverts), end to end.

usage: half_weights.py KILN DATA_DIR [--threshold 1e-4] [--cases a,b]

For every reference case in DATA_DIR, its weights converted to f16 and to bf16 (round to nearest even, the
config's dtype set to match; HF checkpoints ship so):
1. kiln compile --report folds every weight convert into its CPU reader: "cpu weights: N ... converts
   folded ..., 0 weight converts left" with N > 0, and `kiln inspect --json` lists no kiln.convert dispatch
   whose input is a weight (converts of activations, e.g. position ids, stay);
2. kiln run (the case's chunk schedule, one chunk: the GEMV and the tiled-sgemm paths of the matmul) matches
   `kiln eval` of the same 16-bit model (the interpreter converts each weight to f32 first) within
   --threshold: the same f32 values reach f32 arithmetic, so the bound is f32 round-off.
   f16 also compiles --no-fuse (norm weights read by elementwise kernels).
3. kiln compile --weights bf16 of the f32 case (the conversion at compile time) matches kiln eval --weights
   bf16 of it (one chunk), --weights f32 of the f16 model leaves no weight convert at all, and --weights q8_0
   of the f16 model (quantized from widened views of the 16-bit tensors) matches kiln eval --weights q8_0 of it
   (with quant_weights.py's exception for one activation rounding flip).
The error of the 16-bit model against the Hugging Face f32 reference is printed for information.
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import array
import json
import os
import re
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from artifact_cases import RESULTS, report, run  # noqa: E402
from quant_weights import run_matches_eval  # noqa: E402


def to_half(values, dtype):
    """The f32 values as F16 or BF16 bytes, rounded to nearest even."""
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)
    out = array.array("H")
    for bits in struct.unpack("<%dI" % len(values), values.tobytes()):
        out.append(((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF)
    return out.tobytes()


def half_model(case_dir, dtype, dest):
    """A copy of the case's model directory with every F32 weight stored as `dtype` (F16 / BF16)."""
    os.makedirs(dest)
    for name in os.listdir(case_dir):
        if name not in ("model.safetensors", "reference.safetensors", "config.json"):
            src = os.path.join(case_dir, name)
            if os.path.isfile(src):
                shutil.copy(src, dest)
    config = json.load(open(os.path.join(case_dir, "config.json")))
    config["dtype"] = {"F16": "float16", "BF16": "bfloat16"}[dtype]
    json.dump(config, open(os.path.join(dest, "config.json"), "w"), indent=1)
    tensors = {}
    for name, (dt, shape, values) in st.read(os.path.join(case_dir, "model.safetensors")).items():
        tensors[name] = (dtype, shape, to_half(values, dtype)) if dt == "F32" else (dt, shape, values)
    st.write(os.path.join(dest, "model.safetensors"), tensors)


def output_of(path, name):
    return st.read(path)[name][2]


def check_compile(kiln, model, artifact, extra, label):
    p = run([kiln, "compile", model, "-o", artifact, "--max-context", "32", "--max-batch", "2", "--report"] + extra)
    if not report(p.returncode == 0, label + ": compile", p.stderr.strip()[-300:] if p.returncode else ""):
        return False
    m = re.search(r"cpu weights: (\d+) f16/bf16 weight converts folded .*, (\d+) weight converts left", p.stderr)
    report(m is not None and int(m.group(1)) > 0 and m.group(2) == "0", label + ": weight converts folded",
           m.group(0) if m else "no 'cpu weights' line")
    q = run([kiln, "inspect", artifact, "--json"])
    if report(q.returncode == 0, label + ": inspect --json", q.stderr.strip()[-200:]):
        manifest = json.loads(q.stdout)["manifest"]
        buffers = manifest["buffers"]
        converts = [d for d in manifest["dispatches"] if d.get("kind") == "KERNEL" and
                    manifest["kernels"][d["kernel"]]["op"] == "kiln.convert"]
        of_weights = [d["location"] for d in converts if buffers[d["buffers"][0]].get("kind") == "WEIGHT"]
        report(not of_weights, label + ": no kiln.convert of a weight dispatched",
               "%d converts of activations; of weights: %s" % (len(converts), " ".join(of_weights)))
    return True


def check_weights_flag(kiln, case_dir, f16_model, tmp, threshold):
    """--weights at compile time and in kiln eval (item 3 above)."""
    case_name = os.path.basename(case_dir)
    name = st.output_name(json.load(open(os.path.join(case_dir, "case.json"))))
    inputs = os.path.join(case_dir, "reference.safetensors")
    artifact, out, oracle = (os.path.join(tmp, n) for n in ("w.kiln", "w.safetensors", "w-eval.safetensors"))
    p = run([kiln, "compile", case_dir, "-o", artifact, "--max-context", "32", "--max-batch", "2", "--weights", "bf16"])
    ok = p.returncode == 0 and re.search(r"--weights bf16: \d+ float tensors converted", p.stderr)
    if not report(ok, case_name + " --weights bf16: compile", "" if ok else p.stderr.strip()[-300:]):
        return
    p = run([kiln, "run", artifact, "--inputs", inputs, "--outputs", out])
    q = run([kiln, "eval", case_dir, "--weights", "bf16", "--inputs", inputs, "--outputs", oracle])
    ok = p.returncode == 0 and q.returncode == 0
    if report(ok, case_name + " --weights bf16: run, eval", "" if ok else (p.stderr + q.stderr).strip()[-300:]):
        err = st.rel_err(output_of(out, name), output_of(oracle, name))
        report(err <= threshold, case_name + " --weights bf16: run == eval --weights bf16", "rel err %.3e" % err)
    if os.path.isdir(f16_model):
        p = run([kiln, "compile", f16_model, "-o", artifact, "--max-context", "32", "--max-batch", "2",
                 "--weights", "f32"])
        report(p.returncode == 0 and "cpu weights:" not in p.stderr, case_name + " f16 --weights f32: no converts",
               p.stderr.strip()[-200:] if p.returncode else "")
        # q8_0 from the 16-bit checkpoint, quantized from widened views of it (no f32 copy is held).
        p = run([kiln, "compile", f16_model, "-o", artifact, "--max-context", "32", "--max-batch", "2",
                 "--weights", "q8_0"])
        if report(p.returncode == 0, case_name + " f16 --weights q8_0: compile", p.stderr.strip()[-300:]):
            p = run([kiln, "run", artifact, "--inputs", inputs, "--outputs", out])
            q = run([kiln, "eval", f16_model, "--weights", "q8_0", "--inputs", inputs, "--outputs", oracle])
            ok = p.returncode == 0 and q.returncode == 0
            if report(ok, case_name + " f16 --weights q8_0: run, eval", "" if ok else (p.stderr + q.stderr).strip()[-300:]):
                err = st.rel_err(output_of(out, name), output_of(oracle, name))
                passed, note = run_matches_eval(err, threshold, True)
                report(passed, case_name + " f16 --weights q8_0: run == eval --weights q8_0", "rel err %.3e%s" % (err, note))


def main():
    a = st.case_arguments().parse_args()
    kiln = a.kiln
    with tempfile.TemporaryDirectory() as tmp:
        for case_name in st.case_names(a.data, a.cases):
            case_dir = os.path.join(a.data, case_name)
            case = json.load(open(os.path.join(case_dir, "case.json")))
            name = st.output_name(case)
            inputs = os.path.join(case_dir, "reference.safetensors")
            hf = output_of(inputs, name)
            chunks = ",".join(map(str, case["chunks"])) if case["task"] == "causal-lm" else None
            for dtype in ("F16", "BF16"):
                label = "%s %s" % (case_name, dtype.lower())
                model = os.path.join(tmp, "%s-%s" % (case_name, dtype))
                half_model(case_dir, dtype, model)
                oracle = os.path.join(tmp, "eval.safetensors")
                p = run([kiln, "eval", model] + st.reference_io(case_dir, oracle, chunks))
                if not report(p.returncode == 0, label + ": eval", p.stderr.strip()[-300:]):
                    continue
                want = output_of(oracle, name)
                for variant, extra in [("fused", [])] + ([("unfused", ["--no-fuse"])] if dtype == "F16" else []):
                    artifact = os.path.join(tmp, "%s-%s-%s.kiln" % (case_name, dtype, variant))
                    if not check_compile(kiln, model, artifact, extra, "%s %s" % (label, variant)):
                        continue
                    for schedule in ([chunks, None] if chunks else [None]):
                        out = os.path.join(tmp, "out.safetensors")
                        p = run([kiln, "run", artifact] + st.reference_io(case_dir, out, schedule))
                        what = "%s %s: run %s == eval" % (label, variant, schedule or "one chunk")
                        if p.returncode != 0:
                            report(False, what, p.stderr.strip()[-300:])
                            continue
                        got = output_of(out, name)
                        err = st.rel_err(got, want)
                        report(err <= a.threshold, what, "rel err %.3e; vs HF f32 %.3e" % (err, st.rel_err(got, hf)))
        for case_name in st.case_names(a.data, a.cases):
            check_weights_flag(kiln, os.path.join(a.data, case_name), os.path.join(tmp, "%s-F16" % case_name), tmp,
                               a.threshold)
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
