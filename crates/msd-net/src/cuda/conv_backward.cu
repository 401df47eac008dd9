// Backward pass of one MSDnet layer: ReLU mask, gradient with respect to the layer's inputs (the exact
// adjoint of the mirrored dilated convolution) and gradients of its weights and biases.
//
// Layouts as in conv_forward.cu. `dz` is the masked output gradient [images][width][h][w] of the layer.
#ifndef MSD_COMMON_CUH
#include "common.cuh"
#endif

// dz[img][dz_c0 + j][p] = grad[img][c_out0 + j][p] if feat[img][c_out0 + j][p] > 0, else 0, for the
// layer's `width` outputs; dz holds `dz_channels` channels per image (the masked gradients of a group).
extern "C" __global__ void relu_mask(const float* __restrict__ feat, const float* __restrict__ grad,
                                     float* __restrict__ dz, int images, int c_total, int c_out0, int width,
                                     int plane, int dz_channels, int dz_c0) {
    const size_t n = (size_t)images * width * plane;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (size_t)gridDim.x * blockDim.x) {
        const size_t per_image = (size_t)width * plane;
        const size_t img = idx / per_image;
        const size_t rem = idx - img * per_image;
        const size_t src = (img * c_total + c_out0) * plane + rem;
        dz[(img * dz_channels + dz_c0) * plane + rem] = feat[src] > 0.0f ? grad[src] : 0.0f;
    }
}

// Input gradient, gather form. The forward pass reads input pixel q through tap (ky, kx) from every
// output pixel p with mirror(p + o) = q, o = ((ky-1)d, (kx-1)d). Per dimension, mirror(t) = q exactly when
// t mod 2n is q or 2n-1-q, so the p are (q - o) mod 2n and (2n-1-q-o) mod 2n, each one counting when it
// lies inside the image: at most two per dimension, four per tap, at any dilation. The gathered sums
// T[o][tap] of dz do not depend on the input channel, so each thread forms them once and then updates
// every input channel with 9 * OCB multiply-adds per pixel.
//
// Blocks are 32x8 threads, each thread BWD_ROWS(OCB) rows 8 apart; grid.z = images. Adds into `grad`
// channels c_begin..cin. `dz` points at the layer's first masked-gradient channel of image 0; images are
// dz_channels channels apart.
#define BWD_ROWS(OCB) ((OCB) == 1 ? 4 : 1)

