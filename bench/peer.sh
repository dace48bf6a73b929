#!/usr/bin/env bash
# kiln beside its peer llama.cpp, on the same machine, the same model and the same dtype, run alternately.
# The model: bench/configs/tinyllama-1.1b.json with kiln synth's random weights (as bench/run.sh), compiled by
# kiln (fused, --max-context 1024) and converted to GGUF by bench/peers/to_gguf.py (same bytes, q/k rows
# permuted to llama.cpp's rope layout). llama.cpp: release v0.5.0 as prebuilt by @node-llama-cpp/linux-x64
# 3.22.1 (CPU backend picked at load), its own llama-bench, built by bench/peers/setup.sh.
# Per dtype:
#   1. check (CHECK=1): kiln run and llama.cpp (bench/peers/bin/llama-logits) evaluate the same 8 token ids;
#      their logits must agree (max|llama.cpp - kiln| / max|kiln| <= CHECK_TOL: by default 1e-4 for f32,
#      seen 2.9e-6; 5e-3 for f16, seen 1.2e-3; 3e-2 for bf16), else the script stops;
#   2. ROUNDS times, alternately: kiln bench -p 512 -n 128 -r REPS --threads THREADS, then
#      llama-bench -p 512 -n 128 -r REPS -t THREADS -ctk f32 -ctv f32 -fa off -ngl 0 (KV cache f32 and no
#      flash attention, as kiln: f16 KV / flash attention change the numerics by ~1e-3), then
#      (ALL_LOGITS=1) llama-logits --bench: pp512 computing all 512 rows of logits as kiln does
#      (llama-bench's pp512 computes only the last row: ~6 % less work at these shapes);
#   3. a table: test, kiln t/s, llama.cpp t/s, kiln / llama.cpp (> 1: kiln is faster), peak RSS of each, and
#      for decode the weight bytes streamed per second (GGUF bytes x tokens/s: an upper bound, the embedding
#      table is in the GGUF but only one row of it is read) of each beside the machine's memory read at THREADS
#      threads (bench/membw.c, best of 7 passes of a 1 GiB stream, measured first).
# Both run pp512 = one 512-token prompt into an empty cache, tg128 = 128 single-token decodes from an empty
# cache, mean +- stddev over REPS after one warm-up.
# Then, per round (f32; median and range (min .. max) over the repetitions, ratio of medians):
#   4. (DEPTH > 0) a decode at depth: kiln bench -p 0 -n DEPTH_TG -d DEPTH beside llama-bench -p 0 -n DEPTH_TG
#      -d DEPTH (-ctk f32 -ctv f32 -fa off), DEPTH_TG decodes after an untimed DEPTH-token prompt (the
#      attention share grows with the depth);
#   5. (ENCODER=1) the encoder: bench/configs/all-minilm-l6-v2.json with random weights (kiln synth --seed 1),
#      compiled --max-batch 1 --max-context 512 and converted by to_gguf.py (BertModel), at ENC_TOKENS tokens:
#      kiln bench --batch 1 -p N -n 0 beside llama-bench -embd 1 -p N -n 0 (llama.cpp's defaults otherwise);
#   6. a second table of those; the header names the CPU and OPENBLAS_CORETYPE (kiln's f32 matmuls: OpenBLAS).
# usage: bench/peer.sh [WORK_DIR]      (default build/bench, shared with bench/run.sh; ~9 GB per f32 model)
# Environment: KILN (build/bin/kiln), THREADS (2), REPS (5), ROUNDS (1), DTYPES ("f32"; "" skips TinyLlama; "f32 f16" adds the
# f16 model: llama.cpp then rounds the activations to f16 for its f16 matmuls, kiln multiplies in f32, so
# f16 is the same storage, not the same arithmetic; q8_0 / q4_0: the QBASE model (f16) compiled by kiln with
# --weights q8_0|q4_0 and quantized for llama.cpp by its own llama-quantize --pure (every matrix in that type,
# as kiln's; llama-quantize would otherwise keep output.weight in Q6_K), from the same weights: both use
# llama.cpp's block numerics, and both quantize decode activations to 8 bits), QBASE (f16), CHECK (1),
# CHECK_TOL (by dtype, see 1.; q8_0 5e-2, q4_0 1e-1: llama.cpp's activation blocks keep an f16 scale, kiln's
# an f32 one, and prefill multiplies kiln's dequantized weights in f32),
# ALL_LOGITS (1), PPTG (1; 0 skips 2., e.g. to time only 4.), DEPTH (1024; 0 skips 4.), DEPTH_TG (32), ENCODER (1; 0 skips 5.), ENC_TOKENS ("128 512").
# ROUNDS=0 runs only the check.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/bin/kiln}
WORK=${1:-build/bench}
THREADS=${THREADS:-2}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-1}
DTYPES=${DTYPES-f32}
PPTG=${PPTG:-1}
CHECK=${CHECK:-1}
ALL_LOGITS=${ALL_LOGITS:-1}
QBASE=${QBASE:-f16}
DEPTH=${DEPTH:-1024}
DEPTH_TG=${DEPTH_TG:-32}
ENCODER=${ENCODER:-1}
ENC_TOKENS=${ENC_TOKENS:-"128 512"}
P=bench/peers
for tool in llama-bench llama-logits llama-quantize; do
  [ -x "$P/bin/$tool" ] || { echo "peer.sh: $P/bin/$tool is missing: run bench/peers/setup.sh" >&2; exit 1; }
