// Forward pass of one MSDnet layer: a dilated 3x3 convolution over all earlier channels of the feature
// buffer, plus bias, then ReLU, written into the layer's own channels of the same buffer.
//
// Layout: features [images][c_total][h][w]; the layer reads channels 0..cin and writes cin..cin+width.
// Weights [width][cin][3][3] (ky then kx); tap (ky, kx) samples (y + (ky-1)*d, x + (kx-1)*d) mirrored
// with numpy 'symmetric' borders. Blocks are 32x8 threads; each thread computes ROWS rows (8 apart) of
// one column for OCB output channels, so a block covers a 32 x (8*ROWS) tile. grid.z = images * groups of
// OCB output channels.
//
// Tiled variant: `chunk` input channels at a time are staged in shared memory with the dilation's halo
// (mirroring applied while loading through per-block row and column offset tables, so the loads need
// no division), followed by their weights and the two tables (tile_h + tile_w ints). Direct variant
// (halo too large for shared memory): the same arithmetic reading the mirrored input straight from
// global memory.
#ifndef MSD_COMMON_CUH
#include "common.cuh"
#endif

#define FWD_ROWS 4

template <typename S, int OCB, bool TILED>
__device__ __forceinline__ void conv3x3_forward(S* __restrict__ feat, const float* __restrict__ weight,
                                                const float* __restrict__ bias, int cin, int width,
                                                int c_total, int h, int w, int dil, int chunk) {
    float* smem = dynamic_smem();
    const int tile_h = MSD_BLOCK_Y * FWD_ROWS + 2 * dil;
    const int tile_w = MSD_BLOCK_X + 2 * dil;
    const int tile_elems = TILED ? tile_h * tile_w : 0;
    float* wsm = smem + chunk * tile_elems;
    // Mirrored source offsets of the tile's rows (times w) and columns: the same for every channel.
    int* row_src = (int*)(wsm + OCB * chunk * 9);
    int* col_src = row_src + tile_h;

    const int n_groups = (width + OCB - 1) / OCB;
    const int img = blockIdx.z / n_groups;
    const int oc0 = (blockIdx.z - img * n_groups) * OCB;
    const int nout = min(OCB, width - oc0);
    const int x0 = blockIdx.x * MSD_BLOCK_X;
    const int y0 = blockIdx.y * MSD_BLOCK_Y * FWD_ROWS;
    const int tid = threadIdx.y * MSD_BLOCK_X + threadIdx.x;
    const size_t plane = (size_t)h * w;
    S* base = feat + (size_t)img * c_total * plane;

    if constexpr (TILED) {
        for (int i = tid; i < tile_h; i += MSD_THREADS) {
            row_src[i] = mirror_index(y0 - dil + i, h) * w;
        }
        for (int i = tid; i < tile_w; i += MSD_THREADS) {
            col_src[i] = mirror_index(x0 - dil + i, w);
        }
    }

    float acc[OCB][FWD_ROWS];
#pragma unroll
    for (int o = 0; o < OCB; ++o) {
        const float b = o < nout ? bias[oc0 + o] : 0.0f;
#pragma unroll
        for (int r = 0; r < FWD_ROWS; ++r) {
            acc[o][r] = b;
        }
    }

    // Direct variant: mirrored coordinates of this thread's taps, fixed over all channels.
    int gx[3];
    int gy[FWD_ROWS][3];
    if constexpr (!TILED) {
        const int x = min(x0 + (int)threadIdx.x, w - 1);
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            gx[k] = mirror_index(x + (k - 1) * dil, w);
        }
#pragma unroll
        for (int r = 0; r < FWD_ROWS; ++r) {
            const int y = min(y0 + (int)threadIdx.y + r * MSD_BLOCK_Y, h - 1);
#pragma unroll
            for (int k = 0; k < 3; ++k) {
                gy[r][k] = mirror_index(y + (k - 1) * dil, h);
            }
        }
    }

    for (int c0 = 0; c0 < cin; c0 += chunk) {
        const int nc = min(chunk, cin - c0);
        __syncthreads();
        if constexpr (TILED) {
            for (int cc = 0; cc < nc; ++cc) {
                const S* chan = base + (size_t)(c0 + cc) * plane;
                float* tile = smem + cc * tile_elems;
                for (int ty = threadIdx.y; ty < tile_h; ty += MSD_BLOCK_Y) {
                    const S* row = chan + row_src[ty];
                    for (int tx = threadIdx.x; tx < tile_w; tx += MSD_BLOCK_X) {
                        tile[ty * tile_w + tx] = to_f32(row[col_src[tx]]);
                    }
                }
            }
        }
        for (int idx = tid; idx < OCB * nc * 9; idx += MSD_THREADS) {
            const int o = idx / (nc * 9);
            const int rem = idx - o * nc * 9;
            wsm[idx] = o < nout ? weight[((size_t)(oc0 + o) * cin + c0) * 9 + rem] : 0.0f;
        }
        __syncthreads();
        for (int cc = 0; cc < nc; ++cc) {
            const float* tile = smem + cc * tile_elems;
            const S* chan = base + (size_t)(c0 + cc) * plane;
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
                    float wv[OCB];
#pragma unroll
                    for (int o = 0; o < OCB; ++o) {
                        wv[o] = wsm[(o * nc + cc) * 9 + ky * 3 + kx];
                    }
#pragma unroll
                    for (int r = 0; r < FWD_ROWS; ++r) {
                        float v;
                        if constexpr (TILED) {
                            v = tile[(threadIdx.y + r * MSD_BLOCK_Y + ky * dil) * tile_w + threadIdx.x +
                                     kx * dil];
                        } else {
                            v = to_f32(chan[(size_t)gy[r][ky] * w + gx[kx]]);
                        }
#pragma unroll
                        for (int o = 0; o < OCB; ++o) {
                            acc[o][r] = fmaf(wv[o], v, acc[o][r]);
                        }
                    }
                }
            }
        }
    }

    const int x = x0 + threadIdx.x;
    if (x >= w) {
        return;
    }