template <int OCB>
__device__ __forceinline__ void conv3x3_backward_input(float* __restrict__ grad, const float* __restrict__ dz,
                                                       const float* __restrict__ weight, int c_begin, int cin,
                                                       int width, int c_total, int h, int w, int dil,
                                                       int dz_channels) {
    constexpr int ROWS = BWD_ROWS(OCB);
    const int img = blockIdx.z;
    const int x = blockIdx.x * MSD_BLOCK_X + threadIdx.x;
    const int y_base = blockIdx.y * MSD_BLOCK_Y * ROWS + threadIdx.y;
    const size_t plane = (size_t)h * w;
    float* gbase = grad + (size_t)img * c_total * plane;
    const float* dzbase = dz + (size_t)img * dz_channels * plane;
    const int qx = min(x, w - 1);

    // Preimages along x for each kx, shared by all rows.
    int px[3][2];
    bool vx[3][2];
#pragma unroll
    for (int kx = 0; kx < 3; ++kx) {
        const int o = (kx - 1) * dil;
        px[kx][0] = positive_mod(qx - o, 2 * w);
        px[kx][1] = positive_mod(2 * w - 1 - qx - o, 2 * w);
        vx[kx][0] = px[kx][0] < w;
        vx[kx][1] = px[kx][1] < w;
    }

    for (int oc0 = 0; oc0 < width; oc0 += OCB) {
        const int nout = min(OCB, width - oc0);
        float t[OCB][9][ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const int qy = min(y_base + r * MSD_BLOCK_Y, h - 1);
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int o = (ky - 1) * dil;
                const int py0 = positive_mod(qy - o, 2 * h);
                const int py1 = positive_mod(2 * h - 1 - qy - o, 2 * h);
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
#pragma unroll
                    for (int oo = 0; oo < OCB; ++oo) {
                        float s = 0.0f;
                        if (oo < nout) {
                            const float* d = dzbase + (size_t)(oc0 + oo) * plane;
                            if (py0 < h) {
                                if (vx[kx][0]) s += d[(size_t)py0 * w + px[kx][0]];
                                if (vx[kx][1]) s += d[(size_t)py0 * w + px[kx][1]];
                            }
                            if (py1 < h) {
                                if (vx[kx][0]) s += d[(size_t)py1 * w + px[kx][0]];
                                if (vx[kx][1]) s += d[(size_t)py1 * w + px[kx][1]];
                            }
                        }
                        t[oo][ky * 3 + kx][r] = s;
                    }
                }
            }
        }
        if (x < w) {
            for (int c = c_begin; c < cin; ++c) {
                float acc[ROWS];
#pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    acc[r] = 0.0f;
                }
#pragma unroll
                for (int oo = 0; oo < OCB; ++oo) {
                    if (oo < nout) {
                        const float* wk = weight + ((size_t)(oc0 + oo) * cin + c) * 9;
#pragma unroll
                        for (int k = 0; k < 9; ++k) {
                            const float wv = __ldg(wk + k);
#pragma unroll
                            for (int r = 0; r < ROWS; ++r) {
                                acc[r] = fmaf(wv, t[oo][k][r], acc[r]);
                            }
                        }
                    }
                }
                float* gc = gbase + (size_t)c * plane;
#pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    const int y = y_base + r * MSD_BLOCK_Y;
                    if (y < h) {
                        gc[(size_t)y * w + x] += acc[r];
                    }
                }
            }
        }
    }
}

extern "C" __global__ void MSD_CONV_BOUNDS
    conv3x3_backward_input_o1(float* grad, const float* dz, const float* weight, int c_begin, int cin,
                              int width, int c_total, int h, int w, int dil, int dz_channels) {
    conv3x3_backward_input<1>(grad, dz, weight, c_begin, cin, width, c_total, h, w, dil, dz_channels);
}

extern "C" __global__ void MSD_CONV_BOUNDS
    conv3x3_backward_input_o4(float* grad, const float* dz, const float* weight, int c_begin, int cin,
                              int width, int c_total, int h, int w, int dil, int dz_channels) {
    conv3x3_backward_input<4>(grad, dz, weight, c_begin, cin, width, c_total, h, w, dil, dz_channels);
}

// Weight and bias gradients, first stage. Each block takes one 32x64 tile of one image and OCB output
// channels, keeps its dz values in registers, and for every input channel forms the 9 * OCB tap sums
// over its pixels, reduced over the block (warp shuffles, then shared memory): one store per weight per
// block, no atomics. Row `tile` of `partials` ([tiles][width*cin*9 + width]) receives the block's sums;
// reduce_partials adds the rows. Tiled variant: `chunk` input channels per shared-memory stage with the
// mirrored halo (loaded through row and column offset tables of tile_h + tile_w ints after the tiles);
// direct variant reads the mirrored input from global memory.
#define WGRAD_ROWS 8

