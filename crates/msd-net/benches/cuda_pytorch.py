#!/usr/bin/env python3
"""The MSDnet forward pass as a PyTorch / cuDNN composition, timed on the same GPU as benches/cuda.rs.

Same network as the Rust kernels: depth 100 (default), width 1, one input channel, 2 classes,
dilation 1 + (i mod 10), 3x3 convolutions over all earlier channels + bias + ReLU, numpy-'symmetric'
borders (edge pixel repeated, reflecting repeatedly), final 1x1 layer and softmax.

Two compositions a PyTorch user would write:
  pad-per-layer   each layer gathers its mirrored input (index_select) and runs one dilated conv2d;
  padded-buffer   one feature buffer padded by the largest dilation; each new channel's halo is filled
                  once, and every layer convolves a strided view of the buffer.
each in fp32 (TF32 off: the same arithmetic as the Rust kernels), TF32 and fp16, eagerly and replayed
as a CUDA graph. It also measures the device's peaks (device-to-device copy bandwidth, FP32 GEMM) so
that the Rust table can be read against them.

Usage (see src/cuda/README.md):
  python3 crates/msd-net/benches/cuda_pytorch.py [--slices 8] [--depth 100] [--size 512] [--runs 20]
Prints a table last; --json FILE also writes the numbers.
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def mirror_index(n, pad, device):
    """Indices of a numpy-'symmetric' padding of an axis of length n by `pad` on both sides."""
    t = torch.arange(-pad, n + pad, device=device)
    r = torch.remainder(t, 2 * n)
    return torch.where(r < n, r, 2 * n - 1 - r)


class MsdTorch:
    def __init__(self, depth, width, c_in, n_classes, device, seed=0):
        g = torch.Generator(device="cpu").manual_seed(seed)
        self.depth, self.width, self.c_in, self.n_classes = depth, width, c_in, n_classes
        self.dil = [1 + i % 10 for i in range(depth)]
        self.c_total = c_in + depth * width
        std = (2.0 / (9 * (self.c_total - 1) + n_classes)) ** 0.5
        self.w = [
            (torch.randn(width, c_in + i * width, 3, 3, generator=g) * std).to(device) for i in range(depth)
        ]
        self.b = [(torch.randn(width, generator=g) * 0.1).to(device) for _ in range(depth)]
        self.head_w = (torch.randn(n_classes, self.c_total, 1, 1, generator=g) * 0.05).to(device)
        self.head_b = torch.zeros(n_classes, device=device)
        self.device = device

    def cast(self, dtype):
        m = MsdTorch.__new__(MsdTorch)
        m.__dict__.update(self.__dict__)
        m.w = [w.to(dtype) for w in self.w]
        m.b = [b.to(dtype) for b in self.b]
        m.head_w, m.head_b = self.head_w.to(dtype), self.head_b.to(dtype)
        return m

    def forward_pad_per_layer(self, x):
        b, _, h, w = x.shape
        idx = {d: (mirror_index(h, d, x.device), mirror_index(w, d, x.device)) for d in set(self.dil)}
        feats = torch.empty(b, self.c_total, h, w, device=x.device, dtype=x.dtype)
        feats[:, : self.c_in] = x
        for i, d in enumerate(self.dil):
            cin = self.c_in + i * self.width
            iy, ix = idx[d]
            padded = feats[:, :cin].index_select(2, iy).index_select(3, ix)
            feats[:, cin : cin + self.width] = F.relu(F.conv2d(padded, self.w[i], self.b[i], dilation=d))
        return F.conv2d(feats, self.head_w, self.head_b).softmax(1)

    def forward_padded_buffer(self, x):
        b, _, h, w = x.shape
        p = max(self.dil)
        iy, ix = mirror_index(h, p, x.device), mirror_index(w, p, x.device)
        buf = torch.empty(b, self.c_total, h + 2 * p, w + 2 * p, device=x.device, dtype=x.dtype)
        buf[:, : self.c_in] = x.index_select(2, iy).index_select(3, ix)
        for i, d in enumerate(self.dil):
            cin = self.c_in + i * self.width
            view = buf[:, :cin, p - d : p + h + d, p - d : p + w + d]
            out = F.relu(F.conv2d(view, self.w[i], self.b[i], dilation=d))
            buf[:, cin : cin + self.width] = out.index_select(2, iy).index_select(3, ix)
        feats = buf[:, :, p : p + h, p : p + w]
        return F.conv2d(feats, self.head_w, self.head_b).softmax(1)


def time_ms(fn, runs, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def graphed(fn, static_input):
    """Captures fn(static_input) as a CUDA graph; returns a replay function."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn(static_input)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(static_input)
    return graph.replay