done
mkdir -p "$WORK"
LOG="$WORK/peer-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$LOG"
echo "# kiln vs llama.cpp, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, tree $(git rev-parse --short HEAD)," \
  "$KILN built $(date -u -r "$KILN" +%Y-%m-%dT%H:%MZ)," \
  "llama.cpp $("$P/bin/llama-bench" --version 2>&1 | grep -m1 '^version' | sed 's/^version: //')," \
  "threads $THREADS, $REPS repetitions, $ROUNDS round(s), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "CPU $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "# logs in $LOG"
# decode reads every weight once per token: its ceiling is this machine's memory-read bandwidth at THREADS threads
if ${CC:-cc} -O2 -march=native -pthread bench/membw.c -o "$LOG/membw" 2>"$LOG/membw.err"; then
  read -r bw_med bw_min bw_max < <("$LOG/membw" "$THREADS")
  echo "# memory read (bench/membw.c, $THREADS threads): best $bw_max GB/s (median of 7 $bw_med; $bw_min .. $bw_max)"
  bw_med=$bw_max # the ceiling beside the decodes: the best pass (the host is shared; a median understates it)
fi

RESULTS="$LOG/results.tsv" # dtype round system test mean sd peak_rss_kib
: > "$RESULTS"
SAMPLES="$LOG/samples.tsv" # model round system test median min max (tokens/s)
: > "$SAMPLES"
CONTEXT=$(( DEPTH + DEPTH_TG > 1024 ? DEPTH + DEPTH_TG : 1024 ))
summarize() { # MODEL ROUND SYSTEM TEST < kiln bench --json | llama-bench -o json -> a SAMPLES line
  python3 -c '
import json, statistics, sys
model, rnd, system, test = sys.argv[1:5]
doc = json.load(sys.stdin)
if isinstance(doc, list):  # llama-bench: one object per test, samples_ts = tokens/s per repetition
    ts = doc[0]["samples_ts"]
    med, lo, hi = statistics.median(ts), min(ts), max(ts)
else:  # kiln bench: tokens_per_second for encoders, the test itself (t/s) for causal LMs
    t = doc["tests"][0]
    t = t.get("tokens_per_second", t)
    med, lo, hi = t["median"], t["min"], t["max"]
print(f"{model}\t{rnd}\t{system}\t{test}\t{med}\t{lo}\t{hi}")' "$@" >> "$SAMPLES"
}
rows() { # SYSTEM DTYPE ROUND RSS_KIB < markdown table -> RESULTS lines for its pp/tg rows
  awk -F'|' -v sys="$1" -v dt="$2" -v r="$3" -v rss="$4" '{
    for (i = 2; i < NF; i++) { t = $i; gsub(/ /, "", t)
      if (t ~ /^(pp|tg)[0-9]+$/) { v = $(i + 1); sub(/^ */, "", v); split(v, a, / *± */)
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dt, r, sys, t, a[1] + 0, a[2] + 0, rss } } }' >> "$RESULTS"
}

