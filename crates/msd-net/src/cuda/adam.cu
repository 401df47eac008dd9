// Adam update of a flat parameter vector (PyTorch's Adam, equal to candle-nn's AdamW with zero weight
// decay). bias_correction1 = 1 - beta1^t and bias_correction2 = 1 - beta2^t come from the host.
#ifndef MSD_COMMON_CUH
#include "common.cuh"
#endif

extern "C" __global__ void adam_step(float* __restrict__ param, const float* __restrict__ grad,
                                     float* __restrict__ m, float* __restrict__ v, int n, float lr,
                                     float beta1, float beta2, float eps, float bias_correction1,
                                     float bias_correction2) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float g = grad[i];
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const float m_hat = mi / bias_correction1;
        const float v_hat = vi / bias_correction2;
        param[i] -= lr * m_hat / (sqrtf(v_hat) + eps);
    }
}