template <int OCB, bool TILED>
__device__ __forceinline__ void conv3x3_weight_grad(const float* __restrict__ feat,
                                                    const float* __restrict__ dz,
                                                    float* __restrict__ partials, int cin, int width,
                                                    int c_total, int h, int w, int dil, int chunk) {
    float* smem = dynamic_smem();
    float* scratch = smem;  // OCB * 9 * warps floats
    float* tiles = smem + OCB * 9 * (MSD_THREADS / 32);
    const int tile_h = MSD_BLOCK_Y * WGRAD_ROWS + 2 * dil;
    const int tile_w = MSD_BLOCK_X + 2 * dil;
    const int tile_elems = TILED ? tile_h * tile_w : 0;
    // Mirrored source offsets of the tile's rows (times w) and columns, after the tiles.
    int* row_src = (int*)(tiles + chunk * tile_elems);
    int* col_src = row_src + tile_h;

    const int n_groups = (width + OCB - 1) / OCB;
    const int img = blockIdx.z / n_groups;
    const int oc0 = (blockIdx.z - img * n_groups) * OCB;
    const int nout = min(OCB, width - oc0);
    const int x0 = blockIdx.x * MSD_BLOCK_X;
    const int y0 = blockIdx.y * MSD_BLOCK_Y * WGRAD_ROWS;
    const int tid = threadIdx.y * MSD_BLOCK_X + threadIdx.x;
    if constexpr (TILED) {
        for (int i = tid; i < tile_h; i += MSD_THREADS) {
            row_src[i] = mirror_index(y0 - dil + i, h) * w;
        }
        for (int i = tid; i < tile_w; i += MSD_THREADS) {
            col_src[i] = mirror_index(x0 - dil + i, w);
        }
    }
    const size_t plane = (size_t)h * w;
    const float* fbase = feat + (size_t)img * c_total * plane;
    const size_t row_len = (size_t)width * cin * 9 + width;
    const size_t tile_id = ((size_t)img * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    float* prow = partials + tile_id * row_len;

    const int x = x0 + threadIdx.x;
    float g[OCB][WGRAD_ROWS];
#pragma unroll
    for (int r = 0; r < WGRAD_ROWS; ++r) {
        const int y = y0 + threadIdx.y + r * MSD_BLOCK_Y;
        const bool inside = x < w && y < h;
#pragma unroll
        for (int o = 0; o < OCB; ++o) {
            g[o][r] = (inside && o < nout) ? dz[((size_t)img * width + oc0 + o) * plane + (size_t)y * w + x]
                                           : 0.0f;
        }
    }

    // Bias gradient: the sum of dz over the tile.
    {
        float bsum[OCB];
#pragma unroll
        for (int o = 0; o < OCB; ++o) {
            bsum[o] = 0.0f;
#pragma unroll
            for (int r = 0; r < WGRAD_ROWS; ++r) {
                bsum[o] += g[o][r];
            }
        }
        float total;
        block_sum<OCB>(bsum, scratch, &total);
        if (tid < nout) {
            prow[(size_t)width * cin * 9 + oc0 + tid] = total;
        }
    }

    int gx[3];
    int gy[WGRAD_ROWS][3];
    if constexpr (!TILED) {
        const int xc = min(x, w - 1);
#pragma unroll
        for (int k = 0; k < 3; ++k) {
            gx[k] = mirror_index(xc + (k - 1) * dil, w);
        }
#pragma unroll
        for (int r = 0; r < WGRAD_ROWS; ++r) {
            const int y = min(y0 + (int)threadIdx.y + r * MSD_BLOCK_Y, h - 1);
#pragma unroll
            for (int k = 0; k < 3; ++k) {
                gy[r][k] = mirror_index(y + (k - 1) * dil, h);
            }
        }
    }

    for (int c0 = 0; c0 < cin; c0 += chunk) {
        const int nc = min(chunk, cin - c0);
        if constexpr (TILED) {
            __syncthreads();
            for (int cc = 0; cc < nc; ++cc) {
                const float* chan = fbase + (size_t)(c0 + cc) * plane;
                float* tile = tiles + cc * tile_elems;
                for (int ty = threadIdx.y; ty < tile_h; ty += MSD_BLOCK_Y) {
                    const float* row = chan + row_src[ty];
                    for (int tx = threadIdx.x; tx < tile_w; tx += MSD_BLOCK_X) {
                        tile[ty * tile_w + tx] = row[col_src[tx]];
                    }
                }
            }
            __syncthreads();
        }
        for (int cc = 0; cc < nc; ++cc) {
            const float* tile = tiles + cc * tile_elems;
            const float* chan = fbase + (size_t)(c0 + cc) * plane;
            float acc[OCB * 9];
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
#pragma unroll
                    for (int o = 0; o < OCB; ++o) {
                        acc[o * 9 + ky * 3 + kx] = 0.0f;
                    }
#pragma unroll
                    for (int r = 0; r < WGRAD_ROWS; ++r) {
                        float v;
                        if constexpr (TILED) {
                            v = tile[(threadIdx.y + r * MSD_BLOCK_Y + ky * dil) * tile_w + threadIdx.x +
                                     kx * dil];
                        } else {
                            v = chan[(size_t)gy[r][ky] * w + gx[kx]];
                        }
#pragma unroll
                        for (int o = 0; o < OCB; ++o) {
                            acc[o * 9 + ky * 3 + kx] = fmaf(g[o][r], v, acc[o * 9 + ky * 3 + kx]);
                        }
                    }
                }
            }
            float total;
            block_sum<OCB * 9>(acc, scratch, &total);
            if (tid < nout * 9) {
                const int o = tid / 9;
                const int k = tid - o * 9;
                prow[((size_t)(oc0 + o) * cin + c0 + cc) * 9 + k] = total;
            }
        }
    }
}

