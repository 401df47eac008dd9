// Input normalisation, the final 1x1 layer, softmax / class-weighted cross-entropy and its gradients.
//
// Layouts: features [images][c_total][plane]; head weights [n_classes][c_total], bias [n_classes];
// probabilities and the logits' gradient [images][n_classes][plane]; labels [images][plane] (u8).
#ifndef MSD_COMMON_CUH
#include "common.cuh"
#endif

// Most classes the head kernels keep in registers; the host refuses more.
#define MSD_MAX_CLASSES 8

// feat[img][c][p] = (raw[img][c][p] - mean[c]) * inv_std[c] for the c_in input channels.
template <typename S>
__device__ __forceinline__ void input_normalize(const float* __restrict__ raw, S* __restrict__ feat,
                                                const float* __restrict__ mean,
                                                const float* __restrict__ inv_std, int images, int c_in,
                                                int c_total, int plane) {
    const size_t n = (size_t)images * c_in * plane;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (size_t)gridDim.x * blockDim.x) {
        const size_t per_image = (size_t)c_in * plane;
        const size_t img = idx / per_image;
        const size_t rem = idx - img * per_image;
        const int c = (int)(rem / plane);
        feat[img * c_total * plane + rem] = from_f32<S>((raw[idx] - mean[c]) * inv_std[c]);
    }
}

#define MSD_INPUT_NORMALIZE(NAME, S)                                                                       \
    extern "C" __global__ void NAME(const float* raw, S* feat, const float* mean, const float* inv_std,  \
                                    int images, int c_in, int c_total, int plane) {                        \
        input_normalize<S>(raw, feat, mean, inv_std, images, c_in, c_total, plane);                        \
    }

MSD_INPUT_NORMALIZE(input_normalize_f32, float)
MSD_INPUT_NORMALIZE(input_normalize_f16, f16_bits)
MSD_INPUT_NORMALIZE(input_normalize_bf16, bf16_bits)

// Logits of one pixel: bias plus the 1x1 layer over all channels. Head weights are staged in shared
// memory (n_classes * c_total floats). Returns false for threads past the last pixel.
template <typename S>
__device__ __forceinline__ bool head_pixel_logits(const S* __restrict__ feat,
                                                  const float* __restrict__ weight,
                                                  const float* __restrict__ bias, int images, int c_total,
                                                  int n_classes, int plane, float* wsm,
                                                  float (&logit)[MSD_MAX_CLASSES], size_t& img, size_t& p) {
    for (int i = threadIdx.x; i < n_classes * c_total; i += blockDim.x) {
        wsm[i] = weight[i];
    }
    __syncthreads();
    const size_t gp = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (gp >= (size_t)images * plane) {
        return false;
    }
    img = gp / plane;
    p = gp - img * plane;
#pragma unroll
    for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
        logit[k] = k < n_classes ? bias[k] : 0.0f;
    }
    const S* f = feat + img * c_total * plane + p;
    for (int c = 0; c < c_total; ++c) {
        const float v = to_f32(f[(size_t)c * plane]);
#pragma unroll
        for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
            if (k < n_classes) {
                logit[k] = fmaf(wsm[k * c_total + c], v, logit[k]);
            }
        }
    }
    return true;
}

// Class probabilities (softmax of the logits), one thread per pixel; dynamic shared memory
// n_classes * c_total floats.
template <typename S>
__device__ __forceinline__ void head_softmax(const S* feat, const float* weight, const float* bias,
                                             float* __restrict__ probs, int images, int c_total,
                                             int n_classes, int plane) {
    float* wsm = dynamic_smem();
    float logit[MSD_MAX_CLASSES];
    size_t img, p;
    if (!head_pixel_logits<S>(feat, weight, bias, images, c_total, n_classes, plane, wsm, logit, img, p)) {
        return;
    }
    float m = logit[0];
#pragma unroll
    for (int k = 1; k < MSD_MAX_CLASSES; ++k) {
        if (k < n_classes) {
            m = fmaxf(m, logit[k]);
        }
    }
    float e[MSD_MAX_CLASSES];
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
        e[k] = k < n_classes ? expf(logit[k] - m) : 0.0f;
        sum += e[k];
    }
#pragma unroll
    for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
        if (k < n_classes) {
            probs[(img * n_classes + k) * plane + p] = e[k] / sum;
        }
    }
}

