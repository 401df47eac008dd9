//! Inference with bf16 feature maps: the forward pass of [`super::forward`] with every stored
//! channel rounded to bfloat16 and every sum in `f32`, on Intel AMX tiles or AVX512-BF16 dot
//! products.
//!
//! Inference needs no `f32` feature maps: a stored activation rounded to bf16 (8 significant bits)
//! moves the skull probability by far less than the scan's noise does, and halves the bytes every
//! layer group reads. What it buys is the instructions: `vdpbf16ps` does twice the multiply-adds
//! of an `f32` FMA, and an AMX `tdpbf16ps` does a 16 × 16 × 32 matrix product, sixteen times the
//! FMA rate of a core.
//!
//! # The formulation
//!
//! The layers are taken in groups of 12 outputs (`layout.rs`), as the `f32` schedule takes
//! groups of 16 layers. A group's *bulk* — the contributions of every channel before it — is a 3×3 convolution with a
//! different dilation per output, which is not one matrix product. But its nine taps are: for
//! each image row, `P = A · X` gives every output's nine tap partials at the unshifted pixels
//! (`A`: 108 rows of weights, nine per output, × the slots read; `X`: the row's stored channels), on AMX tiles or
//! with `vdpbf16ps` (`product.rs`). Each output then sums its nine partials at its own shifted,
//! mirrored positions (`shift.rs`), in `f32`. The *triangle* inside the group — layer `s` feeding
//! the group's later layers — is one channel per step, too thin for a matrix product. For width
//! 1 (every shipped and default model) it is taken two layers at a time (`pairs.rs`): the link
//! inside a pair runs in `f32` on the band kernels of the `f32` forward pass, and the pair feeds the
//! group's later layers through one bf16 dot product per tap, on the group's `f32` planes; wider
//! networks run the whole triangle on the `f32` band kernels. Finished
//! outputs are stored as bf16 for later groups and added to the final 1×1 layer in `f32` (the
//! logits never see a rounded feature of their own group).
//!
//! The network's input channels are stored as two bf16 numbers each (about 16 significant
//! bits), with the weight split the same way: the CT's values, which the iso-surface boundary is
//! read from, lose nothing that matters.
//!
//! # What differs from `f32`, and what does not
//!
//! Each stored feature changes by at most half a bf16 unit (2⁻⁹ relative), each bulk weight too,
//! and so do the channels and weights of the triangle's pairs; the sums, the links inside the
//! pairs, the biases, ReLU and the final layer are `f32`. Results are
//! deterministic and do not depend on the number of threads. Networks whose largest dilation is
//! not smaller than the image (`halo ≥ min(h, w)`), or beyond the banded kernels' limit, run the
//! `f32` kernels instead.
use std::cell::RefCell;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::Isa;
use super::band::ForwardOut;
use crate::cpu::final_layer;
use crate::{Error, MsdConfig, Params, Result};

mod convert;
mod layout;
mod pairs;
mod product;
mod shift;

use convert::{bf16_bits as stored_weight, pair};
use layout::{Layout, input_slots};
use product::RowProduct;
use shift::{PartialRow, add_scaled, mirror_columns, store_pairs};

/// The instruction set a bf16 inference kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bf16Isa {
    /// Intel AMX: `tdpbf16ps` on 16 × 16 tiles (Sapphire Rapids and later Xeons).
    Amx,
    /// AVX512-BF16: `vdpbf16ps` on 512-bit vectors (AMD Zen 4/5, Intel Cooper Lake and later).
    Avx512Bf16,
    /// Portable loops with the same bf16 numbers and `f32` sums as the vector paths: for tests,
    /// and for reproducing a bf16 result on a CPU without the instructions (slowly).
    Portable,
}

