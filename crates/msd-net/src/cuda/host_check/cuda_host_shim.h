// Runs the CUDA kernel sources of this crate on the CPU for checking without a GPU: one std::thread per
// CUDA thread of a block, __syncthreads as a block-wide std::barrier, warp shuffles through a per-warp
// exchange buffer, blocks one after another (so `static` stands in for static __shared__ arrays).
// Slow, and only for small sizes; the GPU tests remain the reference.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define MSD_HOST_EMULATION 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static

struct Dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace emu {
struct Block {
    Dim3 block_idx, block_dim, grid_dim;
    std::unique_ptr<std::barrier<>> bar;
    std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
    std::vector<float> exchange;  // one slot per thread
    std::vector<float> smem;
};
inline thread_local Block* cur = nullptr;
inline thread_local Dim3 tid;
}  // namespace emu

#define threadIdx (emu::tid)
#define blockIdx (emu::cur->block_idx)
#define blockDim (emu::cur->block_dim)
#define gridDim (emu::cur->grid_dim)

inline void __syncthreads() { emu::cur->bar->arrive_and_wait(); }

inline unsigned emu_linear_tid() { return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x; }

inline float __shfl_down_sync(unsigned, float v, int offset) {
    const unsigned t = emu_linear_tid();
    const unsigned warp = t / 32, lane = t % 32;
    auto& bar = *emu::cur->warp_bar[warp];
    emu::cur->exchange[t] = v;
    bar.arrive_and_wait();
    const float r = lane + offset < 32 ? emu::cur->exchange[warp * 32 + lane + offset] : v;
    bar.arrive_and_wait();
    return r;
}

inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
template <typename T> inline T __ldg(const T* p) { return *p; }
inline float* msd_host_dynamic_smem() { return emu::cur->smem.data(); }
inline float msd_host_f16_to_f32(unsigned short bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return (float)h;
}
inline unsigned short msd_host_f32_to_f16(float x) {
    _Float16 h = (_Float16)x;
    unsigned short bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}
using std::max;
using std::min;

// Launches `kernel(args...)` over grid × block with `smem_bytes` of dynamic shared memory.
template <typename... Params, typename... Args>
void emu_launch(void (*kernel)(Params...), Dim3 grid, Dim3 block, size_t smem_bytes, Args... args) {
    const unsigned n = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                emu::Block b;
                b.block_idx = {bx, by, bz};
                b.block_dim = block;
                b.grid_dim = grid;
                b.bar = std::make_unique<std::barrier<>>(n);
                for (unsigned w = 0; w < (n + 31) / 32; ++w)
                    b.warp_bar.push_back(std::make_unique<std::barrier<>>(std::min(32u, n - 32 * w)));
                b.exchange.assign(n, 0.0f);
                // Poison shared memory: kernels must not read what they did not write.
                b.smem.assign(smem_bytes / 4 + 1, std::nanf(""));
                std::vector<std::thread> threads;
                threads.reserve(n);
                for (unsigned t = 0; t < n; ++t) {
                    threads.emplace_back([&, t] {
                        emu::cur = &b;
                        emu::tid = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        kernel(args...);
                        // Threads that return early still count at later barriers, as on the GPU, where
                        // exited threads no longer take part: drop out of the block barrier.
                        b.bar->arrive_and_drop();
                        b.warp_bar[t / 32]->arrive_and_drop();
                    });
                }
                for (auto& th : threads) th.join();
            }
}