// Most probable class per pixel (the first one on ties, like argmax).
template <typename S>
__device__ __forceinline__ void head_argmax(const S* feat, const float* weight, const float* bias,
                                            unsigned char* __restrict__ labels, int images, int c_total,
                                            int n_classes, int plane) {
    float* wsm = dynamic_smem();
    float logit[MSD_MAX_CLASSES];
    size_t img, p;
    if (!head_pixel_logits<S>(feat, weight, bias, images, c_total, n_classes, plane, wsm, logit, img, p)) {
        return;
    }
    int best = 0;
    float best_logit = logit[0];
#pragma unroll
    for (int k = 1; k < MSD_MAX_CLASSES; ++k) {
        if (k < n_classes && logit[k] > best_logit) {
            best = k;
            best_logit = logit[k];
        }
    }
    labels[img * plane + p] = (unsigned char)best;
}

#define MSD_HEAD(S, SUFFIX)                                                                                \
    extern "C" __global__ void head_softmax_##SUFFIX(const S* feat, const float* weight, const float* bias,\
                                                     float* probs, int images, int c_total, int n_classes, \
                                                     int plane) {                                          \
        head_softmax<S>(feat, weight, bias, probs, images, c_total, n_classes, plane);                     \
    }                                                                                                      \
    extern "C" __global__ void head_argmax_##SUFFIX(const S* feat, const float* weight, const float* bias, \
                                                    unsigned char* labels, int images, int c_total,        \
                                                    int n_classes, int plane) {                            \
        head_argmax<S>(feat, weight, bias, labels, images, c_total, n_classes, plane);                     \
    }

MSD_HEAD(float, f32)
MSD_HEAD(f16_bits, f16)
MSD_HEAD(bf16_bits, bf16)

// Loss statistics, first stage. Per block of 256 pixels, row `block` of partials ([blocks][1 + 3 * 8]):
//   [0]              sum of cw[y] * -log(max(p_y, 1e-30))   (weighted cross-entropy, unnormalised)
//   [1 + k]          sum of p_k over pixels labelled k      (soft-Dice intersection)
//   [1 + 8 + k]      sum of p_k                              (soft-Dice prediction mass)
//   [1 + 16 + k]     count of pixels labelled k              (soft-Dice label mass)
// The host validates labels (< n_classes); a label out of range counts for nothing here.
#define MSD_LOSS_STATS (1 + 3 * MSD_MAX_CLASSES)

extern "C" __global__ void __launch_bounds__(256)
    head_loss_stats(const float* __restrict__ probs, const unsigned char* __restrict__ labels,
                    const float* __restrict__ class_weight, float* __restrict__ partials, int images,
                    int n_classes, int plane) {
    __shared__ float scratch[MSD_LOSS_STATS * 8];
    float st[MSD_LOSS_STATS];
#pragma unroll
    for (int i = 0; i < MSD_LOSS_STATS; ++i) {
        st[i] = 0.0f;
    }
    const size_t gp = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (gp < (size_t)images * plane) {
        const size_t img = gp / plane;
        const size_t p = gp - img * plane;
        const int y = labels[gp];
        const float* pr = probs + img * n_classes * plane + p;
#pragma unroll
        for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
            if (k < n_classes) {
                const float pk = pr[(size_t)k * plane];
                st[1 + MSD_MAX_CLASSES + k] = pk;
                if (k == y) {
                    st[0] = class_weight[k] * -logf(fmaxf(pk, 1e-30f));
                    st[1 + k] = pk;
                    st[1 + 2 * MSD_MAX_CLASSES + k] = 1.0f;
                }
            }
        }
    }
    float total;
    block_sum<MSD_LOSS_STATS>(st, scratch, &total);
    if (threadIdx.x < MSD_LOSS_STATS) {
        partials[(size_t)blockIdx.x * MSD_LOSS_STATS + threadIdx.x] = total;
    }
}