impl Bf16Isa {
    /// The fastest bf16 instruction set this CPU (and OS) runs, if any: AMX, then AVX512-BF16.
    pub fn detect() -> Option<Bf16Isa> {
        static CHOSEN: OnceLock<Option<Bf16Isa>> = OnceLock::new();
        *CHOSEN.get_or_init(|| [Bf16Isa::Amx, Bf16Isa::Avx512Bf16].into_iter().find(|i| i.is_supported()))
    }

    /// Every bf16 instruction set this machine runs, fastest first, [`Bf16Isa::Portable`] last.
    pub fn available() -> Vec<Bf16Isa> {
        [Bf16Isa::Amx, Bf16Isa::Avx512Bf16, Bf16Isa::Portable]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }

    /// Whether this machine runs the instruction set. For AMX that includes the operating
    /// system's permission to use tile data, asked for once per process.
    pub fn is_supported(self) -> bool {
        match self {
            Bf16Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Bf16Isa::Avx512Bf16 => {
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
            }
            #[cfg(target_arch = "x86_64")]
            Bf16Isa::Amx => is_x86_feature_detected!("avx512f") && amx_permitted(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// A short name for logs and benchmark labels (`amx-bf16`, `avx512-bf16`, `bf16-portable`).
    pub fn name(self) -> &'static str {
        match self {
            Bf16Isa::Amx => "amx-bf16",
            Bf16Isa::Avx512Bf16 => "avx512-bf16",
            Bf16Isa::Portable => "bf16-portable",
        }
    }

    /// Whether the helpers around the product may use AVX-512F.
    fn simd(self) -> bool {
        self != Bf16Isa::Portable
    }
}

/// Whether the CPU has AMX-TILE and AMX-BF16 and Linux lets this process use tile data
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked once; granted for every thread
/// of the process).
#[cfg(target_arch = "x86_64")]
fn amx_permitted() -> bool {
    static PERMITTED: OnceLock<bool> = OnceLock::new();
    *PERMITTED.get_or_init(|| {
        // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
        let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
        let has = leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0;
        has && request_tile_permission()
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this request only changes which register state the kernel lets the
    // process use; it reads and writes no memory of ours.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

/// Other systems: AMX is not used (they need no request, but we have not run it there).
#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn request_tile_permission() -> bool {
    false
}

// The partial-row buffer of each worker thread, kept between passes and images.
thread_local! {
    static PARTIALS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A network's forward pass with bf16 feature maps, prepared once (weights packed) and reused for
/// every image; its buffers grow to the largest image seen.
///
/// ```
/// use msd_net::kernels::{Bf16Forward, Bf16Isa};
/// use msd_net::{MsdConfig, Params};
///
/// let config = MsdConfig::new(20, 1, 1, 2);
/// let params = Params::init(&config, 0)?;
/// let mut net = Bf16Forward::new(Bf16Isa::Portable, &config, &params)?;
/// let image = vec![0.25f32; 24 * 30];
/// let mut logits = Vec::new();
/// net.forward(&image, 24, 30, &mut logits)?;
/// assert_eq!(logits.len(), 2 * 24 * 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Bf16Forward {
    isa: Bf16Isa,
    f32_isa: Isa,
    config: MsdConfig,
    params: Params,
    layout: Layout,
    /// The largest dilation: the halo of mirrored columns and rows.
    halo: usize,
    /// The stored features `[h][pairs][x_pad]`, zero where nothing is stored.
    x: Vec<u32>,
    /// The current group's `f32` planes `[n_out][h][w]`.
    z: Vec<f32>,
    /// The pair rows of the triangle's current pair of layers `[h][pair_row_len]` (`pairs.rs`).
    q: Vec<u32>,
    /// Whether the triangle's pairs run on `vdpbf16ps` (else portable loops, same numbers).
    pair_dot: bool,
    /// The `(h, w)` the buffers are laid out for.
    shape: Option<(usize, usize)>,
    /// The `f32` feature buffer, for images smaller than the halo.
    features: Vec<f32>,
}

impl Bf16Forward {
    /// Packs `params` of a network `config` for the bf16 kernels of `isa`.
    ///
    /// # Errors
    /// [`Error::UnsupportedIsa`] when this machine cannot run `isa`; the configuration's and the
    /// parameters' own errors when they do not fit.
    pub fn new(isa: Bf16Isa, config: &MsdConfig, params: &Params) -> Result<Self> {
        config.validate()?;
        params.check_shape(config)?;
        if !isa.is_supported() {
            return Err(Error::UnsupportedIsa { isa: isa.name() });
        }
        Ok(Bf16Forward {
            isa,
            f32_isa: Isa::detect(),
            layout: Layout::new(config, &params.conv_weights),
            halo: config.dilations.iter().copied().max().unwrap_or(1),
            config: config.clone(),
            params: params.clone(),
            x: Vec::new(),
            z: Vec::new(),
            q: Vec::new(),
            pair_dot: isa != Bf16Isa::Portable && Bf16Isa::Avx512Bf16.is_supported(),
            shape: None,
            features: Vec::new(),
        })
    }

    /// The instruction set the bulk products run with.
    pub fn isa(&self) -> Bf16Isa {
        self.isa
    }

    /// The network's architecture.
    pub fn config(&self) -> &MsdConfig {
        &self.config
    }

    /// The logits `[n_classes][h][w]` of a normalised input image `[input_channels][h][w]`.
    ///
    /// # Errors
    /// [`Error::EmptyImage`] for an empty image, [`Error::TooLarge`] for one whose buffers would
    /// overflow;
    /// [`Error::BufferLength`] when `input` does not hold `input_channels · h · w` values.
    pub fn forward(&mut self, input: &[f32], h: usize, w: usize, logits: &mut Vec<f32>) -> Result<()> {
        let config = &self.config;
        let hw = h.checked_mul(w).filter(|&v| v > 0).ok_or(Error::EmptyImage { height: h, width: w })?;
        if input.len() != config.input_channels * hw {
            return Err(Error::len("input image", config.input_channels * hw, input.len()));
        }
        logits.resize(config.n_classes * hw, 0.0);
        if self.halo >= h.min(w) || self.halo > super::schedule::MAX_BANDED_DILATION {
            return self.forward_f32(input, h, w, logits);
        }
        let x_pad = w.next_multiple_of(32);
        let row_pairs = self.layout.pairs * x_pad;
        if self.shape != Some((h, w)) {
            let overflow =
                || Error::TooLarge { what: "bf16 feature buffer", dims: vec![h, self.layout.pairs, x_pad] };
            let len = h.checked_mul(row_pairs).ok_or_else(overflow)?;
            let max_out = self.layout.groups.iter().map(|g| g.n_out).max().unwrap_or(0);
            let z_len = max_out.checked_mul(hw).ok_or_else(overflow)?;
            // Zeroed: slots that hold no channel must read as zero (see `layout.rs`).
            self.x = Vec::new();
            self.x.resize(len, 0);
            self.z.resize(z_len, 0.0);
            let q_len = h.checked_mul(pairs::pair_row_len(w, self.halo)).ok_or_else(overflow)?;
            self.q.resize(q_len, 0);
            self.shape = Some((h, w));
        }
        // Each task computes the product rows of its own rows and of a halo on either side: tasks
        // of at least four halos keep that below half of their work on many-core machines.
        let threads = rayon::current_num_threads().min(h / (4 * self.halo)).max(1);
        let bounds: Vec<usize> = (0..=threads).map(|i| i * h / threads).collect();
        let (mut x, mut z, mut q) =
            (std::mem::take(&mut self.x), std::mem::take(&mut self.z), std::mem::take(&mut self.q));
        let run = Run { net: self, h, w, x_pad, row_pairs, bounds: &bounds };
        run.store_input(&mut x, input, logits);
        for g in 0..run.net.layout.groups.len() {
            run.bulk(g, &x, &mut z);
            if run.net.config.width == 1 {
                run.triangle_in_pairs(g, &mut z, &mut q);
            } else {
                run.triangle(g, &mut z);
            }
            run.store_group(g, &mut x, &z, logits);
        }
        self.x = x;
        self.z = z;
        self.q = q;
        Ok(())
    }

    /// The `f32` kernels and final layer, for images no larger than the halo.
    fn forward_f32(&mut self, input: &[f32], h: usize, w: usize, logits: &mut [f32]) -> Result<()> {
        let hw = h * w;
        let channels = self.config.total_channels();
        let need = channels
            .checked_mul(hw)
            .ok_or(Error::TooLarge { what: "feature buffer", dims: vec![channels, h, w] })?;
        self.features.resize(need, 0.0);
        self.features[..input.len()].copy_from_slice(input);
        let p = &self.params;
        super::forward(
            self.f32_isa,
            &self.config,
            &p.conv_weights,
            &p.conv_biases,
            &mut self.features,
            h,
            w,
        )?;
        final_layer(&self.config, p, &self.features, hw, logits);
        Ok(())
    }
}

/// One image's pass: the network and the image's geometry.
struct Run<'a> {
    net: &'a Bf16Forward,
    h: usize,
    w: usize,
    x_pad: usize,
    /// `u32`s per image row of the feature buffer.
    row_pairs: usize,
    /// Row ranges of the parallel tasks: task `i` owns rows `bounds[i]..bounds[i + 1]`.
    bounds: &'a [usize],
}

impl Run<'_> {
    /// Rows `bounds[i]..bounds[i + 1]` of each `h × w` plane of `planes`, one list per task.
    fn split_planes<'p>(&self, planes: &'p mut [f32], n: usize) -> Vec<Vec<&'p mut [f32]>> {
        let hw = self.h * self.w;
        let mut tasks: Vec<Vec<&mut [f32]>> = (1..self.bounds.len()).map(|_| Vec::with_capacity(n)).collect();
        for plane in planes[..n * hw].chunks_exact_mut(hw) {
            let mut rest = plane;
            for (t, rows) in tasks.iter_mut().zip(self.bounds.windows(2)) {
                let (mine, tail) = rest.split_at_mut((rows[1] - rows[0]) * self.w);
                t.push(mine);
                rest = tail;
            }
        }
        tasks
    }

