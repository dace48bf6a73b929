#!/usr/bin/env python3
"""kiln-split-weights end to end: weights larger than the device's maxStorageBufferRange become row chunks.

usage: split_weights.py KILN DATA_DIR [--threshold 1e-3] [--no-run]

With lavapipe-64k.json (lavapipe with maxStorageBufferRange 64 KiB) the [512, 64] f32 embeddings / LM heads
(128 KiB) of llama-tiny (untied), gemma3-tiny and gpt2-tiny (tied) no longer fit one buffer:
1. kiln compile --target vulkan --max-context 16 reports each split ("split model.embed_tokens.weight
   [512, 64] f32 (128.0 KiB) into 2 chunks of <= 256 rows ...") and "0 on cpu" (nothing falls back), and
   --strict passes; kiln inspect shows the split in its partition section, the chunk buffers with their
   rows, and no op on the cpu;
2. kiln run on lavapipe matches the Hugging Face reference within --threshold for every chunk schedule
   (the case's, one chunk, token by token);
3. --synthetic-weights: the split vulkan artifact computes what the unsplit cpu artifact of the same seed
   computes (the chunks hold the same slices of the generated tensor);
4. --target cpu is unchanged: nothing is split.
5. Quantized row chunks: with maxStorageBufferRange 32 KiB, llama-tiny --weights q8_0's embedding and LM head
   ([512, 64] q8_0, 34.0 KiB) are split into q8_0 chunks of 256 rows (17.0 KiB: the chunks stay quantized),
   nothing falls back to the cpu, and on lavapipe kiln run matches `kiln eval --weights q8_0 --target vulkan`
   within --threshold for the case's chunk schedule and one chunk; with --synthetic-weights the quantized
   chunks hold the rows of the unsplit matrix (the split artifact computes what the 64 KiB one, unsplit, does).
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vulkan_cases as vc  # noqa: E402
from vulkan_cases import report, run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import st  # noqa: E402

PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lavapipe-64k.json")
# case -> the weights that must be split (tied models: one weight for the gather and the LM head)
CASES = {
    "llama-tiny": ["model.embed_tokens.weight", "lm_head.weight"],
    "gemma3-tiny": ["model.embed_tokens.weight"],
    "gpt2-tiny": ["transformer.wte.weight"],
}


def compile_split(kiln, case_dir, out, extra=()):
    return run([kiln, "compile", case_dir, "-o", out, "--target", "vulkan", "--device-profile", PROFILE,
                "--max-context", "16"] + list(extra))


def split_lines(stderr):
    return [l[len("kiln compile: "):] for l in stderr.splitlines() if l.startswith("kiln compile: split ")]


def check_quantized_chunks(a, tmp, env, can_run):
    """Item 5: q8_0 row chunks under a 32 KiB buffer limit."""
    profile = json.load(open(PROFILE))
    profile.update(name="lavapipe-32k", max_storage_buffer_range=32768)
    path = os.path.join(tmp, "lavapipe-32k.json")
    json.dump(profile, open(path, "w"))
    d = os.path.join(a.data, "llama-tiny")
    case = json.load(open(os.path.join(d, "case.json")))
    art = os.path.join(tmp, "q8.kiln")
    flags = ["--target", "vulkan", "--device-profile", path, "--max-context", "16", "--weights", "q8_0"]
    p = run([a.kiln, "compile", d, "-o", art] + flags)
    if not report(p.returncode == 0, "q8_0 32 KiB: compile", p.stderr.strip()[-300:]):
        return
    lines = split_lines(p.stderr)
    for w in ("model.embed_tokens.weight", "lm_head.weight"):
        want = "split %s [512, 64] q8_0 (34.0 KiB) into 2 chunks of <= 256 rows (17.0 KiB)" % w
        report(any(l.startswith(want) for l in lines), "q8_0 32 KiB: %s in quantized chunks" % w, " | ".join(lines))
    head, groups = vc.partition_lines(p.stderr)
    report(head is not None and " 0 on cpu" in head, "q8_0 32 KiB: nothing on the cpu", (head or "") + " | ".join(groups))
    if not can_run:
        return
    inputs = os.path.join(d, "reference.safetensors")
    for chunks in (",".join(map(str, case["chunks"])), None):
        out, oracle = os.path.join(tmp, "q8.out.safetensors"), os.path.join(tmp, "q8.eval.safetensors")
        extra = ["--chunks", chunks] if chunks else []
        r = run([a.kiln, "run", art, "--inputs", inputs, "--outputs", out] + extra, env=env)
        e = run([a.kiln, "eval", d, "--weights", "q8_0", "--target", "vulkan", "--inputs", inputs, "--outputs", oracle]
                + extra)
        what = "q8_0 32 KiB: run == eval --weights q8_0 (%s)" % (chunks or "one chunk")
        if not report(r.returncode == 0 and e.returncode == 0, what, (r.stderr + e.stderr).strip()[-300:]):
            continue
        err = st.rel_err(st.read(out)["logits"][2], st.read(oracle)["logits"][2])
        report(err <= a.threshold, what, "rel err %.3e" % err)
    # Synthetic weights: split (32 KiB) and unsplit (64 KiB: the q8_0 matrices fit) on lavapipe compute the same.
    split, whole = os.path.join(tmp, "q8-syn-32k.kiln"), os.path.join(tmp, "q8-syn-64k.kiln")
    p = run([a.kiln, "compile", d, "-o", split, "--synthetic-weights", "5"] + flags)
    q = run([a.kiln, "compile", d, "-o", whole, "--synthetic-weights", "5"] + flags[:3] + [PROFILE] + flags[4:])
    if not report(p.returncode == 0 and q.returncode == 0 and len(split_lines(p.stderr)) > len(split_lines(q.stderr)),
                  "q8_0 synthetic: split and unsplit artifacts compile", (p.stderr + q.stderr).strip()[-300:]):
        return
    outs = []
    for art_path in (split, whole):
        out = art_path + ".out.safetensors"
        r = run([a.kiln, "run", art_path, "--inputs", inputs, "--outputs", out], env=env)
        outs.append(st.read(out)["logits"][2] if r.returncode == 0 else None)
        report(r.returncode == 0, "q8_0 synthetic: run " + os.path.basename(art_path), r.stderr.strip()[-300:])
    if all(o is not None for o in outs):
        err = st.rel_err(outs[0], outs[1])
        report(err <= a.threshold, "q8_0 synthetic: split == unsplit", "rel err %.3e" % err)


def main():
    a = st.case_arguments(threshold=1e-3, cases=False, no_run=True).parse_args()
    can_run, env = vc.lavapipe_run(a)
    with tempfile.TemporaryDirectory() as tmp:
        for c, weights in CASES.items():
            d = os.path.join(a.data, c)
            art = os.path.join(tmp, c + ".kiln")
            p = compile_split(a.kiln, d, art)
            head, groups = vc.partition_lines(p.stderr)
            if not report(p.returncode == 0 and head is not None, c + " compile 64 KiB profile",
                          (head or "") if p.returncode == 0 else "exit %d: %s" % (p.returncode, p.stderr.strip()[-400:])):
                continue
            lines = split_lines(p.stderr)
            for w in weights:
                want = "split %s [512, 64] f32 (128.0 KiB) into 2 chunks of <= 256 rows (64.0 KiB) for " \
                       "maxStorageBufferRange 64.0 KiB" % w
                report(any(l.startswith(want) for l in lines), "%s: report splits %s" % (c, w), " | ".join(lines))
            report(len(lines) == len(weights), c + ": nothing else split", " | ".join(lines))
            report(" 0 on cpu" in head and not groups, c + ": nothing on the cpu", head + " | ".join(groups))
            s = compile_split(a.kiln, d, art + ".strict", ["--strict"])
            report(s.returncode == 0, c + ": --strict passes", s.stderr.strip()[-300:] if s.returncode else "")
            i = run([a.kiln, "inspect", art])
            part = i.stdout.split("partition (profile", 1)[-1].split("\n\n")[0]
            ok = (i.returncode == 0 and "split weights" in part and all("split " + w in part for w in weights)
                  and "on cpu" not in part and "on the cpu" not in part)
            report(ok, c + ": inspect shows the split, nothing on the cpu", "" if ok else part[-400:])
            chunks = re.findall(r"\[rows (\d+):(\d+)\]", i.stdout)
            report(("0", "256") in chunks and ("256", "512") in chunks, c + ": inspect lists the chunk buffers",
                   str(sorted(set(chunks))))
            if can_run:
                vc.check_runs(a.kiln, art, d, tmp, a.threshold, c + " 64k", env)

        # 3. Synthetic weights: the chunks are slices of the same generated tensors.
        c = "llama-tiny"
        d = os.path.join(a.data, c)
        syn_vk, syn_cpu = os.path.join(tmp, "syn-vk.kiln"), os.path.join(tmp, "syn-cpu.kiln")
        p = compile_split(a.kiln, d, syn_vk, ["--synthetic-weights", "5"])
        q = run([a.kiln, "compile", d, "-o", syn_cpu, "--max-context", "16", "--synthetic-weights", "5"])
        ok = p.returncode == 0 and q.returncode == 0 and len(split_lines(p.stderr)) == 2
        report(ok, "synthetic: split vulkan and cpu artifacts compile",
               "" if ok else (p.stderr + q.stderr).strip()[-300:])
        if ok and can_run:
            inputs = os.path.join(d, "reference.safetensors")
            outs = []
            for art, e in ((syn_vk, env), (syn_cpu, None)):
                out = art + ".out.safetensors"
                r = run([a.kiln, "run", art, "--inputs", inputs, "--outputs", out], env=e)
                outs.append(st.read(out)["logits"] if r.returncode == 0 else None)
                if r.returncode != 0:
                    report(False, "synthetic: run " + os.path.basename(art), r.stderr.strip()[-300:])
            if all(o is not None for o in outs):
                err = st.rel_err(outs[0][2], outs[1][2])
                report(err <= a.threshold, "synthetic: split vulkan == unsplit cpu", "rel err %.3e" % err)

        # 4. The cpu target splits nothing.
        cpu = os.path.join(tmp, "cpu.kiln")
        p = run([a.kiln, "compile", d, "-o", cpu, "--max-context", "16"])
        i = run([a.kiln, "inspect", cpu])
        report(p.returncode == 0 and not split_lines(p.stderr) and "[rows " not in i.stdout,
               "cpu target: nothing split", p.stderr.strip()[-200:] if p.returncode else "")
        check_quantized_chunks(a, tmp, env, can_run)
    print("%d passed, %d failed" % tuple(vc.RESULTS))
    return 1 if vc.RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
