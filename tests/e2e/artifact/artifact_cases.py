#!/usr/bin/env python3
"""kiln compile -> kiln run against the Hugging Face references in tests/data, plus kiln inspect, plus the
CLI's handling of bad artifacts and bad compile arguments.

usage: artifact_cases.py KILN DATA_DIR [--threshold 1e-4] [--cases a,b]

For each case, fused (default) and --no-fuse: compile (small --max-context so it is fast), run the case.json schedule, one chunk and token
by token (causal LMs) and compare with the reference; inspect must succeed and name every dispatch. Then
every corruption of one compiled artifact (truncations, flipped bytes in header / table / each section,
another version, another magic) must make `kiln inspect` and `kiln run` exit 1 with one line on stderr,
never a signal. Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import st  # noqa: E402

RESULTS = [0, 0]


def report(ok, what, msg=""):
    print("%-4s %-48s %s" % ("ok" if ok else "FAIL", what, msg))
    RESULTS[0 if ok else 1] += 1
    return ok


def run(cmd, timeout=600):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check_run(kiln, artifact, case_dir, chunks, tmp, threshold, label):
    out = os.path.join(tmp, "out.safetensors")
    p = run([kiln, "run", artifact] + st.reference_io(case_dir, out, chunks))
    if p.returncode != 0:
        return report(False, label, "exit %d: %s" % (p.returncode, p.stderr.strip()))
    ok, msg = st.compare_output(out, case_dir, threshold)
    return report(ok, label, msg)


def expect_clean_failure(cmd, code, label, needle=None):
    p = run(cmd)
    # Progress lines ("kiln compile: ...") may precede it; the failure itself is one "kiln: " line, the last.
    lines = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("kiln compile: ")]
    ok = p.returncode == code and len(lines) == 1 and lines[0].startswith("kiln: ")
    ok = ok and (needle is None or needle in lines[0])
    msg = "exit %d: %s" % (p.returncode, " | ".join(lines)[:160])
    return report(ok, label, msg)


def corruptions(data):
    """(label, bytes, expected message fragment or None) for one artifact."""
    count = struct.unpack_from("<I", data, 12)[0]
    table = {}
    for i in range(count):
        kind, _, off, size, _ = struct.unpack_from("<IIQQQ", data, 64 + 32 * i)
        table[kind] = (off, size)
    out = []
    for n in sorted({0, 4, 8, 63, 64, 100, 64 + 32 * count, table[1][0] + 1, table[2][0] + 3, table[3][0] + 5,
                     len(data) // 2, len(data) - 1}):
        out.append(("truncated to %d bytes" % n, data[:n], None))
    for i in (0, 7, 8, 12, 16, 24, 40, 63, 64, 72, 80, 88, 96 + 8, 64 + 32 * count - 1):
        b = bytearray(data)
        b[i] ^= 0x41
        out.append(("header/table byte %d flipped" % i, bytes(b), None))
    names = {1: "manifest", 2: "code", 3: "weights"}
    for kind, (off, size) in sorted(table.items()):
        for rel in (0, size // 3, size - 1):
            if size == 0:
                continue
            b = bytearray(data)
            b[off + rel] ^= 0x01
            out.append(("%s byte %d flipped" % (names[kind], rel), bytes(b),
                        "corrupted: %s section checksum mismatch" % names[kind]))
    b = bytearray(data)
    struct.pack_into("<I", b, 8, 99)
    out.append(("format version 99", bytes(b), "format version 99, this runtime reads "))
    b = bytearray(data)
    b[0:8] = b"GGUF\0\0\0\0"
    out.append(("wrong magic", bytes(b), "not a kiln artifact"))
    out.append(("a text file", b"hello, world\n", "not a kiln artifact"))
    return out


def main():
    args = st.case_arguments().parse_args()
    kiln = args.kiln
    with tempfile.TemporaryDirectory() as tmp:
        first_artifact = None
        for case_name in st.case_names(args.data, args.cases):
            case_dir = os.path.join(args.data, case_name)
            case = json.load(open(os.path.join(case_dir, "case.json")))
            # Fused (the default) and --no-fuse: the differential test of every fusion.
            for variant, extra in (("fused", []), ("unfused", ["--no-fuse"])):
                name = "%s %s" % (case_name, variant)
                artifact = os.path.join(tmp, "%s-%s.kiln" % (case_name, variant))
                dump = os.path.join(tmp, "%s-%s-dump" % (case_name, variant))
                p = run([kiln, "compile", case_dir, "-o", artifact, "--max-context", "32", "--max-batch", "2",
                         "--dump-dir", dump] + extra)
                last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
                if not report(p.returncode == 0, name + ": compile", last):
                    continue
                dumps = ["00-imported.mlir"] + (["01-fused.mlir"] if not extra else [])
                report(all(os.path.exists(os.path.join(dump, d)) for d in dumps), name + ": --dump-dir " + " ".join(dumps))
                first_artifact = first_artifact or artifact
                for chunks in st.schedules(case):
                    check_run(kiln, artifact, case_dir, chunks, tmp, args.threshold,
                              "%s: run %s" % (name, st.schedule_label(chunks)))
                p = run([kiln, "inspect", artifact])
                ok = p.returncode == 0 and "dispatches" in p.stdout and "kiln artifact, format version " in p.stdout
                ok = ok and ("kv cache" in p.stdout) == (case["task"] == "causal-lm")
                report(ok, name + ": inspect", "exit %d, %d lines" % (p.returncode, len(p.stdout.splitlines())))

        if first_artifact:
            data = open(first_artifact, "rb").read()
            bad = os.path.join(tmp, "bad.kiln")
            ref = os.path.join(args.data, "llama-tiny", "reference.safetensors")
            for label, blob, needle in corruptions(data):
                with open(bad, "wb") as f:
                    f.write(blob)
                expect_clean_failure([kiln, "inspect", bad], 1, "inspect: " + label, needle)
                expect_clean_failure([kiln, "run", bad, "--inputs", ref, "--outputs", os.path.join(tmp, "o.st")], 1,
                                     "run: " + label, needle)

        # Compile argument errors: exit 2 for usage, 1 for bad input, one line each.
        llama = os.path.join(args.data, "llama-tiny")
        out = os.path.join(tmp, "x.kiln")
        expect_clean_failure([kiln, "compile", llama], 2, "compile: no -o")
        expect_clean_failure([kiln, "compile", llama, "-o", out, "--max-context", "0"], 2, "compile: --max-context 0")
        expect_clean_failure([kiln, "compile", llama, "-o", out, "--max-batch", "x"], 2, "compile: --max-batch x")
        expect_clean_failure([kiln, "compile", llama, "-o", out, "--target", "tpu"], 2, "compile: --target tpu")
        expect_clean_failure([kiln, "compile", llama, "-o", out, "--max-context", "100000"], 1,
                             "compile: --max-context too large", "max_position_embeddings")
        expect_clean_failure([kiln, "compile", os.path.join(tmp, "nope"), "-o", out], 1, "compile: no model dir")
        expect_clean_failure([kiln, "compile", llama, "-o", os.path.join(tmp, "no", "dir", "x.kiln"),
                              "--max-context", "8"], 1, "compile: unwritable output")
        expect_clean_failure([kiln, "inspect", os.path.join(tmp, "missing.kiln")], 1, "inspect: missing file")
        expect_clean_failure([kiln, "inspect"], 2, "inspect: no file")
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
