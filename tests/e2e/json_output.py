#!/usr/bin/env python3
"""kiln inspect --json and kiln bench --json: one JSON document on stdout, agreeing with the text output.

usage: json_output.py KILN DATA_DIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, summary  # noqa: E402


def kiln_json(kiln, *args):
    p = subprocess.run([kiln, *args], capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"kiln {' '.join(args)}: exit {p.returncode}: {p.stderr[-300:]!r}")
    try:
        return json.loads(p.stdout)  # the whole of stdout is one document
    except json.JSONDecodeError as e:
        check(False, f"kiln {' '.join(args)}: stdout is not one JSON document ({e})")
        return {}


def check_inspect(kiln, artifact, architecture):
    doc = kiln_json(kiln, "inspect", artifact, "--json")
    text = subprocess.run([kiln, "inspect", artifact], capture_output=True, text=True).stdout
    m = doc.get("manifest", {})
    check(m.get("architecture") == architecture, f"inspect --json architecture {m.get('architecture')}")
    version = re.search(r"format version (\d+)", text)
    check(version and doc.get("format_version") == int(version.group(1)), "inspect --json format_version")
    check(doc.get("file_bytes") == os.path.getsize(artifact), "inspect --json file_bytes")
    check(doc.get("checksums_verified") is True, "inspect --json checksums_verified")
    kinds = [s.get("kind") for s in doc.get("sections", [])]
    check("manifest" in kinds and "weights" in kinds, f"inspect --json sections {kinds}")
    for s in doc.get("sections", []):
        check(re.search(rf"offset +{s['offset']} .*xxh64 {s['xxh64']}", text) is not None,
              f"inspect --json section {s} is in the text output")
    check(m.get("kernels") and all("spirv" not in k and "spirv_bytes" in k for k in m["kernels"]),
          "inspect --json kernels carry spirv_bytes, not the SPIR-V")
    check(int(m.get("max_context", 0)) > 0 and m.get("provenance", {}).get("git_revision"),
          "inspect --json limits and provenance")
    unverified = kiln_json(kiln, "inspect", artifact, "--json", "--no-verify")
    check(unverified.get("checksums_verified") is False, "inspect --json --no-verify: checksums_verified false")


def check_bench(kiln, artifact, causal):
    doc = kiln_json(kiln, "bench", artifact, "-p", "4", "-n", "2", "-r", "2", "--json", "--threads", "1")
    tests = {t.get("test"): t for t in doc.get("tests", [])}
    want = ["pp4", "tg2"] if causal else ["enc4x1"]
    check(sorted(tests) == sorted(want), f"bench --json tests {sorted(tests)}, expected {want}")
    for name, t in tests.items():
        check(t.get("mean", 0) > 0 and t.get("stddev", -1) >= 0 and t.get("wall_ms", 0) > 0,
              f"bench --json {name}: {t}")
        check(causal or t.get("tokens_per_second", {}).get("mean", 0) > 0, f"bench --json {name} tokens/s")
        samples = t.get("samples", [])
        check(len(samples) == 2 and min(samples) > 0 and min(samples) <= t.get("median", 0) <= max(samples),
              f"bench --json {name}: samples {samples} (one per repetition, around the median)")
    check(doc.get("threads") == 1 and doc.get("batch") == 1 and doc.get("repetitions") == 2,
          f"bench --json threads / batch / repetitions: {doc}")
    check(doc.get("session_bytes", 0) > 0 and doc.get("peak_rss_mib", 0) > 0, "bench --json memory")


def main():
    kiln, data = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        for case, architecture, causal in (("llama-tiny", "LlamaForCausalLM", True),
                                           ("bert-tiny", "BertModel", False)):
            artifact = os.path.join(tmp, case + ".kiln")
            p = subprocess.run([kiln, "compile", os.path.join(data, case), "-o", artifact], capture_output=True,
                               text=True, timeout=600)
            check(p.returncode == 0, f"compile {case}: {p.stderr[-300:]}")
            if p.returncode == 0:
                check_inspect(kiln, artifact, architecture)
                check_bench(kiln, artifact, causal)
    return summary("2 models")


if __name__ == "__main__":
    sys.exit(main())