for dtype in $DTYPES; do
  case $dtype in q8_0|q4_0) base=$QBASE; weights=(--weights "$dtype") ;; *) base=$dtype; weights=() ;; esac
  dir="$WORK/tinyllama-1.1b-$base"
  [ -f "$dir/model.safetensors" ] || "$KILN" synth bench/configs/tinyllama-1.1b.json -o "$dir" --seed 1 --dtype "$base" >&2
  art="$WORK/tinyllama-1.1b-$dtype-fused-c$CONTEXT.kiln"
  [ "$art" -nt "$KILN" ] || "$KILN" compile "$dir" -o "$art" --max-context "$CONTEXT" "${weights[@]}" >&2 # older than kiln: stale
  gguf="$WORK/tinyllama-1.1b-$base.gguf"
  [ -f "$gguf" ] && [ "$gguf" -nt "$dir/model.safetensors" ] || python3 "$P/to_gguf.py" "$dir" "$gguf"
  if [ "$base" != "$dtype" ]; then # llama.cpp's own quantizer, every matrix in the one type (as kiln)
    qgguf="$WORK/tinyllama-1.1b-$dtype.gguf"
    [ -f "$qgguf" ] && [ "$qgguf" -nt "$gguf" ] ||
      "$P/bin/llama-quantize" --pure "$gguf" "$qgguf" "$(echo "$dtype" | tr a-z A-Z)" "$THREADS" > "$LOG/quantize-$dtype.log" 2>&1
    gguf=$qgguf
  fi
  printf '%s\t%s\n' "$dtype" "$(stat -c %s "$gguf")" >> "$LOG/bytes.tsv" # weight bytes read per decode token

  if [ "$CHECK" = 1 ]; then
    case $dtype in f32) tol=1e-4 ;; f16) tol=5e-3 ;; q8_0) tol=5e-2 ;; q4_0) tol=1e-1 ;; *) tol=3e-2 ;; esac
    tol=${CHECK_TOL:-$tol}
    ids=1,15043,29892,590,1024,338,263,1243
    python3 "$P/check_logits.py" inputs "$ids" "$LOG/check-in.safetensors"
    "$KILN" run "$art" --inputs "$LOG/check-in.safetensors" --outputs "$LOG/check-kiln-$dtype.safetensors" \
      --threads "$THREADS" >/dev/null
    "$P/bin/llama-logits" "$gguf" --ids "$ids" -o "$LOG/check-llama-$dtype.f32" --threads "$THREADS" 2>/dev/null
    echo "## check, tinyllama-1.1b $dtype, ids $ids: llama.cpp against kiln"
    python3 "$P/check_logits.py" compare "$LOG/check-llama-$dtype.f32" "$LOG/check-kiln-$dtype.safetensors" "$tol" ||
      { echo "peer.sh: kiln and llama.cpp disagree on $dtype; not benchmarking work that differs" >&2; exit 1; }
  fi

  for round in $(seq "$ROUNDS"); do
    if [ "$PPTG" = 1 ]; then
      echo "## round $round, tinyllama-1.1b $dtype: kiln"
      /usr/bin/time -f "%M" -o "$LOG/rss" "$KILN" bench "$art" -p 512 -n 128 -r "$REPS" --threads "$THREADS" |
        tee "$LOG/kiln-$dtype-$round.md"
      rows kiln "$dtype" "$round" "$(tail -1 "$LOG/rss")" < "$LOG/kiln-$dtype-$round.md"
      echo "## round $round, tinyllama-1.1b $dtype: llama.cpp llama-bench"
      /usr/bin/time -f "%M" -o "$LOG/rss" "$P/bin/llama-bench" -m "$gguf" -p 512 -n 128 -r "$REPS" -t "$THREADS" \
        -ctk f32 -ctv f32 -fa off -ngl 0 -o md 2>"$LOG/llama-bench-$dtype-$round.err" | tee "$LOG/llama-$dtype-$round.md"
      rows llama.cpp "$dtype" "$round" "$(tail -1 "$LOG/rss")" < "$LOG/llama-$dtype-$round.md"
      if [ "$ALL_LOGITS" = 1 ]; then
        echo "## round $round, tinyllama-1.1b $dtype: llama.cpp pp512 with all 512 rows of logits (llama-logits --bench)"
        ids512=$(python3 -c "import random; r = random.Random(42); print(','.join(str(r.randrange(32000)) for _ in range(512)))")
        /usr/bin/time -f "%M" -o "$LOG/rss" "$P/bin/llama-logits" "$gguf" --ids "$ids512" -o "$LOG/pp512.f32" \
          --bench "$REPS" --threads "$THREADS" 2>/dev/null | tee "$LOG/all-$dtype-$round.txt"
        awk -v dt="$dtype" -v r="$round" -v rss="$(tail -1 "$LOG/rss")" \
          '{ printf "%s\t%s\tllama.cpp\tpp512-all-logits\t%s\t%s\t%s\n", dt, r, $2, $4, rss }' "$LOG/all-$dtype-$round.txt" >> "$RESULTS"
        rm -f "$LOG/pp512.f32"
      fi
    fi
    if [ "$DEPTH" -gt 0 ] && [ "$dtype" = f32 ]; then
      test="tg$DEPTH_TG@d$DEPTH"
      echo "## round $round, tinyllama-1.1b $dtype: $test, kiln then llama.cpp"
      "$KILN" bench "$art" -p 0 -n "$DEPTH_TG" -d "$DEPTH" -r "$REPS" --threads "$THREADS" --json > "$LOG/kiln-depth-$round.json"
      summarize tinyllama-1.1b "$round" kiln "$test" < "$LOG/kiln-depth-$round.json"
      "$P/bin/llama-bench" -m "$gguf" -p 0 -n "$DEPTH_TG" -d "$DEPTH" -r "$REPS" -t "$THREADS" \
        -ctk f32 -ctv f32 -fa off -ngl 0 -o json 2>"$LOG/llama-depth-$round.err" > "$LOG/llama-depth-$round.json"
      summarize tinyllama-1.1b "$round" llama.cpp "$test" < "$LOG/llama-depth-$round.json"
      tail -2 "$SAMPLES"
    fi
  done