def peaks(device, runs):
    n = 1 << 28  # 1 GiB of fp32
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), runs)
    copy_gbs = 2 * n * 4 / (ms * 1e-3) / 1e9
    del src, dst
    out = {"copy_GBps": copy_gbs}
    m = 8192
    a = torch.randn(m, m, device=device)
    bm = torch.randn(m, m, device=device)
    for name, tf32 in [("fp32_gemm_TFLOPs", False), ("tf32_gemm_TFLOPs", True)]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ms = time_ms(lambda: a @ bm, max(3, runs // 4))
        out[name] = 2 * m**3 / (ms * 1e-3) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=8, help="slices per forward call (batch)")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to PyTorch")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    net = MsdTorch(args.depth, 1, 1, 2, dev)
    x32 = torch.randn(args.slices, 1, args.size, args.size, device=dev)

    # Both compositions compute the same function.
    torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        a = net.forward_pad_per_layer(x32[:1, :, :67, :45])
        b = net.forward_padded_buffer(x32[:1, :, :67, :45])
    assert torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())

    flops = 2.0 * args.size**2 * (sum(9 * (1 + i) for i in range(args.depth)) + 2 * (1 + args.depth))
    results = []
    with torch.no_grad():
        for precision in ["fp32", "tf32", "fp16"]:
            torch.backends.cudnn.allow_tf32 = precision == "tf32"
            m = net.cast(torch.float16) if precision == "fp16" else net
            x = x32.half() if precision == "fp16" else x32
            for variant in ["pad-per-layer", "padded-buffer"]:
                fn = m.forward_pad_per_layer if variant == "pad-per-layer" else m.forward_padded_buffer
                eager = time_ms(lambda: fn(x), args.runs)
                try:
                    replay = graphed(fn, x)
                    graph = time_ms(replay, args.runs)
                except RuntimeError as e:  # capture can fail on some versions; report eager only
                    print(f"graph capture failed for {variant} {precision}: {e}")
                    graph = float("nan")
                for mode, ms in [("eager", eager), ("cuda-graph", graph)]:
                    per_slice = ms / args.slices
                    results.append(
                        {
                            "variant": variant,
                            "precision": precision,
                            "mode": mode,
                            "ms_per_slice": per_slice,
                            "GFLOPs": flops / (per_slice * 1e-3) / 1e9,
                        }
                    )
    torch.backends.cudnn.allow_tf32 = False
    pk = peaks(dev, args.runs)
    name = torch.cuda.get_device_name()
    print()
    print(f"PyTorch {torch.__version__} / cuDNN {torch.backends.cudnn.version()} on {name}: "
          f"MSDnet depth {args.depth}, {args.size}x{args.size}, batch {args.slices}")
    print(f"measured peaks: copy {pk['copy_GBps']:.0f} GB/s (read+write), FP32 GEMM "
          f"{pk['fp32_gemm_TFLOPs']:.1f} TFLOP/s, TF32 GEMM {pk['tf32_gemm_TFLOPs']:.1f} TFLOP/s")
    print("| composition | precision | mode | ms per slice | GFLOP/s |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['precision']} | {r['mode']} | {r['ms_per_slice']:.3f} | {r['GFLOPs']:.0f} |")
    best = min((r for r in results if r["precision"] == "fp32"), key=lambda r: r["ms_per_slice"])
    print(f"best fp32 composition: {best['variant']} {best['mode']}, {best['ms_per_slice']:.3f} ms per slice; "
          f"a 250-slice volume would take {best['ms_per_slice'] * 250 / 1e3:.2f} s of forward passes")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "peaks": pk, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