#define MSD_WEIGHT_GRAD(NAME, OCB, TILED)                                                                  \
    extern "C" __global__ void MSD_CONV_BOUNDS                                                            \
        NAME(const float* feat, const float* dz, float* partials, int cin, int width, int c_total, int h, \
             int w, int dil, int chunk) {                                                                 \
        conv3x3_weight_grad<OCB, TILED>(feat, dz, partials, cin, width, c_total, h, w, dil, chunk);       \
    }

MSD_WEIGHT_GRAD(conv3x3_weight_grad_tiled_o1, 1, true)
MSD_WEIGHT_GRAD(conv3x3_weight_grad_tiled_o4, 4, true)
MSD_WEIGHT_GRAD(conv3x3_weight_grad_direct_o1, 1, false)
MSD_WEIGHT_GRAD(conv3x3_weight_grad_direct_o4, 4, false)

// ---------------------------------------------------------------------------------------------------
// Grouped backward. The layers of a group (consecutive, `slots` = layers * width <= MSD_GROUP_SLOTS
// masked-gradient channels) read the same lower channels, so one pass over those channels serves the
// whole group: the feature gradient of each lower channel is read and written once per group instead of
// once per layer, and each feature tile is loaded once for the weight gradients of all the group's layers.
// Group layout: `weight` points at the first layer's block, layer l's block follows at
// 9 * width * (l * cin0 + width * l * (l - 1) / 2) (cin0 = the first layer's input count); `dils` holds the
// group's dilations; dz is [images][slots][plane] with layer l's output j at slot l * width + j.
#define MSD_GROUP_SLOTS 10

__device__ __forceinline__ size_t group_weight_offset(int l, int width, int cin0) {
    return (size_t)9 * width * ((size_t)l * cin0 + (size_t)width * l * (l - 1) / 2);
}

