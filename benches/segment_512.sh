#!/usr/bin/env bash
# The whole `msd segment` of a 512 × 512 × 250 int16 head CT at depth 100 (read, network on every
# plane, iso-surface snap, clean-up, labels and STL written) against 250 × the per-plane forward
# benchmark, with its peak memory (issue #12's acceptance: within 15 %, under 1.5 GB).
#
#   cargo build --release -p msd-cli
#   python3 benches/compare_libraries.py            # makes target/compare-libraries/ct_512x512x250_int16.nii.gz
#   benches/segment_512.sh [CT] [MSD]
#
# The depth-100 model is trained for 12 short epochs on ../shared/data/cthead (about a minute): its
# accuracy does not matter here, only that it finds a skull to clean and mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
ct=$(realpath "${1:-target/compare-libraries/ct_512x512x250_int16.nii.gz}")
msd=$(realpath "${2:-target/release/msd}")
work=target/segment-512
mkdir -p "$work"
test -s "$ct" || { echo "no CT at $ct (run benches/compare_libraries.py first, or give one)"; exit 1; }
if [ ! -s "$work/d100.safetensors" ]; then
    "$msd" train --ct ../shared/data/cthead/ct.nii.gz --labels ../shared/data/cthead/skull_ref.nii.gz \
        --out "$work/d100.safetensors" --depth 100 --epochs 12 --patch 96 --batch 2 --label-threshold 300 --device cpu
fi
echo "== per-plane forward, depth 100, 512²"
forward_ms=$(cargo bench -q -p msd-net --bench msdnet -- 'msdnet_d100/forward/512$' 2>&1 |
    tee /dev/stderr | awk '/time:/ { v = $4; u = $5; if (u == "s") v *= 1000; print v; exit }')
echo "== msd segment (whole command)"
/usr/bin/time -v "$msd" segment "$ct" --model "$work/d100.safetensors" --out "$work/skull.nii.gz" \
    --mesh "$work/skull.stl" --device cpu 2> "$work/segment.log" || { cat "$work/segment.log"; exit 1; }
grep -E '^(boundary|clean-up|wrote)' "$work/segment.log"
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$work/segment.log")
peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/segment.log")
planes=250
awk -v w="$wall" -v f="$forward_ms" -v p="$peak_kb" -v n="$planes" 'BEGIN {
    printf "whole command %.1f s; %d × forward %.1f ms = %.1f s; ratio %.3f; peak %.0f MB\n", w, n, f, n * f / 1000, w / (n * f / 1000), p / 1024 }'