done

if [ "$ENCODER" = 1 ]; then
  dir="$WORK/all-minilm-l6-v2-f32"
  [ -f "$dir/model.safetensors" ] || "$KILN" synth bench/configs/all-minilm-l6-v2.json -o "$dir" --seed 1 --dtype f32 >&2
  art="$WORK/all-minilm-l6-v2-f32-b1c512.kiln"
  [ "$art" -nt "$KILN" ] || "$KILN" compile "$dir" -o "$art" --max-batch 1 --max-context 512 >&2
  gguf="$WORK/all-minilm-l6-v2-f32.gguf"
  [ -f "$gguf" ] && [ "$gguf" -nt "$dir/model.safetensors" ] || python3 "$P/to_gguf.py" "$dir" "$gguf"
  for round in $(seq "$ROUNDS"); do
    for n in $ENC_TOKENS; do
      echo "## round $round, all-minilm-l6-v2 f32: $n tokens, kiln then llama.cpp"
      "$KILN" bench "$art" --batch 1 -p "$n" -n 0 -r "$REPS" --threads "$THREADS" --json > "$LOG/kiln-enc$n-$round.json"
      summarize all-minilm-l6-v2 "$round" kiln "enc$n" < "$LOG/kiln-enc$n-$round.json"
      "$P/bin/llama-bench" -m "$gguf" -embd 1 -p "$n" -n 0 -r "$REPS" -t "$THREADS" -o json \
        2>"$LOG/llama-enc$n-$round.err" > "$LOG/llama-enc$n-$round.json"
      summarize all-minilm-l6-v2 "$round" llama.cpp "enc$n" < "$LOG/llama-enc$n-$round.json"
      tail -2 "$SAMPLES"
    done
  done
fi