// Loss gradient at the logits and its back-propagation through the head, one thread per pixel:
//   dz_k = a * (p_k - [k == y]) + p_k * (g_k - sum_j p_j g_j),   a = cw[y] * norm
//   g_0 = 0, g_k = dice_b[k] + [k == y] * dice_a[k] for k >= 1 (the soft-Dice term; zero when unused)
//   grad[img][c][p] = sum_k head_w[k][c] * dz_k                    (overwrites the feature gradient)
// consts = [norm, dice_a[0..8], dice_b[0..8]] from the host (see network.rs). Dynamic shared memory:
// n_classes * c_total floats.
extern "C" __global__ void __launch_bounds__(256)
    head_loss_backward(const float* __restrict__ probs, const unsigned char* __restrict__ labels,
                       const float* __restrict__ class_weight, const float* __restrict__ consts,
                       const float* __restrict__ weight, float* __restrict__ dlogits,
                       float* __restrict__ grad, int images, int c_total, int n_classes, int plane) {
    float* wsm = dynamic_smem();
    for (int i = threadIdx.x; i < n_classes * c_total; i += blockDim.x) {
        wsm[i] = weight[i];
    }
    __syncthreads();
    const size_t gp = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (gp >= (size_t)images * plane) {
        return;
    }
    const size_t img = gp / plane;
    const size_t p = gp - img * plane;
    const int y = labels[gp];
    const float a = y < n_classes ? class_weight[y] * consts[0] : 0.0f;
    float pk[MSD_MAX_CLASSES];
    float g[MSD_MAX_CLASSES];
    float pg = 0.0f;
#pragma unroll
    for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
        pk[k] = k < n_classes ? probs[(img * n_classes + k) * plane + p] : 0.0f;
        g[k] = (k >= 1 && k < n_classes) ? consts[1 + MSD_MAX_CLASSES + k] + (k == y ? consts[1 + k] : 0.0f)
                                         : 0.0f;
        pg = fmaf(pk[k], g[k], pg);
    }
    float dl[MSD_MAX_CLASSES];
#pragma unroll
    for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
        dl[k] = a * (pk[k] - (k == y ? 1.0f : 0.0f)) + pk[k] * (g[k] - pg);
        if (k < n_classes) {
            dlogits[(img * n_classes + k) * plane + p] = dl[k];
        }
    }
    float* gr = grad + img * c_total * plane + p;
    for (int c = 0; c < c_total; ++c) {
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
            if (k < n_classes) {
                s = fmaf(wsm[k * c_total + c], dl[k], s);
            }
        }
        gr[(size_t)c * plane] = s;
    }
}

// Head weight and bias gradients, first stage: block (bx, c) sums dlogits[k] * feat[c] over its range of
// `pixels_per_block` pixels (counted over all images) and writes row bx of partials
// ([blocks][n_classes * c_total + n_classes]); blocks with c == 0 also write the bias sums.
extern "C" __global__ void __launch_bounds__(256)
    head_weight_grad(const float* __restrict__ feat, const float* __restrict__ dlogits,
                     float* __restrict__ partials, int images, int c_total, int n_classes, int plane,
                     int pixels_per_block) {
    __shared__ float scratch[MSD_MAX_CLASSES * 8];
    const int c = blockIdx.y;
    const size_t n_pix = (size_t)images * plane;
    const size_t start = (size_t)blockIdx.x * pixels_per_block;
    const size_t end = min(n_pix, start + (size_t)pixels_per_block);
    float accw[MSD_MAX_CLASSES];
    float accb[MSD_MAX_CLASSES];
#pragma unroll
    for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
        accw[k] = 0.0f;
        accb[k] = 0.0f;
    }
    for (size_t gp = start + threadIdx.x; gp < end; gp += blockDim.x) {
        const size_t img = gp / plane;
        const size_t p = gp - img * plane;
        const float f = feat[(img * c_total + c) * plane + p];
#pragma unroll
        for (int k = 0; k < MSD_MAX_CLASSES; ++k) {
            if (k < n_classes) {
                const float d = dlogits[(img * n_classes + k) * plane + p];
                accw[k] = fmaf(d, f, accw[k]);
                accb[k] += d;
            }
        }
    }
    const size_t row_len = (size_t)n_classes * c_total + n_classes;
    float* prow = partials + (size_t)blockIdx.x * row_len;
    float total;
    block_sum<MSD_MAX_CLASSES>(accw, scratch, &total);
    if ((int)threadIdx.x < n_classes) {
        prow[(size_t)threadIdx.x * c_total + c] = total;
    }
    if (c == 0) {
        block_sum<MSD_MAX_CLASSES>(accb, scratch, &total);
        if ((int)threadIdx.x < n_classes) {
            prow[(size_t)n_classes * c_total + threadIdx.x] = total;
        }
    }
}