// Adds the input gradient of every layer of the group into grad channels 0..c_end (those below the
// group). One pixel per thread; blocks of 32x8; grid.z = images.
extern "C" __global__ void MSD_CONV_BOUNDS
    conv3x3_backward_input_group(float* __restrict__ grad, const float* __restrict__ dz,
                                 const float* __restrict__ weight, const int* __restrict__ dils, int slots,
                                 int width, int cin0, int c_end, int c_total, int h, int w) {
    const int img = blockIdx.z;
    const int x = blockIdx.x * MSD_BLOCK_X + threadIdx.x;
    const int y = blockIdx.y * MSD_BLOCK_Y + threadIdx.y;
    const size_t plane = (size_t)h * w;
    const float* dzbase = dz + (size_t)img * slots * plane;
    const int qx = min(x, w - 1);
    const int qy = min(y, h - 1);
    float t[MSD_GROUP_SLOTS][9];
#pragma unroll
    for (int s = 0; s < MSD_GROUP_SLOTS; ++s) {
        if (s < slots) {
            const int dil = dils[s / width];
            const float* d = dzbase + (size_t)s * plane;
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int oy = (ky - 1) * dil;
                const int py0 = positive_mod(qy - oy, 2 * h);
                const int py1 = positive_mod(2 * h - 1 - qy - oy, 2 * h);
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
                    const int ox = (kx - 1) * dil;
                    const int px0 = positive_mod(qx - ox, 2 * w);
                    const int px1 = positive_mod(2 * w - 1 - qx - ox, 2 * w);
                    float sum = 0.0f;
                    if (py0 < h) {
                        if (px0 < w) sum += d[(size_t)py0 * w + px0];
                        if (px1 < w) sum += d[(size_t)py0 * w + px1];
                    }
                    if (py1 < h) {
                        if (px0 < w) sum += d[(size_t)py1 * w + px0];
                        if (px1 < w) sum += d[(size_t)py1 * w + px1];
                    }
                    t[s][ky * 3 + kx] = sum;
                }
            }
        } else {
#pragma unroll
            for (int k = 0; k < 9; ++k) {
                t[s][k] = 0.0f;
            }
        }
    }
    if (x >= w || y >= h) {
        return;
    }
    float* g = grad + (size_t)img * c_total * plane + (size_t)y * w + x;
    for (int c = 0; c < c_end; ++c) {
        float acc = 0.0f;
#pragma unroll
        for (int s = 0; s < MSD_GROUP_SLOTS; ++s) {
            if (s < slots) {
                const int l = s / width;
                const int j = s - l * width;
                const int cin_l = cin0 + l * width;
                const float* wk = weight + group_weight_offset(l, width, cin0) + ((size_t)j * cin_l + c) * 9;
#pragma unroll
                for (int k = 0; k < 9; ++k) {
                    acc = fmaf(__ldg(wk + k), t[s][k], acc);
                }
            }
        }
        g[(size_t)c * plane] += acc;
    }
}