echo "## summary (t/s: mean over rounds of each round's mean +- stddev; ratio = kiln / llama.cpp, > 1: kiln faster)"
python3 - "$RESULTS" "$LOG/bytes.tsv" "${bw_med:-0}" <<'EOF'
import collections, os, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
gguf_bytes = dict(l.split() for l in open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {}
ceiling = float(sys.argv[3])
by = collections.defaultdict(list)  # (dtype, system, test) -> [(mean, sd, rss)]
for dt, r, system, test, mean, sd, rss in rows:
    by[(dt, system, test)].append((float(mean), float(sd), int(rss or 0)))
def agg(key):
    v = by.get(key)
    if not v:
        return None
    return (sum(m for m, _, _ in v) / len(v), sum(s for _, s, _ in v) / len(v), max(x for _, _, x in v), len(v))
print("| dtype | test | kiln t/s | llama.cpp t/s | kiln / llama.cpp | kiln peak RSS | llama.cpp peak RSS |"
      " decode GB/s: kiln / llama.cpp of the read ceiling |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for dt in dict.fromkeys(r[0] for r in rows):
    for test, peer_test in (("pp512", "pp512"), ("pp512", "pp512-all-logits"), ("tg128", "tg128")):
        k, p = agg((dt, "kiln", test)), agg((dt, "llama.cpp", peer_test))
        if not k or not p:
            continue
        label = test if peer_test == test else f"{test} (llama.cpp: all 512 logits, as kiln)"
        stream = ""  # decode: the GGUF's bytes (the weights) read per token, beside the machine's ceiling
        if test.startswith("tg") and dt in gguf_bytes:
            gbs = [t * int(gguf_bytes[dt]) / 1e9 for t in (k[0], p[0])]
            stream = f" {gbs[0]:.1f} / {gbs[1]:.1f}" + (f" of {ceiling:.1f}" if ceiling else "")
        print(f"| {dt} | {label} | {k[0]:.2f} ± {k[1]:.2f} | {p[0]:.2f} ± {p[1]:.2f} | {k[0] / p[0]:.3f} | "
              f"{k[2] / 1024:.0f} MiB | {p[2] / 1024:.0f} MiB |{stream} |")
EOF

if [ -s "$SAMPLES" ]; then
  echo "## depth and encoder (tokens/s: median (min .. max) over repetitions, the median of the rounds' medians; ratio of medians)"
  python3 - "$SAMPLES" "$LOG/bytes.tsv" "${bw_med:-0}" <<'EOF'
import collections, os, statistics, sys
by = collections.defaultdict(list)  # (model, test, system) -> [(median, min, max)]
gguf_bytes = dict(l.split() for l in open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {}
ceiling = float(sys.argv[3])
for line in open(sys.argv[1]):
    model, rnd, system, test, med, lo, hi = line.rstrip("\n").split("\t")
    by[(model, test, system)].append((float(med), float(lo), float(hi)))
def agg(key):
    v = by.get(key)
    return v and (statistics.median(m for m, _, _ in v), min(l for _, l, _ in v), max(h for _, _, h in v))
print("| model | test | kiln t/s | llama.cpp t/s | kiln / llama.cpp | decode GB/s: kiln / llama.cpp of the read ceiling |")
print("|---|---|---:|---:|---:|---:|")
for model, test in dict.fromkeys((m, t) for m, t, _ in by):
    k, p = agg((model, test, "kiln")), agg((model, test, "llama.cpp"))
    if k and p:
        stream = ""  # the depth decode (f32 TinyLlama): weight bytes per token x tokens/s, as the first table
        if test.startswith("tg") and model.startswith("tinyllama") and "f32" in gguf_bytes:
            gbs = [t * int(gguf_bytes["f32"]) / 1e9 for t in (k[0], p[0])]
            stream = f" {gbs[0]:.1f} / {gbs[1]:.1f}" + (f" of {ceiling:.1f}" if ceiling else "")
        print(f"| {model} | {test} | {k[0]:.1f} ({k[1]:.1f} .. {k[2]:.1f}) | {p[0]:.1f} ({p[1]:.1f} .. {p[2]:.1f}) | "
              f"{k[0] / p[0]:.2f} |{stream} |")
EOF
fi
