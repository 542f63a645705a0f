#!/usr/bin/env bash
# The committed example report (reports/example/): the zoo's baseline results on Set5/Set14 plus the
# analyses at small settings (EQ_S on the central 128x128 of the 5 Set5 images at x2/x3/x4/x6, CKA on 16
# crops at x2 and x4, profiles on 48x48 inputs), rendered to one HTML page with its figures as PNG.
#   bash reports/make_example.sh            (needs reports/baseline.json: bash reports/make_baseline.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
out=reports/example
data="${EQBENCH_DATA:-../shared/datasets}"
rm -rf "$out" && mkdir -p "$out"
cp reports/baseline.json "$out/results.json"
common=(--methods all --datasets Set5 --data-root "$data" --out "$out")
eqbench analyze equivariance "${common[@]}" --scales 2 3 4 6 --eq-crop 128
eqbench analyze cka "${common[@]}" --scales 2 4 --crops 16 --batch-size 8
eqbench analyze profile "${common[@]}" --size tiny --scales 4 --input-sizes 48 --memory-input 48 --min-measurements 1 \
  --min-run-time 0.05 --limit 1
# Keep the PNGs small: SVGs and the between-method CKA heatmaps (embedded in report.html) are dropped.
rm -f "$out"/figures/*.svg "$out"/figures/cka_*_vs_*_x*.png
eqbench report "$out/results.json" -o "$out/report.html"
