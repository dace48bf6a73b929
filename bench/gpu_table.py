"""The table of bench/gpu.sh: kiln beside llama.cpp on one GPU, from the JSON files of one device call.

usage: python3 bench/gpu_table.py RESULTS_DIR MODELS_DIR
RESULTS_DIR holds gpu.txt (the card), bandwidth.txt (copy bandwidth), and per format FMT and round R:
kiln-FMT-rR.json (kiln bench --json), llama-kvf32-FMT-rR.json and llama-default-FMT-rR.json (llama-bench -o json).
MODELS_DIR holds tl-FMT.inspect.json (kiln inspect --json): the weight bytes a decode step reads, for the
bandwidth limit. Per format and test: the median over rounds of each system's median tokens/s over a round's 5
repetitions (kiln's "median", llama-bench's samples_ts: one slow repetition, e.g. a clock ramp, moves a mean by a
third), the range over rounds, and kiln / llama.cpp (> 1: kiln is faster).
"""
import glob, json, os, re, statistics, sys


# kiln formats whose llama.cpp peer is another format's GGUF: f32 weights with `kiln compile --matmul-precision
# f16` (prefill on tensor cores) beside llama.cpp's f32 model (whose Vulkan matmuls round to f16 as well).
PEER_FORMAT = {"f32mm16": "f32"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def kiln_runs(res, fmt):
    out = {}
    for path in sorted(glob.glob(os.path.join(res, f"kiln-{fmt}-r*.json"))):
        doc = load(path)
        for t in (doc or {}).get("tests", []):
            out.setdefault(t["test"], []).append(t.get("median", t["mean"]))
    return out


def llama_runs(res, name, fmt):
    out = {}
    for path in sorted(glob.glob(os.path.join(res, f"{name}-{fmt}-r*.json"))):
        for t in load(path) or []:
            test = f"pp{t['n_prompt']}" if t["n_gen"] == 0 else f"tg{t['n_gen']}"
            samples = t.get("samples_ts") or [t["avg_ts"]]
            out.setdefault(test, []).append(statistics.median(samples))
    return out


def weight_bytes(models, fmt):
    doc = load(os.path.join(models, f"tl-{fmt}.inspect.json"))
    if not doc:
        return None
    return sum(int(b.get("max_bytes", 0)) for b in doc["manifest"]["buffers"] if b.get("kind") == "WEIGHT")


def cell(values):
    if not values:
        return "-", None
    med = statistics.median(values)
    return (f"{med:,.1f} ({min(values):,.1f}..{max(values):,.1f})" if len(values) > 1 else f"{med:,.1f}"), med


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def main():
    res, models = sys.argv[1], sys.argv[2]
    gpu = open(os.path.join(res, "gpu.txt")).read().strip() if os.path.exists(os.path.join(res, "gpu.txt")) else "?"
    bw = None
    if os.path.exists(os.path.join(res, "bandwidth.txt")):
        m = re.search(r"copy_bandwidth_tb_s ([0-9.]+)", open(os.path.join(res, "bandwidth.txt")).read())
        bw = float(m.group(1)) * 1e12 if m else None
    fmts = sorted({re.sub(r"^kiln-(.*)-r\d+\.json$", r"\1", os.path.basename(p))
                   for p in glob.glob(os.path.join(res, "kiln-*-r*.json"))})
    print(f"GPU: {gpu}; copy bandwidth {bw / 1e12:.2f} TB/s" if bw else f"GPU: {gpu}")
    print("TinyLlama-1.1B shapes, tokens/s: median over rounds (range) of each round's median repetition; kiln bench -p 512 -n 128 -r 5 vs "
          "llama-bench -ngl 99 -p 512 -n 128 -r 5 (KV f32 + flash attention off, and its defaults)\n")
    print("| weights | test | kiln | llama.cpp KV f32, fa off | llama.cpp defaults | kiln / llama.cpp (fa off) "
          "| kiln / llama.cpp (defaults) | kiln % of bandwidth limit |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for fmt in fmts:
        peer = PEER_FORMAT.get(fmt, fmt)
        k, l32, ldef = kiln_runs(res, fmt), llama_runs(res, "llama-kvf32", peer), llama_runs(res, "llama-default", peer)
        wb = weight_bytes(models, fmt)
        for test in sorted(k, key=lambda t: (t[:2] != "pp", t)):
            (ks, km), (ls, lm), (ds, dm) = cell(k[test]), cell(l32.get(test)), cell(ldef.get(test))
            limit = "-"
            if test.startswith("tg") and wb and bw and km:
                limit = f"{100 * km * wb / bw:.0f} % (limit {bw / wb:,.0f})"
            print(f"| {fmt} | {test} | {ks} | {ls} | {ds} | {ratio(km, lm)} | {ratio(km, dm)} | {limit} |")


if __name__ == "__main__":
    main()
