#!/usr/bin/env bash
# Every GPU benchmark in one command; prints one JSON object (README, Performance: GPU).
#
#   bench/gpu.sh           on a CUDA machine: capture of GPT-2 small in fp16 against its plain
#                          forward (bench/capture.py), and the six layouts of 144 heads x 20k points
#                          through the build's reduce stage against the libraries per head
#                          (bench/gpu_layouts.py), with the issue's targets beside the figures
#   bench/gpu.sh --smoke   anywhere: the same parts on the CPU at tiny sizes, every layout through
#                          its batched (CUDA) code, to check the script works; not figures
#
# Without CUDA (and without --smoke) nothing is measured: it prints {"bench": "gpu", "gpu": null,
# "reason": ...} and exits 3, so that no caller takes it for figures.
# Sizes: GPU_BENCH_HEADS (144), GPU_BENCH_POINTS (20000), GPU_BENCH_BASELINE_HEADS (1),
# GPU_BENCH_LAYOUTS (all six), GPU_BENCH_ITEMS (537, the default corpus), GPU_BENCH_BATCH (64);
# PYTHON (.venv/bin/python). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-../.venv/bin/python}
SMOKE=0
case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") ;;
  *) echo "usage: bench/gpu.sh [--smoke]" >&2; exit 2 ;;
esac

if [ "$SMOKE" = 0 ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  "$PY" - <<'EOF'
import json, torch
built = torch.version.cuda
reason = ("torch sees no CUDA device" + (f" (torch {torch.__version__} is built for CUDA {built})" if built
          else f" (torch {torch.__version__} is a CPU-only build)") + "; nothing was measured")
print(json.dumps({"bench": "gpu", "gpu": None, "reason": reason}, indent=2))
EOF
  exit 3
fi

if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu HEADS=2 POINTS=500 BASE=1 ITEMS=8 BATCH=4 REPEATS=1 FORCE=--batched
  export OMP_NUM_THREADS=1  # tiny tensors: OpenMP's spin-waits only slow a shared CPU
else
  DEVICE=cuda HEADS=${GPU_BENCH_HEADS:-144} POINTS=${GPU_BENCH_POINTS:-20000}
  BASE=${GPU_BENCH_BASELINE_HEADS:-1} ITEMS=${GPU_BENCH_ITEMS:-537} BATCH=${GPU_BENCH_BATCH:-64} REPEATS=3 FORCE=
fi
LAYOUTS=${GPU_BENCH_LAYOUTS:-pca-2d,pca-3d,umap-2d,umap-3d,tsne-2d,tsne-3d}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "capture: gpt2-small, $ITEMS items, $DEVICE" >&2
"$PY" capture.py --device "$DEVICE" --models gpt2-small --items "$ITEMS" --batch-size "$BATCH" \
  --repeats "$REPEATS" > "$OUT/capture.json"
echo "layouts: $HEADS heads x $POINTS points, $DEVICE" >&2
"$PY" gpu_layouts.py --device "$DEVICE" --heads "$HEADS" --points "$POINTS" --baseline-heads "$BASE" \
  --layouts "$LAYOUTS" $FORCE > "$OUT/layouts.json"

"$PY" - "$OUT" "$SMOKE" <<'EOF'
import json, sys
from pathlib import Path

out, smoke = Path(sys.argv[1]), sys.argv[2] == "1"
capture = json.loads((out / "capture.json").read_text())
layouts = json.loads((out / "layouts.json").read_text())
gpt2 = next(r for r in capture["results"] if r["model"] == "gpt2-small")
ratio, seconds = gpt2["capture_over_plain"], layouts["atlas_seconds"]
print(json.dumps({
    "bench": "gpu", "gpu": capture["machine"]["gpu"], "smoke": smoke,
    "targets": {
        "capture_over_plain_forward": {"target": ">= 0.9", "measured": ratio, "met": None if smoke else ratio >= 0.9},
        "atlas_six_layouts_seconds": {"target": f"< {layouts['target_seconds']}", "measured": seconds,
                                      "met": None if smoke else layouts["meets_target"]},
    },
    "capture": capture, "layouts": layouts,
}, indent=2))
EOF
