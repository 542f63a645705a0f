#!/bin/sh
# CI for your own model: score it under eqbench's protocol, fail (exit 1) when any score moves away from
# the committed baseline.json. Needs eqbench and this package installed (pip install -e .).
set -eu
cd "$(dirname "$0")"
out="${OUT:-runs/ci}"
eqbench run --methods mysr-implicit mysr-bilinear --datasets samples --scales 2 3.5 1.5x4 --limit 2 \
    --out "$out" --force --no-report --no-progress
eqbench compare "$out/results.json" --baseline baseline.json --tolerance 0.001 --fail-on-change
