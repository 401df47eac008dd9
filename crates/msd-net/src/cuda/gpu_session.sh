#!/usr/bin/env bash
# Runs the CUDA checks and benchmarks on the GPU machine (see README.md, "GPU runbook").
#
#   here:   crates/msd-net/src/cuda/gpu_session.sh build          # builds and strips the binaries into .gpu/
#   device: bash crates/msd-net/src/cuda/gpu_session.sh check     # tests + compute-sanitizer (carry .gpu)
#   device: bash crates/msd-net/src/cuda/gpu_session.sh bench     # Rust bench + PyTorch comparison + ncu
#
# On the device, logs go to $OUT (the device tool's return folder) when it is set, else to .gpu/out.
set -uo pipefail
mode=${1:-}
root=$(cd "$(dirname "$0")/../../../.." && pwd)
cd "$root"

if [[ $mode == build ]]; then
    grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
    cargo test -p msd-net --features cuda --test cuda --no-run 2>&1 | tee /tmp/cuda-test-build.log || exit 1
    cargo bench -p msd-net --features cuda --bench cuda --no-run 2>&1 | tee /tmp/cuda-bench-build.log || exit 1
    rm -rf .gpu && mkdir .gpu
    cp "$(grep -o 'target/debug/deps/cuda-[0-9a-f]*' /tmp/cuda-test-build.log | tail -1)" .gpu/cuda_tests
    cp "$(grep -o 'target/release/deps/cuda-[0-9a-f]*' /tmp/cuda-bench-build.log | tail -1)" .gpu/cuda_bench
    strip -s .gpu/cuda_tests .gpu/cuda_bench
    ls -la .gpu
    exit 0
fi

out=${OUT:-$root/.gpu/out}
mkdir -p "$out"
nvrtc=$(find / -xdev -name 'libnvrtc.so.13*' -not -name '*alt*' 2>/dev/null | head -1)
[[ -z $nvrtc ]] && nvrtc=$(find / -xdev -name 'libnvrtc.so.12*' -not -name '*alt*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH=$(dirname "${nvrtc:-/nonexistent/x}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "NVRTC: ${nvrtc:-not found}" | tee "$out/env.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee -a "$out/env.log"
cd .gpu || exit 1

case $mode in
check)
    status=0
    ./cuda_tests --include-ignored --test-threads=1 2>&1 | tee "$out/tests.log" || status=1
    export MSD_NVRTC_OPTIONS=-lineinfo
    for tool in memcheck racecheck synccheck; do
        compute-sanitizer --tool $tool --error-exitcode 9 ./cuda_tests --include-ignored --test-threads=1 \
            forward_equals_cpu loss_and_backward_equal_cpu 2>&1 | tail -40 | tee "$out/$tool.log"
        [[ ${PIPESTATUS[0]} == 0 ]] || status=1
    done
    echo "check status: $status"
    exit $status
    ;;
bench)
    export CRITERION_HOME=/tmp/criterion
    ./cuda_bench --bench --noplot 2>&1 | tee "$out/bench.log"
    MSD_NVRTC_OPTIONS=-DMSD_CONV_MIN_BLOCKS=2 ./cuda_bench --bench --noplot --warm-up-time 0.5 \
        --measurement-time 2 forward_8x512x512 2>&1 | tail -12 | tee "$out/bench_minblocks2.log"
    PYTHONUNBUFFERED=1 python3 ../crates/msd-net/benches/cuda_pytorch.py --json "$out/pytorch.json" 2>&1 \
        | tee "$out/pytorch.log"
    # Text report (small enough to come back): speed of light, memory, occupancy, launch of 12 kernels.
    MSD_BENCH_QUICK=1 timeout 240 ncu --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section Occupancy --section LaunchStats -k regex:'conv3x3|head_' -c 12 \
        ./cuda_bench --bench --noplot forward_8x512x512 --warm-up-time 0.1 --measurement-time 0.1 \
        > "$out/ncu.txt" 2>&1
    tail -5 "$out/ncu.txt"
    ;;
*)
    echo "usage: $0 build|check|bench" >&2
    exit 2
    ;;
esac
