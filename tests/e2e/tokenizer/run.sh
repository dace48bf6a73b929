#!/usr/bin/env bash
# The tokenizer tests' driver: run.sh KILN WORK_DIR MODE NAME...
#   MODE random: hf_compare.js with 2400 texts; components: 600 texts; sweep: every code point (--sweep).
# Fetches the data first (tools/fetch-test-data.sh); exit 77 (skipped) when it cannot.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KILN=$1 WORK=$2 MODE=$3
shift 3
DATA=$(bash "$HERE/../../../tools/fetch-test-data.sh") || exit $?
MODULES=$(echo "$DATA" | sed -n 1p)
TOKENIZERS=$(echo "$DATA" | sed -n 2p)
case $MODE in
  random) ARGS=(--texts 2400) ;;
  components) ARGS=(--texts 600) ;;
  sweep) ARGS=(--sweep) ;;
  *) echo "run.sh: unknown mode $MODE" >&2; exit 2 ;;
esac
rc=0
for name in "$@"; do
  NODE_PATH="$MODULES" node "$HERE/hf_compare.js" "$KILN" "$TOKENIZERS/$name" "$WORK/$name" "${ARGS[@]}" || rc=1
done
exit $rc
