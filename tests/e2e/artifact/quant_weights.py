#!/usr/bin/env python3
"""--weights q8_0 / q4_0 (block-quantized matrices, support/Quantize.h) end to end on the CPU.

usage: quant_weights.py KILN DATA_DIR [--threshold 1e-4] [--cases a,b] [--table]

For every reference case in DATA_DIR and each format:
1. kiln compile --weights FMT quantizes matrices ("--weights FMT: N matrices quantized", N > 0) and
   `kiln inspect --json` shows their buffers as Q8_0 / Q4_0 with weight_layout rows8-blocks32-quants-then-scales;
2. kiln run (the case's chunk schedule: the int8 GEMV for chunks of <= 8 rows; and one chunk: the int8 GEMM
   when the prompt is longer) matches `kiln eval --weights FMT` with the same chunks within --threshold (the
   interpreter computes with the dequantized weights and quantizes every matmul row's activations per block as
   the kernels do, so the bound is f32 round-off). One exception is allowed and said: f32 round-off upstream
   (e.g. attention's summation order) can move one activation across a q8 rounding boundary (odds ~1e-5 per
   element), which changes that dot product by one activation step: such a run passes within FLIP_BOUND
   (2e-2; a wrong scale, block or nibble order gives errors near 1) and prints "activation rounding flip";
3. the error against the Hugging Face f32 reference and, for causal LMs, the share of positions whose argmax
   token agrees with the reference's, printed (with --table: as a Markdown table, README's).
Then on the first case: --threads 1 and 2 (every kernel split, KILN_THREADS_GRAIN=1) give the same bytes;
--cpu x86-64,x86-64-v3,native runs each object (VNNI / AVX2 / generic dot products, by hiding features; the
chunk schedule and one chunk: the int8 GEMM with VNNI, else the sgemm path) within --threshold of eval; --keep-f16 lm_head,embed keeps those matrices f16 and still matches eval.
4. For every case and format, --target vulkan (profile lavapipe) places every reader of a quantized weight on
   the device (the report's "quantized weights: N readers on vulkan (...), 0 on cpu") and, on lavapipe
   (skipped without it), kiln run matches `kiln eval --target vulkan` (activations quantized only in chunks of
   <= 8 rows: the Vulkan prefill tiles take f32 activations) within 1e-3 (the same flip exception where a run
   has such chunks) for the case's chunk schedule and one chunk. The report says the GEMVs take no integer dot
   product on lavapipe ("not accelerated").
5. On the first causal case, each format: compiled for a lavapipe profile that claims the integer dot product
   accelerated, every quantized matmul's GEMV takes it (the report's "integer dot product: the GEMVs of N of the
   N ..."), and on lavapipe (which has the feature) kiln run writes the same bytes as the float GEMVs' artifact.
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from artifact_cases import RESULTS, report, run  # noqa: E402

FORMATS = ("q8_0", "q4_0")
COMPILE = ["--max-context", "32", "--max-batch", "2"]


def case_info(case_dir):
    case = json.load(open(os.path.join(case_dir, "case.json")))
    causal = case["task"] == "causal-lm"
    chunks = ",".join(map(str, case["chunks"])) if causal else None
    return st.output_name(case), chunks


def output(path, name):
    return st.read(path)[name]


def argmax_agreement(got, ref, shape):
    """Share of positions (rows of the last dim) whose argmax agrees."""
    v = shape[-1]
    rows = len(ref) // v
    same = 0
    for r in range(rows):
        a, b = got[r * v:(r + 1) * v], ref[r * v:(r + 1) * v]
        same += max(range(v), key=a.__getitem__) == max(range(v), key=b.__getitem__)
    return same / rows


def run_and_eval(kiln, artifact, case_dir, fmt, chunks, tmp, extra_eval=(), env=None):
    """kiln run's and kiln eval --weights FMT's outputs (paths), or None with the failure reported."""
    inputs = os.path.join(case_dir, "reference.safetensors")
    out, oracle = os.path.join(tmp, "run.safetensors"), os.path.join(tmp, "eval.safetensors")
    sched = st.chunks_flag(chunks)
    p = run([kiln, "run", artifact, "--inputs", inputs, "--outputs", out] + sched) if env is None else \
        run_env([kiln, "run", artifact, "--inputs", inputs, "--outputs", out] + sched, env)
    q = run([kiln, "eval", case_dir, "--weights", fmt, "--inputs", inputs, "--outputs", oracle] + sched +
            list(extra_eval))
    if p.returncode or q.returncode:
        report(False, "%s %s: run / eval" % (os.path.basename(case_dir), fmt), (p.stderr + q.stderr).strip()[-300:])
        return None
    return out, oracle


def run_env(cmd, env):
    import subprocess
    e = dict(os.environ)
    e.update(env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=e)


def check_inspect(kiln, artifact, fmt, label):
    q = run([kiln, "inspect", artifact, "--json"])
    if not report(q.returncode == 0, label + ": inspect --json", q.stderr.strip()[-200:]):
        return
    buffers = json.loads(q.stdout)["manifest"]["buffers"]
    quant = [b for b in buffers if b.get("dtype") == fmt.upper()]
    ok = quant and all(b.get("weight_layout") == "rows8-blocks32-quants-then-scales" for b in quant)
    report(bool(ok), label + ": manifest dtype + layout", "%d %s buffers" % (len(quant), fmt.upper()))
    text = run([kiln, "inspect", artifact]).stdout
    report("rows8-blocks32-quants-then-scales" in text and fmt in text, label + ": kiln inspect shows the layout")


FLIP_BOUND = 2e-2


def run_matches_eval(err, threshold, quantized_rows):
    """(passed, note): within threshold, or within FLIP_BOUND where the run quantizes activations."""
    if err <= threshold:
        return True, ""
    if quantized_rows and err <= FLIP_BOUND:
        return True, " (activation rounding flip: activations quantized to int8; within %.0e)" % FLIP_BOUND
    return False, ""


def has_decode_rows(schedule, total_rows):
    """Whether a chunk schedule ("2,5,1") or one chunk of total_rows runs a chunk of <= 8 rows (Vulkan: the
    quantized GEMV, the only reader there that quantizes activations)."""
    sizes = [int(c) for c in schedule.split(",")] if schedule else [total_rows]
    return any(c <= 8 for c in sizes)


def check_case(kiln, case_dir, fmt, tmp, threshold, rows):
    name, chunks = case_info(case_dir)
    label = "%s %s" % (os.path.basename(case_dir), fmt)
    artifact = os.path.join(tmp, "%s.kiln" % fmt)
    p = run([kiln, "compile", case_dir, "-o", artifact, "--weights", fmt] + COMPILE)
    m = re.search(r"--weights %s: (\d+) matrices quantized" % fmt, p.stderr)
    if not report(p.returncode == 0 and m and int(m.group(1)) > 0, label + ": compile quantizes",
                  m.group(0) if m else p.stderr.strip()[-300:]):
        return
    check_inspect(kiln, artifact, fmt, label)
    _, ref_shape, ref = output(os.path.join(case_dir, "reference.safetensors"), name)
    for schedule in ([chunks, None] if chunks else [None]):
        paths = run_and_eval(kiln, artifact, case_dir, fmt, schedule, tmp)
        if not paths:
            continue
        got, want = output(paths[0], name)[2], output(paths[1], name)[2]
        err = st.rel_err(got, want)
        hf = st.rel_err(got, ref)
        agree = argmax_agreement(got, ref, ref_shape) if name == "logits" else None
        ok, note = run_matches_eval(err, threshold, True)
        report(ok, "%s: run %s == eval" % (label, schedule or "one chunk"),
               "rel err %.3e%s; vs HF f32 %.3e%s" % (err, note, hf, "" if agree is None else "; argmax %.0f%%" % (100 * agree)))
        if schedule == chunks:
            rows.append((os.path.basename(case_dir), fmt, hf, agree))


def check_threads(kiln, case_dir, tmp):
    name, chunks = case_info(case_dir)
    artifact = os.path.join(tmp, "t.kiln")
    if run([kiln, "compile", case_dir, "-o", artifact, "--weights", "q4_0"] + COMPILE).returncode:
        report(False, "threads: compile")
        return
    inputs = os.path.join(case_dir, "reference.safetensors")
    outs = []
    for threads in ("1", "2"):
        out = os.path.join(tmp, "t%s.safetensors" % threads)
        p = run_env([kiln, "run", artifact, "--inputs", inputs, "--outputs", out, "--threads", threads] +
                    st.chunks_flag(chunks), {"KILN_THREADS_GRAIN": "1"})
        outs.append(open(out, "rb").read() if p.returncode == 0 else None)
    report(outs[0] is not None and outs[0] == outs[1], "q4_0 --threads 1 == --threads 2 (grain 1), bytes")


def check_targets(kiln, case_dir, tmp, threshold):
    """Each object of --cpu x86-64,x86-64-v3,native: vpdpbusd (where the host has VNNI), AVX2, generic."""
    name, chunks = case_info(case_dir)
    for fmt in FORMATS:
        artifact = os.path.join(tmp, "multi-%s.kiln" % fmt)
        p = run([kiln, "compile", case_dir, "-o", artifact, "--weights", fmt, "--cpu", "x86-64,x86-64-v3,native"] +
                COMPILE)
        if not report(p.returncode == 0, "%s --cpu x86-64,x86-64-v3,native: compile" % fmt,
                      p.stderr.strip()[-200:] if p.returncode else ""):
            continue
        for label, hidden in (("native", ""), ("avx2 object", "avx512vnni,avxvnni"), ("generic object", "avx2")):
            for schedule in (chunks, None):  # the GEMV; one chunk: the int8 GEMM (VNNI) or the sgemm path
                paths = run_and_eval(kiln, artifact, case_dir, fmt, schedule, tmp,
                                     env={"KILN_CPU_DISABLE": hidden} if hidden else {})
                if paths:
                    got, want = output(paths[0], name), output(paths[1], name)
                    err = st.rel_err(got[2], want[2])
                    ok, note = run_matches_eval(err, threshold, True)
                    report(ok, "%s %s: run %s == eval" % (fmt, label, schedule or "one chunk"),
                           "rel err %.3e%s" % (err, note))


def check_keep_f16(kiln, case_dir, tmp, threshold):
    name, chunks = case_info(case_dir)
    artifact = os.path.join(tmp, "keep.kiln")
    keep = ["--keep-f16", "lm_head,embed"]
    p = run([kiln, "compile", case_dir, "-o", artifact, "--weights", "q8_0"] + keep + COMPILE)
    m = re.search(r"\d+ kept f16 \([^)]*\)", p.stderr)
    if not report(p.returncode == 0 and m, "q8_0 --keep-f16 lm_head,embed: compile",
                  m.group(0) if m else p.stderr.strip()[-300:]):
        return
    buffers = json.loads(run([kiln, "inspect", artifact, "--json"]).stdout)["manifest"]["buffers"]
    report(any(b.get("dtype") == "F16" for b in buffers), "--keep-f16: f16 weight buffers")
    paths = run_and_eval(kiln, artifact, case_dir, "q8_0", chunks, tmp, extra_eval=keep)
    if paths:
        err = st.rel_err(output(paths[0], name)[2], output(paths[1], name)[2])
        ok, note = run_matches_eval(err, threshold, True)
        report(ok, "q8_0 --keep-f16: run == eval --keep-f16", "rel err %.3e%s" % (err, note))


LAVAPIPE = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vulkan"))
from vulkan_cases import lavapipe_profile  # noqa: E402

VULKAN_THRESHOLD = 1e-3
NO_IDOT_LAVAPIPE = "integer dot product: none on lavapipe (its packed 4x8-bit dot product is not accelerated)"
IDOT_LINE = re.compile(r"integer dot product: the GEMVs of (\d+) of the (\d+) q8_0 / q4_0 matmuls")
VULKAN_READERS = re.compile(r"quantized weights: (\d+) readers on vulkan \(([^)]*)\), (\d+) on cpu")


def check_vulkan(kiln, case_dir, fmt, tmp):
    """--target vulkan (profile lavapipe): every reader of a quantized weight (the matmuls, the embedding
    gather) on the device, as the report says; on lavapipe (skipped without it) run == eval --target vulkan
    within 1e-3 for the case's chunk schedule (the quantized GEMV for chunks of <= 8 rows) and one chunk (the
    dequantizing tiles when the prompt is longer)."""
    name, chunks = case_info(case_dir)
    label = "%s %s --target vulkan" % (os.path.basename(case_dir), fmt)
    artifact = os.path.join(tmp, "vk.kiln")
    p = run([kiln, "compile", case_dir, "-o", artifact, "--target", "vulkan", "--device-profile", "lavapipe",
             "--weights", fmt] + COMPILE)
    m = VULKAN_READERS.search(p.stderr)
    ok = p.returncode == 0 and m and int(m.group(1)) > 0 and m.group(3) == "0"
    if not report(bool(ok), label + ": quantized readers on the device",
                  m.group(0) if m else p.stderr.strip()[-300:]):
        return
    report(NO_IDOT_LAVAPIPE in p.stderr, label + ": no integer dot product on lavapipe (not accelerated)")
    if not os.path.exists(LAVAPIPE):
        print("skip %s: run on lavapipe (no %s)" % (label, LAVAPIPE))
        return
    _, ref_shape, _ = output(os.path.join(case_dir, "reference.safetensors"), name)
    for schedule in ([chunks, None] if chunks else [None]):
        paths = run_and_eval(kiln, artifact, case_dir, fmt, schedule, tmp, extra_eval=["--target", "vulkan"],
                             env={"VK_DRIVER_FILES": LAVAPIPE})
        if paths:
            err = st.rel_err(output(paths[0], name)[2], output(paths[1], name)[2])
            ok, note = run_matches_eval(err, VULKAN_THRESHOLD, has_decode_rows(schedule, ref_shape[1]))
            report(ok, "%s: lavapipe run %s == eval" % (label, schedule or "one chunk"),
                   "rel err %.3e%s (%.0e)" % (err, note, VULKAN_THRESHOLD))


def check_vulkan_integer_dot(kiln, case_dir, fmt, tmp):
    """The GEMVs with the packed integer dot product (a profile claiming it accelerated) write the same bytes on
    lavapipe as the float GEMVs: the same exact integer sums."""
    name, chunks = case_info(case_dir)
    label = "%s %s --target vulkan, integer dot product" % (os.path.basename(case_dir), fmt)
    profile = os.path.join(tmp, "lavapipe-idot.json")
    with open(profile, "w") as f:
        json.dump(lavapipe_profile(name="lavapipe-idot", integer_dot_product_accelerated=True), f)
    outs = []
    for prof, art in (("lavapipe", "vk-float.kiln"), (profile, "vk-idot.kiln")):
        p = run([kiln, "compile", case_dir, "-o", os.path.join(tmp, art), "--target", "vulkan", "--device-profile",
                 prof, "--weights", fmt] + COMPILE)
        if not report(p.returncode == 0, "%s: compile (%s)" % (label, os.path.basename(prof)),
                      p.stderr.strip()[-300:] if p.returncode else ""):
            return
        outs.append(os.path.join(tmp, art + ".safetensors"))
    m = IDOT_LINE.search(p.stderr)
    if not report(bool(m) and m.group(1) == m.group(2) and int(m.group(1)) > 0, label + ": every quantized GEMV",
                  m.group(0) if m else p.stderr.strip()[-300:]):
        return
    if not os.path.exists(LAVAPIPE):
        print("skip %s: run on lavapipe (no %s)" % (label, LAVAPIPE))
        return
    sched = st.chunks_flag(chunks)
    for art, out in zip(("vk-float.kiln", "vk-idot.kiln"), outs):
        q = run_env([kiln, "run", os.path.join(tmp, art), "--inputs", os.path.join(case_dir, "reference.safetensors"),
                     "--outputs", out] + sched, {"VK_DRIVER_FILES": LAVAPIPE})
        if not report(q.returncode == 0, "%s: lavapipe run %s" % (label, art), q.stderr.strip()[-300:] if q.returncode else ""):
            return
    a, b = output(outs[0], name)[2], output(outs[1], name)[2]
    report(a.tobytes() == b.tobytes(),
           "%s: lavapipe run %s == the float GEMVs' run, bytes" % (label, chunks or "one chunk"))


def print_table(rows):
    print("\n| case | format | max rel err vs HF f32 | argmax agreement with HF f32 |")
    print("|---|---|---|---|")
    for case, fmt, hf, agree in rows:
        print("| %s | %s | %.2e | %s |" % (case, fmt, hf, "-" if agree is None else "%.0f %%" % (100 * agree)))


def main():
    ap = st.case_arguments()
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    cases = [os.path.join(a.data, c) for c in st.case_names(a.data, a.cases)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case_dir in cases:
            for fmt in FORMATS:
                check_case(a.kiln, case_dir, fmt, tmp, a.threshold, rows)
                check_vulkan(a.kiln, case_dir, fmt, tmp)
        causal = [c for c in cases if case_info(c)[1]]
        if causal:
            check_threads(a.kiln, causal[0], tmp)
            check_targets(a.kiln, causal[0], tmp, a.threshold)
            check_keep_f16(a.kiln, causal[0], tmp, a.threshold)
            for fmt in FORMATS:
                check_vulkan_integer_dot(a.kiln, causal[0], fmt, tmp)
    if a.table:
        print_table(rows)
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
