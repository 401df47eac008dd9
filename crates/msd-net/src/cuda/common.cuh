// Shared helpers for the MSDnet CUDA kernels: numpy-'symmetric' border mirroring, reduced-precision
// storage types and warp reductions.
//
// The Rust side prepends this file to every kernel source before NVRTC compiles it, so the `.cu` files
// include it only when compiled on their own (nvcc, for resource reports and SASS). MSD_HOST_EMULATION
// is defined only by host_check/cuda_host_shim.h, which runs these sources on the CPU for checking.
#ifndef MSD_COMMON_CUH
#define MSD_COMMON_CUH

// Threads per block of the tiled kernels: 32 columns by 8 rows.
#define MSD_BLOCK_X 32
#define MSD_BLOCK_Y 8
#define MSD_THREADS (MSD_BLOCK_X * MSD_BLOCK_Y)

// Launch bounds of the tiled convolution kernels. By default ptxas picks the register budget (about 64
// registers with a few bytes of spill on sm_90); tuning runs can set the minimum resident blocks per SM
// through NVRTC options, e.g. MSD_NVRTC_OPTIONS="-DMSD_CONV_MIN_BLOCKS=3" (see README.md).
#ifdef MSD_CONV_MIN_BLOCKS
#define MSD_CONV_BOUNDS __launch_bounds__(MSD_THREADS, MSD_CONV_MIN_BLOCKS)
#else
#define MSD_CONV_BOUNDS __launch_bounds__(MSD_THREADS)
#endif

// numpy 'symmetric' mirroring of coordinate `t` into [0, n): -1 -> 0, -2 -> 1, n -> n - 1, n + 1 -> n - 2,
// periodic with period 2n, so dilations larger than the image reflect repeatedly.
__device__ __forceinline__ int mirror_index(int t, int n) {
    if (t >= 0 && t < n) {
        return t;
    }
    const int period = 2 * n;
    int r = t % period;
    if (r < 0) {
        r += period;
    }
    return r < n ? r : period - 1 - r;
}

// The block's dynamic shared memory (one declaration for every kernel of a module).
__device__ __forceinline__ float* dynamic_smem() {
#ifdef MSD_HOST_EMULATION
    return msd_host_dynamic_smem();
#else
    extern __shared__ float msd_dynamic_smem[];
    return msd_dynamic_smem;
#endif
}

// Non-negative remainder.
__device__ __forceinline__ int positive_mod(int t, int m) {
    int r = t % m;
    return r < 0 ? r + m : r;
}

// Feature storage types. Reduced precision is storage only: every product and sum is f32.
struct f16_bits {
    unsigned short bits;
};
struct bf16_bits {
    unsigned short bits;
};

__device__ __forceinline__ float to_f32(float x) { return x; }

__device__ __forceinline__ float to_f32(f16_bits x) {
#ifdef MSD_HOST_EMULATION
    return msd_host_f16_to_f32(x.bits);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
#endif
}

__device__ __forceinline__ float to_f32(bf16_bits x) {
    return __uint_as_float(((unsigned int)x.bits) << 16);
}

template <typename S> __device__ __forceinline__ S from_f32(float x);

template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }

template <> __device__ __forceinline__ f16_bits from_f32<f16_bits>(float x) {
    f16_bits r;
#ifdef MSD_HOST_EMULATION
    r.bits = msd_host_f32_to_f16(x);
#else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(x));
#endif
    return r;
}

// Round to nearest even; NaN stays a quiet NaN. Done in integers so that it compiles for every arch.
template <> __device__ __forceinline__ bf16_bits from_f32<bf16_bits>(float x) {
    unsigned int u = __float_as_uint(x);
    bf16_bits r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = (unsigned short)((u >> 16) | 0x0040u);
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        r.bits = (unsigned short)(u >> 16);
    }
    return r;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, offset));
    }
    return v;
}

// Sums `NV` per-thread values over the whole block (blockDim.x * blockDim.y threads, a multiple of 32).
// `scratch` holds at least NV * (threads / 32) floats. On return, thread t < NV of the block holds the
// block total of value t in `*out`; other threads' `*out` is untouched. Contains __syncthreads().
template <int NV>
__device__ __forceinline__ void block_sum(float (&v)[NV], float* scratch, float* out) {
    const int tid = threadIdx.y * blockDim.x + threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int n_warps = (blockDim.x * blockDim.y) >> 5;
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const float s = warp_sum(v[k]);
        if (lane == 0) {
            scratch[k * n_warps + warp] = s;
        }
    }
    __syncthreads();
    if (tid < NV) {
        float s = 0.0f;
        for (int w = 0; w < n_warps; ++w) {
            s += scratch[tid * n_warps + w];
        }
        *out = s;
    }
    __syncthreads();
}

#endif // MSD_COMMON_CUH