    /// The feature rows of each task.
    fn split_rows<'p>(&self, x: &'p mut [u32]) -> Vec<&'p mut [u32]> {
        self.split_rows_of(x, self.row_pairs)
    }

    /// Stores the input channels (three slots each) and starts the logits from the final layer's
    /// biases and the inputs' terms.
    fn store_input(&self, x: &mut [u32], input: &[f32], logits: &mut [f32]) {
        let (config, params) = (&self.net.config, &self.net.params);
        let (w, hw, x_pad) = (self.w, self.h * self.w, self.x_pad);
        let c_total = config.total_channels();
        let simd = self.net.isa.simd();
        let k = config.n_classes;
        self.split_rows(x).into_par_iter().zip(self.split_planes(logits, k)).enumerate().for_each(
            |(t, (xrows, mut lrows))| {
                let ya = self.bounds[t];
                for (yy, xr) in xrows.chunks_exact_mut(self.row_pairs).enumerate() {
                    let y = ya + yy;
                    for i in 0..config.input_channels {
                        let row = &input[i * hw + y * w..i * hw + (y + 1) * w];
                        for (xi, &v) in row.iter().enumerate() {
                            for (part, bits) in input_slots(v).into_iter().enumerate() {
                                let s = 3 * i + part;
                                let at = (s / 2) * x_pad + xi;
                                let shift = 16 * (s % 2);
                                xr[at] = (xr[at] & !(0xffff << shift)) | (bits as u32) << shift;
                            }
                        }
                    }
                }
                for (c, l) in lrows.iter_mut().enumerate() {
                    l.fill(params.final_biases[c]);
                    for i in 0..config.input_channels {
                        let rows = &input[i * hw + ya * w..i * hw + ya * w + l.len()];
                        add_scaled(l, params.final_weights[c * c_total + i], rows, simd);
                    }
                }
            },
        );
    }

    /// Group `g`'s bulk: its planes start from the biases and receive every earlier channel's
    /// contribution through the row products; then its first layer is complete (ReLU).
    fn bulk(&self, g: usize, x: &[u32], z: &mut [f32]) {
        let net = self.net;
        let group = &net.layout.groups[g];
        let (h, w, halo, x_pad) = (self.h, self.w, net.halo, self.x_pad);
        let width = net.config.width;
        let dilations: Vec<usize> =
            (0..group.n_out).map(|o| net.config.dilations[group.layers.start + o / width]).collect();
        let biases = &net.params.conv_biases[group.layers.start * width..group.layers.end * width];
        let p_stride = halo + x_pad + halo;
        let used_rows = 9 * group.n_out;
        let simd = net.isa.simd();
        self.split_planes(z, group.n_out).into_par_iter().enumerate().for_each(|(t, mut planes)| {
            let (ya, yb) = (self.bounds[t], self.bounds[t + 1]);
            for (plane, &b) in planes.iter_mut().zip(biases) {
                plane.fill(b);
            }
            PARTIALS.with_borrow_mut(|p| {
                if p.len() < group.rows * p_stride {
                    p.resize(group.rows * p_stride, 0.0);
                }
                for r in ya.saturating_sub(halo)..(yb + halo).min(h) {
                    let product = RowProduct {
                        a: &group.a,
                        rows: group.rows,
                        k_pairs: group.k_pairs,
                        k_used: group.slot_base / 2,
                        rows_used: used_rows,
                        x: &x[r * self.row_pairs..(r + 1) * self.row_pairs],
                        x_pad,
                    };
                    product.run(net.isa, p, p_stride, halo);
                    mirror_columns(p, used_rows, p_stride, halo, w, halo);
                    let row = PartialRow { p, p_stride, col0: halo, r, h, w, dilations: &dilations };
                    row.add_to(&mut planes, ya, yb, simd);
                }
            });
            for plane in planes.iter_mut().take(width) {
                plane.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        });
    }

    /// Group `g`'s triangle: each layer, once complete, added to the group's later layers, in
    /// `f32` on the band kernels of the `f32` forward pass.
    fn triangle(&self, g: usize, z: &mut [f32]) {
        let net = self.net;
        let (config, weights) = (&net.config, &net.params.conv_weights);
        let group = &net.layout.groups[g];
        let (width, hw) = (config.width, self.h * self.w);
        let layers = group.layers.len();
        for s in 0..layers.saturating_sub(1) {
            let (lo, hi) = z.split_at_mut((s + 1) * width * hw);
            let own = group.first_channel + s * width;
            let outs: Vec<ForwardOut<'_>> = (s + 1..layers)
                .flat_map(|jj| (0..width).map(move |o| (jj, o)))
                .map(|(jj, o)| {
                    let j = group.layers.start + jj;
                    let at = config.weight_offset(j) + o * config.layer_inputs(j) * 9;
                    ForwardOut {
                        d: config.dilations[j],
                        weights: &weights[at + own * 9..at + (own + width) * 9],
                        bias: 0.0,
                        relu: jj == s + 1,
                    }
                })
                .collect();
            let planes = &mut hi[..outs.len() * hw];
            super::schedule::conv_planes(
                net.f32_isa,
                (self.h, self.w),
                net.halo,
                &lo[s * width * hw..],
                &outs,
                planes,
                false,
            );
        }
    }

    /// Group `g`'s triangle for width 1, two layers at a time (`pairs.rs`): layer `s` completes
    /// `s + 1` in `f32`, then the pair `(s, s + 1)` feeds every later layer of the group through
    /// bf16 dot products, which completes `s + 2`.
    fn triangle_in_pairs(&self, g: usize, z: &mut [f32], q: &mut [u32]) {
        let net = self.net;
        let (config, weights) = (&net.config, &net.params.conv_weights);
        let group = &net.layout.groups[g];
        let (h, w, hw, halo) = (self.h, self.w, self.h * self.w, net.halo);
        let layers = group.layers.len();
        let len = pairs::pair_row_len(w, halo);
        let weight = |jj: usize, s: usize, t: usize| {
            let j = group.layers.start + jj;
            weights[config.weight_offset(j) + (group.first_channel + s) * 9 + t]
        };
        let mut s = 0;
        while s + 1 < layers {
            // The pair's own link, one channel in f32; it completes layer s + 1.
            let (lo, hi) = z.split_at_mut((s + 1) * hw);
            let j = group.layers.start + s + 1;
            let at = config.weight_offset(j) + (group.first_channel + s) * 9;
            let link =
                ForwardOut { d: config.dilations[j], weights: &weights[at..at + 9], bias: 0.0, relu: true };
            super::schedule::conv_planes(
                net.f32_isa,
                (h, w),
                halo,
                &lo[s * hw..],
                &[link],
                &mut hi[..hw],
                false,
            );
            if s + 2 >= layers {
                break;
            }
            let (done, later) = z.split_at_mut((s + 2) * hw);
            let (a, b) = (&done[s * hw..(s + 1) * hw], &done[(s + 1) * hw..(s + 2) * hw]);
            self.split_rows_of(q, len).into_par_iter().enumerate().for_each(|(t, rows)| {
                let ya = self.bounds[t];
                for (yy, row) in rows.chunks_exact_mut(len).enumerate() {
                    let y = (ya + yy) * w;
                    pairs::store_pair_row(row, &a[y..y + w], &b[y..y + w], halo, net.isa.simd());
                }
            });
            let outs: Vec<(usize, [u32; 9])> = (s + 2..layers)
                .map(|jj| {
                    let taps = std::array::from_fn(|t| {
                        pair(stored_weight(weight(jj, s, t)), stored_weight(weight(jj, s + 1, t)))
                    });
                    (config.dilations[group.layers.start + jj], taps)
                })
                .collect();
            let q: &[u32] = q;
            self.split_planes(later, outs.len()).into_par_iter().enumerate().for_each(|(t, mut planes)| {
                let ya = self.bounds[t];
                for (k, (plane, (d, taps))) in planes.iter_mut().zip(&outs).enumerate() {
                    for (yy, out) in plane.chunks_exact_mut(w).enumerate() {
                        let rows = [0isize, 1, 2].map(|ky| {
                            let r = super::reflect((ya + yy) as isize + (ky - 1) * *d as isize, h);
                            &q[r * len..(r + 1) * len]
                        });
                        pairs::add_pair_taps(out, rows, halo, *d, taps, net.pair_dot);
                        if k == 0 {
                            // Layer s + 2 has all its terms now.
                            out.iter_mut().for_each(|v| *v = v.max(0.0));
                        }
                    }
                }
            });
            s += 2;
        }
    }

    /// Each task's rows of a buffer of `len` values per image row.
    fn split_rows_of<'p>(&self, buf: &'p mut [u32], len: usize) -> Vec<&'p mut [u32]> {
        let mut rest = &mut buf[..self.h * len];
        self.bounds
            .windows(2)
            .map(|rows| {
                let (mine, tail) = std::mem::take(&mut rest).split_at_mut((rows[1] - rows[0]) * len);
                rest = tail;
                mine
            })
            .collect()
    }

    /// Stores group `g`'s finished outputs as bf16 for the groups after it, and adds them to the
    /// logits in `f32`: one pass over the group's planes, row by row.
    fn store_group(&self, g: usize, x: &mut [u32], z: &[f32], logits: &mut [f32]) {
        let net = self.net;
        let group = &net.layout.groups[g];
        let (w, hw, x_pad) = (self.w, self.h * self.w, self.x_pad);
        let c_total = net.config.total_channels();
        let simd = net.isa.simd();
        let k = net.config.n_classes;
        let weights: Vec<Vec<f32>> = (0..k)
            .map(|c| net.params.final_weights[c * c_total + group.first_channel..][..group.n_out].to_vec())
            .collect();
        self.split_rows(x).into_par_iter().zip(self.split_planes(logits, k)).enumerate().for_each(
            |(t, (xrows, mut lrows))| {
                let ya = self.bounds[t];
                for (yy, xr) in xrows.chunks_exact_mut(self.row_pairs).enumerate() {
                    let y = ya + yy;
                    let outputs: Vec<&[f32]> =
                        (0..group.n_out).map(|o| &z[o * hw + y * w..o * hw + (y + 1) * w]).collect();
                    store_pairs(&mut xr[group.slot_base / 2 * x_pad..], x_pad, &outputs, simd);
                    for (l, wk) in lrows.iter_mut().zip(&weights) {
                        let l = &mut l[yy * w..(yy + 1) * w];
                        for (&weight, v) in wk.iter().zip(&outputs) {
                            add_scaled(l, weight, v, simd);
                        }
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::cpu::final_layer;

    fn network(config: &MsdConfig, seed: u64) -> Params {
        let mut p = Params::init(config, seed).unwrap();
        let mut rng = StdRng::seed_from_u64(seed + 1);
        p.conv_biases.iter_mut().for_each(|b| *b = rng.random_range(-0.05..0.2));
        p.final_weights.iter_mut().for_each(|v| *v = rng.random_range(-1.0..1.0));
        p.final_biases.iter_mut().for_each(|v| *v = rng.random_range(-0.5..0.5));
        p
    }

    fn image(c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        // Smooth structure plus noise, as in a normalised CT.
        (0..c * h * w)
            .map(|i| {
                let (y, x) = ((i / w) % h, i % w);
                ((x as f32 * 0.3).sin() + (y as f32 * 0.17).cos()) + rng.random_range(-0.3..0.3)
            })
            .collect()
    }

    /// The `f32` logits of the naive reference loops.
    fn reference(config: &MsdConfig, p: &Params, input: &[f32], h: usize, w: usize) -> Vec<f32> {
        let hw = h * w;
        let mut f = vec![0.0; config.total_channels() * hw];
        f[..input.len()].copy_from_slice(input);
        crate::kernels::reference::forward(config, &p.conv_weights, &p.conv_biases, &mut f, h, w);
        let mut logits = vec![0.0; config.n_classes * hw];
        final_layer(config, p, &f, hw, &mut logits);
        logits
    }

    /// The largest difference, relative to the largest magnitude of `want`.
    fn rel_err(got: &[f32], want: &[f32]) -> f32 {
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale
    }

    const CASES: [(usize, usize, usize, usize, usize); 6] = [
        // (depth, width, input channels, h, w)
        (20, 1, 1, 23, 37),
        (40, 1, 3, 16, 64),
        (17, 2, 1, 31, 19),
        (6, 3, 2, 12, 40),
        (2, 20, 1, 14, 11),
        (33, 1, 1, 70, 45),
    ];

    /// The bf16 tolerance of a whole network's logits, relative to their largest magnitude:
    /// stored features and bulk weights are rounded by up to 2⁻⁹ each (0.4 % per product), and
    /// the errors of tens of layers add up, partly cancelling.
    const LOGIT_TOLERANCE: f32 = 1e-2;

    #[test]
    fn every_bf16_path_matches_the_naive_reference() {
        for isa in Bf16Isa::available() {
            for (i, &(depth, width, c_in, h, w)) in CASES.iter().enumerate() {
                let config = MsdConfig::new(depth, width, c_in, 2);
                let p = network(&config, i as u64);
                let input = image(c_in, h, w, 10 + i as u64);
                let want = reference(&config, &p, &input, h, w);
                let mut net = Bf16Forward::new(isa, &config, &p).unwrap();
                let mut got = Vec::new();
                net.forward(&input, h, w, &mut got).unwrap();
                let err = rel_err(&got, &want);
                eprintln!("{} depth {depth} width {width} c_in {c_in} {h}×{w}: {err:.2e}", isa.name());
                assert!(err < LOGIT_TOLERANCE, "{}: case {i}: relative error {err}", isa.name());
            }
        }
        for missing in [Bf16Isa::Amx, Bf16Isa::Avx512Bf16].into_iter().filter(|i| !i.is_supported()) {
            eprintln!("skipped: this CPU has no {} (tested on the others)", missing.name());
        }
    }

    #[test]
    fn the_vector_paths_sum_the_same_numbers_as_the_portable_one() {
        // Same bf16 inputs and weights: only the order of the f32 additions differs.
        let config = MsdConfig::new(40, 1, 1, 2);
        let p = network(&config, 7);
        let (h, w) = (48, 80);
        let input = image(1, h, w, 8);
        let mut portable = Vec::new();
        Bf16Forward::new(Bf16Isa::Portable, &config, &p)
            .unwrap()
            .forward(&input, h, w, &mut portable)
            .unwrap();
        for isa in Bf16Isa::available().into_iter().filter(|&i| i != Bf16Isa::Portable) {
            let mut got = Vec::new();
            Bf16Forward::new(isa, &config, &p).unwrap().forward(&input, h, w, &mut got).unwrap();
            let err = rel_err(&got, &portable);
            eprintln!("{} vs portable: {err:.2e}", isa.name());
            assert!(err < 2e-3, "{}: {err}", isa.name());
        }
    }

    #[test]
    fn results_do_not_depend_on_the_number_of_threads_or_on_earlier_images() {
        let config = MsdConfig::new(30, 1, 1, 2);
        let p = network(&config, 3);
        // 130 rows: up to three tasks of at least four halos (dilation 10) each.
        let (h, w) = (130, 50);
        let a = image(1, h, w, 4);
        let b = image(1, h, w, 5);
        let isa = Bf16Isa::available()[0];
        let run = |threads: usize, images: &[&[f32]]| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut net = Bf16Forward::new(isa, &config, &p).unwrap();
                let mut out = Vec::new();
                for im in images {
                    net.forward(im, h, w, &mut out).unwrap();
                }
                out
            })
        };
        let one = run(1, &[&b]);
        let differ =
            |other: Vec<f32>| other.iter().zip(&one).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
        assert_eq!(differ(run(3, &[&b])), 0, "3 threads");
        assert_eq!(differ(run(2, &[&b])), 0, "2 threads");
        assert_eq!(differ(run(2, &[&a, &b])), 0, "after another image");
    }

    #[test]
    fn images_smaller_than_the_dilations_run_in_f32() {
        let config = MsdConfig::new(12, 1, 1, 2);
        let p = network(&config, 9);
        let (h, w) = (6, 9);
        let input = image(1, h, w, 2);
        let mut got = Vec::new();
        Bf16Forward::new(Bf16Isa::Portable, &config, &p).unwrap().forward(&input, h, w, &mut got).unwrap();
        assert!(rel_err(&got, &reference(&config, &p, &input, h, w)) < 1e-5);
    }

    #[test]
    fn bad_images_are_typed_errors() {
        let config = MsdConfig::new(3, 1, 1, 2);
        let p = network(&config, 1);
        let mut net = Bf16Forward::new(Bf16Isa::Portable, &config, &p).unwrap();
        let mut out = Vec::new();
        assert!(matches!(net.forward(&[], 0, 5, &mut out), Err(Error::EmptyImage { height: 0, width: 5 })));
        assert!(matches!(net.forward(&[0.0; 7], 2, 5, &mut out), Err(Error::BufferLength { .. })));
        let wrong = Params::zeros(&MsdConfig::new(4, 1, 1, 2));
        assert!(Bf16Forward::new(Bf16Isa::Portable, &config, &wrong).is_err());
    }
}