#pragma unroll
    for (int r = 0; r < FWD_ROWS; ++r) {
        const int y = y0 + threadIdx.y + r * MSD_BLOCK_Y;
        if (y < h) {
#pragma unroll
            for (int o = 0; o < OCB; ++o) {
                if (o < nout) {
                    base[(size_t)(cin + oc0 + o) * plane + (size_t)y * w + x] =
                        from_f32<S>(fmaxf(acc[o][r], 0.0f));
                }
            }
        }
    }
}

#define MSD_CONV_FORWARD(NAME, S, OCB, TILED)                                                              \
    extern "C" __global__ void MSD_CONV_BOUNDS                                                            \
        NAME(S* feat, const float* weight, const float* bias, int cin, int width, int c_total, int h,    \
             int w, int dil, int chunk) {                                                                 \
        conv3x3_forward<S, OCB, TILED>(feat, weight, bias, cin, width, c_total, h, w, dil, chunk);        \
    }

MSD_CONV_FORWARD(conv3x3_forward_tiled_o1_f32, float, 1, true)
MSD_CONV_FORWARD(conv3x3_forward_tiled_o4_f32, float, 4, true)
MSD_CONV_FORWARD(conv3x3_forward_direct_o1_f32, float, 1, false)
MSD_CONV_FORWARD(conv3x3_forward_direct_o4_f32, float, 4, false)
MSD_CONV_FORWARD(conv3x3_forward_tiled_o1_f16, f16_bits, 1, true)
MSD_CONV_FORWARD(conv3x3_forward_tiled_o4_f16, f16_bits, 4, true)
MSD_CONV_FORWARD(conv3x3_forward_direct_o1_f16, f16_bits, 1, false)
MSD_CONV_FORWARD(conv3x3_forward_direct_o4_f16, f16_bits, 4, false)
MSD_CONV_FORWARD(conv3x3_forward_tiled_o1_bf16, bf16_bits, 1, true)
MSD_CONV_FORWARD(conv3x3_forward_tiled_o4_bf16, bf16_bits, 4, true)
MSD_CONV_FORWARD(conv3x3_forward_direct_o1_bf16, bf16_bits, 1, false)
MSD_CONV_FORWARD(conv3x3_forward_direct_o4_bf16, bf16_bits, 4, false)
