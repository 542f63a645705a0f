#!/usr/bin/env bash
# The zoo's reference results: every zoo model + bicubic on Set5 and Set14 under the default protocol.
#   bash reports/make_baseline.sh            # regenerate reports/baseline.json (review the diff!)
#   bash reports/make_baseline.sh DIR        # write DIR/baseline.json instead (what .ci/run does)
# Cells evaluated before with the same weights (sha256), images, scale, protocol and evaluation code (sha256
# of every source file on the evaluation path, eqbench/run/cells.py) are taken from the cell cache
# EQBENCH_CELL_CACHE (default ~/.cache/eqbench/cells; set it empty to evaluate everything); the rest is run.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-reports}"
cache="${EQBENCH_CELL_CACHE-$HOME/.cache/eqbench/cells}"
eqbench run --methods all --datasets Set5 Set14 --scales 2 3 4 6 1.55 2.75 1.5x4 --analyses none --no-report \
  --no-progress --data-root "${EQBENCH_DATA:-../shared/datasets}" --out "$out" --results-name baseline.json --force \
  ${cache:+--cell-cache "$cache"}
