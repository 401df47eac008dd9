#!/usr/bin/env bash
# The whole `msd segment` of a 512 × 512 × 250 int16 head CT at depth 100 (read, network on every
# plane, iso-surface snap, clean-up, labels and STL written) against 250 × the per-plane forward
# benchmark, with its peak memory (issue #12's acceptance: within 15 %, under 1.5 GB; issue #17's:
# the whole command within 30 s on 2 cores), in f32 and in the precision `auto` picks.
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
# Each precision against its own per-plane benchmark: f32 (`forward/512`) and the kernels
# `--precision auto` picks on this CPU (`forward_amx-bf16/512`, `forward_avx512-bf16/512`, or f32
# again where the CPU has no bf16 instructions).
auto=$("$msd" --version | awk '/^CPU inference:/ { print $3 }')
case "$auto" in
    amx-bf16 | avx512-bf16) runs="f32:forward/512 auto:forward_$auto/512" ;;
    *) runs="f32:forward/512" ;;
esac
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) logical CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
planes=250
for run in $runs; do
    precision=${run%%:*}
    bench=${run#*:}
    echo "== per-plane forward, depth 100, 512² ($bench)"
    forward_ms=$(cargo bench -q -p msd-net --bench msdnet -- "msdnet_d100/$bench\$" 2>&1 |
        tee /dev/stderr | awk '/time:/ { v = $4; u = $5; if (u == "s") v *= 1000; print v; exit }')
    echo "== msd segment --precision $precision (whole command)"
    /usr/bin/time -v "$msd" segment "$ct" --model "$work/d100.safetensors" --out "$work/skull_$precision.nii.gz" \
        --mesh "$work/skull_$precision.stl" --device cpu --precision "$precision" 2> "$work/segment_$precision.log" ||
        { cat "$work/segment_$precision.log"; exit 1; }
    grep -E '^(segmenting|boundary|clean-up|wrote)' "$work/segment_$precision.log"
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$work/segment_$precision.log")
    peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/segment_$precision.log")
    awk -v w="$wall" -v f="$forward_ms" -v p="$peak_kb" -v n="$planes" -v what="$precision" 'BEGIN {
        printf "%s: whole command %.1f s; %d × forward %.1f ms = %.1f s; ratio %.3f; peak %.0f MB\n", what, w, n, f, n * f / 1000, w / (n * f / 1000), p / 1024 }'
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
