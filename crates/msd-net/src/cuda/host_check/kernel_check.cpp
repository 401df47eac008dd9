// CPU check of the CUDA kernel sources (no GPU): runs a small MSDnet through the kernels with the launch
// configurations of launch.rs, and compares features, probabilities, loss, parameter and input gradients
// and an Adam step with a straightforward double-precision reference of the same network.
//
//   g++ -std=c++20 -O2 -pthread crates/msd-net/src/cuda/host_check/kernel_check.cpp -o /tmp/kernel_check
//   /tmp/kernel_check
#include "cuda_host_shim.h"

#include "../common.cuh"
#include "../conv_forward.cu"
#include "../conv_backward.cu"
#include "../head.cu"
#include "../adam.cu"

#include <cstdio>
#include <random>
#include <string>

namespace {

constexpr int SMEM_FLOATS = 48 * 1024 / 4;  // the device's default per-block limit
extern int grouped_runs;

struct Net {
    int c_in, width, depth, classes;
    std::vector<int> dil;
    int c_total() const { return c_in + depth * width; }
    int cin(int i) const { return c_in + i * width; }
    size_t w_off(int i) const {
        size_t o = 0;
        for (int l = 0; l < i; ++l) o += (size_t)9 * width * cin(l);
        return o;
    }
    size_t conv_w_len() const { return w_off(depth); }
    size_t bias_off() const { return conv_w_len(); }
    size_t head_w_off() const { return bias_off() + (size_t)depth * width; }
    size_t head_b_off() const { return head_w_off() + (size_t)classes * c_total(); }
    size_t n_params() const { return head_b_off() + classes; }
};

int mirror(int t, int n) {
    int p = 2 * n, r = t % p;
    if (r < 0) r += p;
    return r < n ? r : p - 1 - r;
}

Dim3 one_d(size_t n) { return {(unsigned)std::clamp<size_t>((n + 255) / 256, 1, 1 << 20), 1, 1}; }

// ------------------------------------------------------------------ reference (double)
struct Ref {
    std::vector<double> feat, probs, grad, dparams;
    double loss = 0, ce = 0, dice = 0;
};

Ref reference(const Net& net, const std::vector<float>& par, const std::vector<float>& x,
              const std::vector<uint8_t>& labels, const std::vector<float>& cw, float dice_weight, int B, int H,
              int W) {
    const int C = net.c_total(), K = net.classes;
    const size_t P = (size_t)H * W;
    Ref r;
    r.feat.assign((size_t)B * C * P, 0.0);
    for (int b = 0; b < B; ++b)
        for (int c = 0; c < net.c_in; ++c)
            for (size_t p = 0; p < P; ++p) r.feat[((size_t)b * C + c) * P + p] = x[((size_t)b * net.c_in + c) * P + p];
    auto F = [&](int b, int c, int y, int xx) -> double& { return r.feat[((size_t)b * C + c) * P + (size_t)y * W + xx]; };
    for (int i = 0; i < net.depth; ++i) {
        const int ci = net.cin(i), d = net.dil[i];
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < net.width; ++j)
                for (int y = 0; y < H; ++y)
                    for (int xx = 0; xx < W; ++xx) {
                        double s = par[net.bias_off() + (size_t)i * net.width + j];
                        for (int c = 0; c < ci; ++c)
                            for (int ky = 0; ky < 3; ++ky)
                                for (int kx = 0; kx < 3; ++kx)
                                    s += par[net.w_off(i) + ((size_t)j * ci + c) * 9 + ky * 3 + kx] *
                                         F(b, c, mirror(y + (ky - 1) * d, H), mirror(xx + (kx - 1) * d, W));
                        F(b, ci + j, y, xx) = std::max(s, 0.0);
                    }
    }
    r.probs.assign((size_t)B * K * P, 0.0);
    std::vector<double> I(K, 0), Ps(K, 0), Y(K, 0);
    double ce = 0, tw = 0;
    for (int b = 0; b < B; ++b)
        for (size_t p = 0; p < P; ++p) {
            std::vector<double> z(K);
            double m = -1e300;
            for (int k = 0; k < K; ++k) {
                z[k] = par[net.head_b_off() + k];
                for (int c = 0; c < C; ++c) z[k] += par[net.head_w_off() + (size_t)k * C + c] * r.feat[((size_t)b * C + c) * P + p];
                m = std::max(m, z[k]);
            }
            double s = 0;
            for (int k = 0; k < K; ++k) s += std::exp(z[k] - m);
            for (int k = 0; k < K; ++k) r.probs[((size_t)b * K + k) * P + p] = std::exp(z[k] - m) / s;
            const int yl = labels[(size_t)b * P + p];
            ce -= cw[yl] * std::log(r.probs[((size_t)b * K + yl) * P + p]);
            tw += cw[yl];
            I[yl] += r.probs[((size_t)b * K + yl) * P + p];
            Y[yl] += 1;
            for (int k = 0; k < K; ++k) Ps[k] += r.probs[((size_t)b * K + k) * P + p];
        }
    const double norm = tw > 0 ? 1 / tw : 0, eps = 1e-6, fg = K - 1, lam = dice_weight;
    r.ce = ce * norm;
    r.dice = 0;
    for (int k = 1; k < K; ++k) r.dice += (2 * I[k] + eps) / (Ps[k] + Y[k] + eps) / fg;
    r.loss = r.ce + lam * (1 - r.dice);
    // Backward.
    r.grad.assign((size_t)B * C * P, 0.0);
    r.dparams.assign(net.n_params(), 0.0);
    for (int b = 0; b < B; ++b)
        for (size_t p = 0; p < P; ++p) {
            const int yl = labels[(size_t)b * P + p];
            const double a = cw[yl] * norm;
            std::vector<double> g(K, 0.0), pk(K);
            double pg = 0;
            for (int k = 0; k < K; ++k) {
                pk[k] = r.probs[((size_t)b * K + k) * P + p];
                if (k >= 1) {
                    const double den = Ps[k] + Y[k] + eps;
                    g[k] = lam / fg * 2 * (I[k] + eps / 2) / (den * den) + (k == yl ? -lam / fg * 2 / den : 0.0);
                }
                pg += pk[k] * g[k];
            }
            for (int k = 0; k < K; ++k) {
                const double dl = a * (pk[k] - (k == yl)) + pk[k] * (g[k] - pg);
                r.dparams[net.head_b_off() + k] += dl;
                for (int c = 0; c < C; ++c) {
                    r.dparams[net.head_w_off() + (size_t)k * C + c] += dl * r.feat[((size_t)b * C + c) * P + p];
                    r.grad[((size_t)b * C + c) * P + p] += par[net.head_w_off() + (size_t)k * C + c] * dl;
                }
            }
        }
    for (int i = net.depth - 1; i >= 0; --i) {
        const int ci = net.cin(i), d = net.dil[i];
        for (int b = 0; b < B; ++b)
            for (int j = 0; j < net.width; ++j)
                for (int y = 0; y < H; ++y)
                    for (int xx = 0; xx < W; ++xx) {
                        const size_t o = ((size_t)b * C + ci + j) * P + (size_t)y * W + xx;
                        const double dz = r.feat[o] > 0 ? r.grad[o] : 0.0;
                        r.dparams[net.bias_off() + (size_t)i * net.width + j] += dz;
                        for (int c = 0; c < ci; ++c)
                            for (int ky = 0; ky < 3; ++ky)
                                for (int kx = 0; kx < 3; ++kx) {
                                    const int sy = mirror(y + (ky - 1) * d, H), sx = mirror(xx + (kx - 1) * d, W);
                                    const size_t wi = net.w_off(i) + ((size_t)j * ci + c) * 9 + ky * 3 + kx;
                                    r.dparams[wi] += dz * F(b, c, sy, sx);
                                    r.grad[((size_t)b * C + c) * P + (size_t)sy * W + sx] += par[wi] * dz;
                                }
                    }
    }
    return r;
}

