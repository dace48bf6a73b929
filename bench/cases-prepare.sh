#!/usr/bin/env bash
# Every tests/data case compiled for the GPU as bench/gpu-cases.sh reads them: .h200/cases/NAME.kiln (nvidia-h200,
# default flags) + NAME.ref.safetensors (its HF reference) + NAME.chunks (the case's chunk schedule, "-" for
# encoders). Called by bench/vkperf-prepare.sh and bench/groups-prepare.sh from the repository root; K: the kiln
# compiler (default build/bin/kiln).
set -euo pipefail
K=${K:-build/bin/kiln}
mkdir -p .h200/cases
for dir in tests/data/*/; do
  n=$(basename $dir)
  $K compile $dir -o .h200/cases/$n.kiln --target vulkan --device-profile nvidia-h200 2>&1 | tail -1
  cp $dir/reference.safetensors .h200/cases/$n.ref.safetensors
  python3 -c "import json; c = json.load(open('$dir/case.json')).get('chunks'); print(','.join(map(str, c)) if c else '-')" \
    > .h200/cases/$n.chunks
done