// Weight and bias gradients of every layer of the group, first stage: one 32x64 tile per block (grid.z =
// images), input channels 0..c_hi (c_hi = the last layer's input count) staged `chunk` at a time with the
// halo of the group's largest dilation `dmax`. For each channel and each layer that reads it, the 9 tap
// sums are reduced over the block. Row `tile` of partials: [the group's weights, in their parameter layout
// | the group's biases (slots)].
extern "C" __global__ void MSD_CONV_BOUNDS
    conv3x3_weight_grad_group(const float* __restrict__ feat, const float* __restrict__ dz,
                              float* __restrict__ partials, const int* __restrict__ dils, int slots,
                              int width, int cin0, int c_hi, int c_total, int h, int w, int dmax, int chunk) {
    float* smem = dynamic_smem();
    float* scratch = smem;  // MSD_GROUP_SLOTS * warps floats
    float* tiles = smem + MSD_GROUP_SLOTS * (MSD_THREADS / 32);
    const int tile_h = MSD_BLOCK_Y * WGRAD_ROWS + 2 * dmax;
    const int tile_w = MSD_BLOCK_X + 2 * dmax;
    const int tile_elems = tile_h * tile_w;
    int* row_src = (int*)(tiles + chunk * tile_elems);
    int* col_src = row_src + tile_h;

    const int img = blockIdx.z;
    const int x0 = blockIdx.x * MSD_BLOCK_X;
    const int y0 = blockIdx.y * MSD_BLOCK_Y * WGRAD_ROWS;
    const int tid = threadIdx.y * MSD_BLOCK_X + threadIdx.x;
    for (int i = tid; i < tile_h; i += MSD_THREADS) {
        row_src[i] = mirror_index(y0 - dmax + i, h) * w;
    }
    for (int i = tid; i < tile_w; i += MSD_THREADS) {
        col_src[i] = mirror_index(x0 - dmax + i, w);
    }
    const size_t plane = (size_t)h * w;
    const float* fbase = feat + (size_t)img * c_total * plane;
    const int layers = slots / width;
    const size_t weights_len = group_weight_offset(layers, width, cin0);
    const size_t row_len = weights_len + slots;
    const size_t tile_id = ((size_t)img * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    float* prow = partials + tile_id * row_len;

    const int x = x0 + threadIdx.x;
    float g[MSD_GROUP_SLOTS][WGRAD_ROWS];
    float bsum[MSD_GROUP_SLOTS];
#pragma unroll
    for (int s = 0; s < MSD_GROUP_SLOTS; ++s) {
        bsum[s] = 0.0f;
#pragma unroll
        for (int r = 0; r < WGRAD_ROWS; ++r) {
            const int y = y0 + threadIdx.y + r * MSD_BLOCK_Y;
            const bool inside = s < slots && x < w && y < h;
            g[s][r] = inside ? dz[((size_t)img * slots + s) * plane + (size_t)y * w + x] : 0.0f;
            bsum[s] += g[s][r];
        }
    }
    {
        float total;
        block_sum<MSD_GROUP_SLOTS>(bsum, scratch, &total);
        if (tid < slots) {
            prow[weights_len + tid] = total;
        }
    }

    for (int c0 = 0; c0 < c_hi; c0 += chunk) {
        const int nc = min(chunk, c_hi - c0);
        __syncthreads();
        for (int cc = 0; cc < nc; ++cc) {
            const float* chan = fbase + (size_t)(c0 + cc) * plane;
            float* tile = tiles + cc * tile_elems;
            for (int ty = threadIdx.y; ty < tile_h; ty += MSD_BLOCK_Y) {
                const float* row = chan + row_src[ty];
                for (int tx = threadIdx.x; tx < tile_w; tx += MSD_BLOCK_X) {
                    tile[ty * tile_w + tx] = row[col_src[tx]];
                }
            }
        }
        __syncthreads();
        for (int cc = 0; cc < nc; ++cc) {
            const int c = c0 + cc;
            const float* tile = tiles + cc * tile_elems;
#pragma unroll
            for (int s = 0; s < MSD_GROUP_SLOTS; ++s) {
                if (s < slots) {
                    const int l = s / width;
                    const int j = s - l * width;
                    const int cin_l = cin0 + l * width;
                    if (c < cin_l) {  // uniform over the block
                        const int dil = dils[l];
                        float acc[9];
#pragma unroll
                        for (int ky = 0; ky < 3; ++ky) {
#pragma unroll
                            for (int kx = 0; kx < 3; ++kx) {
                                float a = 0.0f;
                                const float* t = tile + (threadIdx.y + dmax + (ky - 1) * dil) * tile_w +
                                                 threadIdx.x + dmax + (kx - 1) * dil;
#pragma unroll
                                for (int r = 0; r < WGRAD_ROWS; ++r) {
                                    a = fmaf(g[s][r], t[r * MSD_BLOCK_Y * tile_w], a);
                                }
                                acc[ky * 3 + kx] = a;
                            }
                        }
                        float total;
                        block_sum<9>(acc, scratch, &total);
                        if (tid < 9) {
                            const size_t at =
                                group_weight_offset(l, width, cin0) + ((size_t)j * cin_l + c) * 9;
                            prow[at + tid] = total;
                        }
                    }
                }
            }
        }
    }
}

// Second stage of every gradient reduction: out[k] = sum over rows of partials[row][k], for k < row_len;
// the first len_a entries go to out_a, the rest to out_b (weights and biases live apart).
extern "C" __global__ void reduce_partials(const float* __restrict__ partials, int n_rows, int row_len,
                                           float* __restrict__ out_a, int len_a, float* __restrict__ out_b) {
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < row_len; k += gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int r = 0; r < n_rows; ++r) {
            s += partials[(size_t)r * row_len + k];
        }
        if (k < len_a) {
            out_a[k] = s;
        } else {
            out_b[k - len_a] = s;
        }
    }
}