// ------------------------------------------------------------------ the kernels, as launch.rs runs them
struct Run {
    std::vector<float> feat, probs, grad, dparams, params_after;
    double loss = 0, ce = 0, dice = 0;
};

int chunk_for(int cin, int tile, int extra, int fixed) {
    for (int k = std::min(cin, 8); k >= 1; --k)
        if (fixed + k * (tile + extra) <= SMEM_FLOATS) return k;
    return 0;
}

Run run_kernels(const Net& net, std::vector<float> par, const std::vector<float>& x, const std::vector<uint8_t>& labels,
                const std::vector<float>& cw, float dice_weight, int B, int H, int W) {
    const int C = net.c_total(), K = net.classes;
    const size_t P = (size_t)H * W;
    Run out;
    std::vector<float> feat((size_t)B * C * P, std::nanf("")), grad((size_t)B * C * P, std::nanf(""));
    std::vector<float> probs((size_t)B * K * P, std::nanf("")), dl((size_t)B * K * P, std::nanf(""));
    std::vector<float> dz((size_t)B * std::max(net.width, 10) * P), dpar(net.n_params(), std::nanf(""));
    std::vector<float> mean(net.c_in, 0.0f), inv(net.c_in, 1.0f);
    emu_launch(input_normalize_f32, one_d((size_t)B * net.c_in * P), {256, 1, 1}, 0, x.data(), feat.data(), mean.data(),
               inv.data(), B, net.c_in, C, (int)P);
    for (int i = 0; i < net.depth; ++i) {
        const int ci = net.cin(i), d = net.dil[i], ocb = net.width >= 4 ? 4 : 1, groups = (net.width + ocb - 1) / ocb;
        const int th = 32 + 2 * d, tw = 32 + 2 * d;
        int chunk = chunk_for(ci, th * tw, ocb * 9, th + tw);
        const bool tiled = chunk > 0;
        if (!tiled) chunk = std::min(ci, 64);
        const size_t smem = 4 * (size_t)(tiled ? chunk * (th * tw + ocb * 9) + th + tw : chunk * ocb * 9);
        auto k = tiled ? (ocb == 4 ? conv3x3_forward_tiled_o4_f32 : conv3x3_forward_tiled_o1_f32)
                       : (ocb == 4 ? conv3x3_forward_direct_o4_f32 : conv3x3_forward_direct_o1_f32);
        emu_launch(k, {(unsigned)(W + 31) / 32, (unsigned)(H + 31) / 32, (unsigned)(B * groups)}, {32, 8, 1}, smem,
                   feat.data(), par.data() + net.w_off(i), par.data() + net.bias_off() + (size_t)i * net.width, ci,
                   net.width, C, H, W, d, chunk);
    }
    const size_t hsmem = 4 * (size_t)K * C;
    const unsigned pblocks = (unsigned)((B * P + 255) / 256);
    emu_launch(head_softmax_f32, {pblocks, 1, 1}, {256, 1, 1}, hsmem, feat.data(), par.data() + net.head_w_off(),
               par.data() + net.head_b_off(), probs.data(), B, C, K, (int)P);
    // Loss statistics and constants.
    constexpr int NS = 1 + 3 * 8;
    std::vector<float> part((size_t)pblocks * NS, std::nanf("")), stats(NS, std::nanf("")), none(1);
    emu_launch(head_loss_stats, {pblocks, 1, 1}, {256, 1, 1}, 0, probs.data(), labels.data(), cw.data(), part.data(), B,
               K, (int)P);
    emu_launch(reduce_partials, one_d(NS), {256, 1, 1}, 0, part.data(), (int)pblocks, NS, stats.data(), NS, none.data());
    double tw = 0;
    for (int k = 0; k < K; ++k) tw += cw[k] * (double)stats[1 + 16 + k];
    const double norm = tw > 0 ? 1 / tw : 0, eps = 1e-6, fg = K - 1, lam = dice_weight;
    out.ce = stats[0] * norm;
    out.dice = 0;
    std::vector<float> consts(1 + 16, 0.0f);
    consts[0] = (float)norm;
    for (int k = 1; k < K; ++k) {
        const double den = (double)stats[1 + 8 + k] + stats[1 + 16 + k] + eps;
        out.dice += (2.0 * stats[1 + k] + eps) / den / fg;
        consts[1 + k] = (float)(-lam / fg * 2 / den);
        consts[1 + 8 + k] = (float)(lam / fg * 2 * (stats[1 + k] + eps / 2) / (den * den));
    }
    out.loss = out.ce + lam * (1 - out.dice);
    emu_launch(head_loss_backward, {pblocks, 1, 1}, {256, 1, 1}, hsmem, probs.data(), labels.data(), cw.data(),
               consts.data(), par.data() + net.head_w_off(), dl.data(), grad.data(), B, C, K, (int)P);
    {
        const unsigned rows = (unsigned)((B * P + 8191) / 8192);
        const int row_len = K * C + K;
        std::vector<float> hp((size_t)rows * row_len, std::nanf(""));
        emu_launch(head_weight_grad, {rows, (unsigned)C, 1}, {256, 1, 1}, 0, feat.data(), dl.data(), hp.data(), B, C, K,
                   (int)P, 8192);
        emu_launch(reduce_partials, one_d(row_len), {256, 1, 1}, 0, hp.data(), (int)rows, row_len,
                   dpar.data() + net.head_w_off(), K * C, dpar.data() + net.head_b_off());
    }
    // The 3x3 layers, in groups from the top as network.rs runs them.
    std::vector<int> dils(net.dil.begin(), net.dil.end());
    const int gl = std::max(1, 10 / net.width);
    for (int i1 = net.depth; i1 > 0;) {
        const int i0 = std::max(0, i1 - gl), layers = i1 - i0, cin0 = net.cin(i0), slots = layers * net.width;
        const int dmax = *std::max_element(dils.begin() + i0, dils.begin() + i1);
        const int c_hi = cin0 + (layers - 1) * net.width, gth = 64 + 2 * dmax, gtw = 32 + 2 * dmax;
        const int gchunk = chunk_for(c_hi, gth * gtw, 0, 80 + gth + gtw);
        if (layers < 2 || gchunk == 0) {
            for (int i = i1 - 1; i >= i0; --i) {
                const int ci = net.cin(i), d = net.dil[i], ocb = net.width >= 4 ? 4 : 1;
                const int groups = (net.width + ocb - 1) / ocb;
                emu_launch(relu_mask, one_d((size_t)B * net.width * P), {256, 1, 1}, 0, feat.data(), grad.data(),
                           dz.data(), B, C, ci, net.width, (int)P, net.width, 0);
                const int rows = ocb == 1 ? 4 : 1;
                emu_launch(ocb == 1 ? conv3x3_backward_input_o1 : conv3x3_backward_input_o4,
                           {(unsigned)(W + 31) / 32, (unsigned)((H + 8 * rows - 1) / (8 * rows)), (unsigned)B},
                           {32, 8, 1}, 0, grad.data(), (const float*)dz.data(), par.data() + net.w_off(i), 0, ci,
                           net.width, C, H, W, d, net.width);
                const int scratch = ocb * 9 * 8, th = 64 + 2 * d, tw2 = 32 + 2 * d;
                int chunk = chunk_for(ci, th * tw2, 0, scratch + th + tw2);
                const bool tiled = chunk > 0;
                if (!tiled) chunk = std::min(ci, 8);
                const size_t smem = 4 * (size_t)(scratch + (tiled ? chunk * th * tw2 + th + tw2 : 0));
                const unsigned tx = (W + 31) / 32, ty = (H + 63) / 64;
                const size_t nrows = (size_t)tx * ty * B, row_len = (size_t)net.width * ci * 9 + net.width;
                std::vector<float> wp(nrows * row_len, std::nanf(""));
                auto k = tiled ? (ocb == 4 ? conv3x3_weight_grad_tiled_o4 : conv3x3_weight_grad_tiled_o1)
                               : (ocb == 4 ? conv3x3_weight_grad_direct_o4 : conv3x3_weight_grad_direct_o1);
                emu_launch(k, {tx, ty, (unsigned)(B * groups)}, {32, 8, 1}, smem, feat.data(), dz.data(), wp.data(),
                           ci, net.width, C, H, W, d, chunk);
                emu_launch(reduce_partials, one_d(row_len), {256, 1, 1}, 0, wp.data(), (int)nrows, (int)row_len,
                           dpar.data() + net.w_off(i), net.width * ci * 9,
                           dpar.data() + net.bias_off() + (size_t)i * net.width);
            }
        } else {
            ++grouped_runs;
            for (int i = i1 - 1; i >= i0; --i) {
                const int ci = net.cin(i), slot = (i - i0) * net.width, ocb = net.width >= 4 ? 4 : 1;
                emu_launch(relu_mask, one_d((size_t)B * net.width * P), {256, 1, 1}, 0, feat.data(), grad.data(),
                           dz.data(), B, C, ci, net.width, (int)P, slots, slot);
                if (i > i0) {
                    const int rows = ocb == 1 ? 4 : 1;
                    emu_launch(ocb == 1 ? conv3x3_backward_input_o1 : conv3x3_backward_input_o4,
                               {(unsigned)(W + 31) / 32, (unsigned)((H + 8 * rows - 1) / (8 * rows)), (unsigned)B},
                               {32, 8, 1}, 0, grad.data(), (const float*)dz.data() + (size_t)slot * P,
                               par.data() + net.w_off(i), cin0, ci, net.width, C, H, W, net.dil[i], slots);
                }
            }
            emu_launch(conv3x3_backward_input_group, {(unsigned)(W + 31) / 32, (unsigned)(H + 7) / 8, (unsigned)B},
                       {32, 8, 1}, 0, grad.data(), (const float*)dz.data(), par.data() + net.w_off(i0),
                       (const int*)dils.data() + i0, slots, net.width, cin0, cin0, C, H, W);
            const unsigned tx = (W + 31) / 32, ty = (H + 63) / 64;
            const size_t nrows = (size_t)tx * ty * B;
            const size_t wlen = net.w_off(i1) - net.w_off(i0), row_len = wlen + slots;
            std::vector<float> wp(nrows * row_len, std::nanf(""));
            emu_launch(conv3x3_weight_grad_group, {tx, ty, (unsigned)B}, {32, 8, 1},
                       4 * (size_t)(80 + gchunk * gth * gtw + gth + gtw), (const float*)feat.data(),
                       (const float*)dz.data(), wp.data(), (const int*)dils.data() + i0, slots, net.width, cin0, c_hi,
                       C, H, W, dmax, gchunk);
            emu_launch(reduce_partials, one_d(row_len), {256, 1, 1}, 0, wp.data(), (int)nrows, (int)row_len,
                       dpar.data() + net.w_off(i0), (int)wlen, dpar.data() + net.bias_off() + (size_t)i0 * net.width);
        }
        i1 = i0;
    }
    // One Adam step.
    std::vector<float> m(net.n_params(), 0.0f), v(net.n_params(), 0.0f);
    out.params_after = par;
    emu_launch(adam_step, one_d(net.n_params()), {256, 1, 1}, 0, out.params_after.data(), dpar.data(), m.data(), v.data(),
               (int)net.n_params(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.001f);
    out.feat = feat;
    out.probs = probs;
    out.grad = grad;
    out.dparams = dpar;
    return out;
}

int failures = 0;
int grouped_runs = 0;  // groups that took the grouped backward kernels

void compare(const std::string& what, const std::vector<float>& got, const std::vector<double>& want, size_t from = 0,
             size_t to = SIZE_MAX) {
    to = std::min(to, want.size());
    double num = 0, den = 0;
    size_t bad = 0;
    for (size_t i = from; i < to; ++i) {
        if (!std::isfinite(got[i])) ++bad;
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    const double e = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    const bool ok = bad == 0 && e < 1e-4;
    failures += !ok;
    std::printf("  %-28s rel err %.2e%s%s\n", what.c_str(), e, bad ? " (non-finite values)" : "", ok ? "" : "  FAIL");
}

void check_case(const char* name, Net net, int B, int H, int W, float dice_weight, unsigned seed) {
    std::printf("%s: c_in %d width %d depth %d classes %d, %d x %dx%d, dice %.2f\n", name, net.c_in, net.width,
                net.depth, net.classes, B, H, W, dice_weight);
    std::mt19937 rng(seed);
    std::normal_distribution<float> n01(0, 1);
    std::vector<float> par(net.n_params());
    for (auto& p : par) p = 0.3f * n01(rng);
    std::vector<float> x((size_t)B * net.c_in * H * W);
    for (auto& v : x) v = n01(rng);
    std::vector<uint8_t> labels((size_t)B * H * W);
    for (auto& l : labels) l = (uint8_t)(rng() % net.classes);
    std::vector<float> cw(net.classes, 1.0f);
    cw[0] = 0.4f;
    const Ref ref = reference(net, par, x, labels, cw, dice_weight, B, H, W);
    const Run run = run_kernels(net, par, x, labels, cw, dice_weight, B, H, W);
    compare("features", run.feat, ref.feat);
    compare("probabilities", run.probs, ref.probs);
    const double le = std::abs(run.loss - ref.loss) / std::max(1e-3, std::abs(ref.loss));
    failures += !(le < 1e-5);
    std::printf("  %-28s %.6f vs %.6f%s\n", "loss", run.loss, ref.loss, le < 1e-5 ? "" : "  FAIL");
    compare("input gradient (all ch.)", run.grad, ref.grad);
    compare("conv weight gradients", run.dparams, ref.dparams, 0, net.conv_w_len());
    compare("conv bias gradients", run.dparams, ref.dparams, net.bias_off(), net.head_w_off());
    compare("head gradients", run.dparams, ref.dparams, net.head_w_off(), net.n_params());
    // Adam step 1 with bias corrections (0.1, 0.001): p - lr * g / (|g| + eps·...) ≈ p - lr·sign(g).
    std::vector<double> want(par.size());
    for (size_t i = 0; i < par.size(); ++i) {
        const double g = ref.dparams[i], mh = 0.1 * g / 0.1, vh = 0.001 * g * g / 0.001;
        want[i] = par[i] - 1e-3 * mh / (std::sqrt(vh) + 1e-8);
    }
    compare("parameters after Adam", run.params_after, want);
}

Net make(int c_in, int width, int depth, int classes, std::vector<int> dil = {});

// Reduced-precision storage: the forward pass with f16 / bf16 feature maps, and the argmax head.
template <typename S, typename KNorm, typename KConv, typename KArg>
void check_storage(const char* name, KNorm knorm, KConv kconv, KArg karg, double tol) {
    const Net net = make(1, 1, 10, 2);
    const int B = 2, H = 37, W = 29, C = net.c_total();
    const size_t P = (size_t)H * W;
    std::mt19937 rng(77);
    std::normal_distribution<float> n01(0, 1);
    std::vector<float> par(net.n_params());
    for (auto& p : par) p = 0.3f * n01(rng);
    std::vector<float> x((size_t)B * P);
    for (auto& v : x) v = n01(rng);
    std::vector<uint8_t> labels((size_t)B * P, 0);
    const Ref ref = reference(net, par, x, labels, {1.0f, 1.0f}, 0.0f, B, H, W);
    std::vector<S> feat((size_t)B * C * P);
    std::vector<float> mean(1, 0.0f), inv(1, 1.0f);
    emu_launch(knorm, one_d((size_t)B * P), {256, 1, 1}, 0, x.data(), feat.data(), mean.data(), inv.data(), B, 1, C, (int)P);
    for (int i = 0; i < net.depth; ++i) {
        const int ci = net.cin(i), d = net.dil[i], t = (32 + 2 * d) * (32 + 2 * d);
        const int chunk = chunk_for(ci, t, 9, 64 + 4 * d);
        emu_launch(kconv, {(unsigned)(W + 31) / 32, (unsigned)(H + 31) / 32, (unsigned)B}, {32, 8, 1},
                   4 * (size_t)(chunk * (t + 9) + 64 + 4 * d), feat.data(), par.data() + net.w_off(i),
                   par.data() + net.bias_off() + i, ci, 1, C, H, W, d, chunk);
    }
    std::vector<float> as_f32(feat.size());
    for (size_t i = 0; i < feat.size(); ++i) as_f32[i] = to_f32(feat[i]);
    double num = 0, den = 0;
    for (size_t i = 0; i < feat.size(); ++i) {
        num += (as_f32[i] - ref.feat[i]) * (as_f32[i] - ref.feat[i]);
        den += ref.feat[i] * ref.feat[i];
    }
    const double e = std::sqrt(num / den);
    std::vector<uint8_t> lab((size_t)B * P, 255);
    emu_launch(karg, {(unsigned)((B * P + 255) / 256), 1, 1}, {256, 1, 1}, 4 * (size_t)2 * C, feat.data(),
               par.data() + net.head_w_off(), par.data() + net.head_b_off(), lab.data(), B, C, 2, (int)P);
    size_t wrong = 0, clear = 0;
    for (int b = 0; b < B; ++b)
        for (size_t p = 0; p < P; ++p) {
            const double p0 = ref.probs[((size_t)b * 2) * P + p], p1 = ref.probs[((size_t)b * 2 + 1) * P + p];
            if (std::abs(p1 - p0) > 0.05) {
                ++clear;
                wrong += lab[(size_t)b * P + p] != (p1 > p0 ? 1 : 0);
            }
        }
    const bool ok = e < tol && wrong == 0 && clear > 0;
    failures += !ok;
    std::printf("%s storage: features rel err %.2e (limit %.0e), argmax wrong at %zu of %zu clear pixels%s\n", name, e,
                tol, wrong, clear, ok ? "" : "  FAIL");
}

Net make(int c_in, int width, int depth, int classes, std::vector<int> dil) {
    Net n{c_in, width, depth, classes, dil};
    if (n.dil.empty())
        for (int i = 0; i < depth; ++i) n.dil.push_back(1 + i % 10);
    return n;
}

}  // namespace

int main() {
    check_case("tiles and borders", make(1, 1, 12, 2), 2, 37, 29, 0.0f, 1);
    check_case("image smaller than the dilations", make(1, 1, 10, 2), 2, 5, 7, 0.5f, 2);
    check_case("width 5, 2 inputs, 3 classes", make(2, 5, 4, 3), 1, 40, 33, 0.3f, 3);
    check_case("direct kernels (dilation 40, 57)", make(1, 2, 3, 2, {40, 3, 57}), 1, 70, 90, 0.0f, 4);
    check_case("one-pixel-wide column", make(1, 1, 4, 2), 2, 19, 1, 0.0f, 5);
    check_case("several tiles, 8 classes", make(1, 1, 3, 8), 1, 70, 65, 0.2f, 6);
    check_storage<float>("f32", input_normalize_f32, conv3x3_forward_tiled_o1_f32, head_argmax_f32, 1e-6);
    check_storage<f16_bits>("f16", input_normalize_f16, conv3x3_forward_tiled_o1_f16, head_argmax_f16, 2e-3);
    check_storage<bf16_bits>("bf16", input_normalize_bf16, conv3x3_forward_tiled_o1_bf16, head_argmax_bf16, 2e-2);
    std::printf("%d groups ran the grouped backward kernels\n", grouped_runs);
    failures += grouped_runs == 0;
    std::printf(failures ? "%d checks FAILED\n" : "all checks passed\n", failures);
    return failures ? 1 : 0;
}
