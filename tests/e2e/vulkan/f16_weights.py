#!/usr/bin/env python3
"""f16 / bf16 weights read in place by the Vulkan matmuls and gathers (passes/DeviceWeights.h), end to end.

usage: f16_weights.py KILN DATA_DIR [--threshold 1e-4] [--no-run]

For llama-tiny's config with random f16 and bf16 weights (kiln synth --dtype):
1. kiln compile --target vulkan --device-profile lavapipe reports the folded converts (one per matmul /
   gather / norm weight) and nothing on the cpu; kiln inspect lists no kiln.convert dispatch;
2. on lavapipe, every chunk schedule (2,5,1,1,1,1,1, one chunk, token by token) computes what the cpu
   artifact of the same model computes (whose kernels widen the 16-bit weights in place too): the same f32
   values reach f32 arithmetic, so the bound is f32 round-off (--threshold).
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vulkan_cases as vc  # noqa: E402
from vulkan_cases import report, run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import st  # noqa: E402


def main():
    a = st.case_arguments(cases=False, no_run=True).parse_args()
    can_run, env = vc.lavapipe_run(a)
    case = os.path.join(a.data, "llama-tiny")
    inputs = os.path.join(case, "reference.safetensors")
    seq = st.read(inputs)["input_ids"][1][-1]
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("f16", "bf16"):
            model = os.path.join(tmp, "llama-" + dtype)
            p = run([a.kiln, "synth", os.path.join(case, "config.json"), "-o", model, "--seed", "3", "--dtype", dtype])
            if not report(p.returncode == 0, dtype + ": synth", p.stderr.strip()[-300:]):
                continue
            vk, cpu = os.path.join(tmp, dtype + "-vk.kiln"), os.path.join(tmp, dtype + "-cpu.kiln")
            p = run([a.kiln, "compile", model, "-o", vk, "--target", "vulkan", "--device-profile", "lavapipe"])
            folded = re.search(r"device weights: (\d+) f16/bf16 weight converts folded", p.stderr)
            head, groups = vc.partition_lines(p.stderr)
            # llama-tiny: 2 layers x (7 projections + 2 norms) + the final norm, the LM head, the embedding gather
            ok = p.returncode == 0 and folded is not None and int(folded.group(1)) == 21
            report(ok, dtype + ": vulkan compile folds the 21 matmul / gather / norm weight converts",
                   folded.group(0) if folded else p.stderr.strip()[-400:])
            report(p.returncode == 0 and head is not None and " 0 on cpu" in head, dtype + ": nothing on the cpu",
                   head or "")
            i = run([a.kiln, "inspect", vk])
            converts = re.findall(r"^\s+\d+\s+kiln\.convert\s+vulkan\s+(\S+)", i.stdout, re.M)
            ok = i.returncode == 0 and not converts
            report(ok, dtype + ": no convert kernel left", " ".join(sorted(set(converts))))
            q = run([a.kiln, "compile", model, "-o", cpu])
            if not report(q.returncode == 0, dtype + ": cpu compile", q.stderr.strip()[-300:]) or not can_run:
                continue
            ref_out = os.path.join(tmp, dtype + "-cpu.safetensors")
            r = run([a.kiln, "run", cpu, "--inputs", inputs, "--outputs", ref_out])
            if not report(r.returncode == 0, dtype + ": cpu run", r.stderr.strip()[-300:]):
                continue
            ref = st.read(ref_out)["logits"][2]
            for chunks in ("2,5,1,1,1,1,1", None, ",".join(["1"] * seq)):
                out = os.path.join(tmp, dtype + "-vk.safetensors")
                r = run([a.kiln, "run", vk] + st.reference_io(case, out, chunks), env=env)
                label = "%s: vulkan [%s] == cpu" % (dtype, chunks or "one chunk")
                if not report(r.returncode == 0, label, r.stderr.strip()[-300:]):
                    continue
                err = st.rel_err(st.read(out)["logits"][2], ref)
                report(err <= a.threshold, label, "rel err %.3e" % err)
    print("%d passed, %d failed" % tuple(vc.RESULTS))
    return 1 if vc.RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
