//! Training-sample augmentation: how one training image is drawn from a slice, so that a model
//! trained on a few scans serves scans from any scanner.
//!
//! Each sample is made in this order, every random choice drawn from the training run's seeded
//! generator:
//!
//! 1. **Resolution.** A target in-plane pixel size is drawn log-uniformly from
//!    [`Augmentation::pixel_spacing_mm`] (times a small zoom jitter), and the crop is resampled to it
//!    from the case's own spacing: Keys cubic interpolation of the CT, with a Gaussian pre-filter
//!    when the pixels grow (as a coarser detector would integrate), linear interpolation of the
//!    labels.
//! 2. **Slice thickness.** Neighbouring slices are averaged over a slab drawn from
//!    [`Augmentation::slice_thickness_mm`]: thin bone then partial-volumes as on thick-slice scans.
//! 3. **Reconstruction kernel.** A soft kernel (Gaussian blur) or an edge-enhancing one (unsharp
//!    mask).
//! 4. **Calibration.** HU gain and offset.
//! 5. **Noise and artefacts.** White and spatially correlated Gaussian noise, and metal streaks.
//! 6. Flips and 90° rotations.
//!
//! Steps 1–4 change the image the way another scanner or protocol would, and an engineer thresholding
//! that image would see the change too. When the labels were defined by a HU threshold
//! ([`Augmentation::threshold_labels_hu`], 300 HU for the engineers' skull recipe), the label
//! boundary follows them: within two pixels of the transformed label's boundary a pixel is labelled
//! by the threshold on the noise-free transformed image, elsewhere the transformed label stands (so
//! the table stays background and filled pockets stay bone). Step 5 is what the network must see
//! through, so the labels ignore it: the model learns the threshold of the noise-free image.
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::dataset::SliceRef;
use crate::resample::{AxisTaps, gaussian_blur, resample_taps as resample};
#[cfg(test)]
use crate::resample::{mirror, zoom_source};
use crate::{Dataset, Error, Normalization, Result};

/// Data augmentation applied to each training sample: each field is one kind of variation, all
/// drawn from the training seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Random flips and 90° rotations (the 8 symmetries of the square; transposes only for square
    /// crops).
    pub flips_rotations: bool,
    /// Range `[min, max]` of in-plane pixel sizes (mm) that samples are resampled to, drawn
    /// log-uniformly (`None`: each case's own pixel size).
    #[serde(default)]
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// Relative zoom jitter `r`: the pixel size is further scaled by `U(1 − r, 1 + r)`
    /// (`0 ≤ r < 1`; 0 disables).
    #[serde(default)]
    pub scale_range: f32,
    /// Range `[min, max]` of reconstructed slice thickness (mm): slices are averaged over a slab of
    /// that thickness when it exceeds the case's slice spacing (`None`: single slices).
    #[serde(default)]
    pub slice_thickness_mm: Option<[f64; 2]>,
    /// Largest σ (mm) of a soft reconstruction kernel (Gaussian blur); drawn `U(0, max)` for a
    /// third of the samples (0 disables).
    #[serde(default)]
    pub blur_mm: f32,
    /// Largest amount of an edge-enhancing kernel (unsharp mask of σ = 1 pixel, `x + a(x − blur x)`);
    /// drawn `U(0, max)` for a third of the samples (0 disables).
    #[serde(default)]
    pub sharpen: f32,
    /// Calibration gain: HU × `(1 + U(−g, g))` (0 disables).
    #[serde(default)]
    pub hu_gain: f32,
    /// Calibration offset: HU + `U(−o, o)` (0 disables).
    #[serde(default)]
    pub hu_offset: f32,
    /// Largest σ (HU) of white Gaussian noise, drawn `U(0, max)` for a fraction
    /// [`noise_probability`](Self::noise_probability) of the samples (0 disables).
    #[serde(default)]
    pub noise_hu: f32,
    /// Largest σ (HU) of spatially correlated noise (white noise under a Gaussian of 0.7–2 pixels,
    /// rescaled to σ), drawn `U(0, max)` for a fraction
    /// [`noise_probability`](Self::noise_probability) of the samples (0 disables).
    #[serde(default)]
    pub correlated_noise_hu: f32,
    /// Probability that a sample gets white noise, and independently that it gets correlated noise
    /// (in `[0, 1]`). The samples that get neither teach the network the exact threshold of a clean
    /// scan; the others, to see through noise.
    #[serde(default = "half")]
    pub noise_probability: f32,
    /// Probability that a sample gets a metal insert with streak artefacts (0 disables).
    #[serde(default)]
    pub metal_probability: f32,
    /// The labels' class 1 was defined by this HU threshold on the noise-free image: its boundary
    /// follows resolution, slab, kernel and calibration changes (`None`: labels only move with the
    /// geometry).
    #[serde(default)]
    pub threshold_labels_hu: Option<f32>,
}

impl Default for Augmentation {
    /// Flips and rotations, ±10 % zoom, calibration ±5 % and ±20 HU, white noise up to 20 HU.
    fn default() -> Self {
        Augmentation {
            flips_rotations: true,
            pixel_spacing_mm: None,
            scale_range: 0.1,
            slice_thickness_mm: None,
            blur_mm: 0.0,
            sharpen: 0.0,
            hu_gain: 0.05,
            hu_offset: 20.0,
            noise_hu: 20.0,
            correlated_noise_hu: 0.0,
            noise_probability: 0.5,
            metal_probability: 0.0,
            threshold_labels_hu: None,
        }
    }
}

/// The serde default of [`Augmentation::noise_probability`], for files written before it existed.
fn half() -> f32 {
    0.5
}

impl Augmentation {
    /// No augmentation at all: a sample is the crop itself.
    pub fn none() -> Self {
        Augmentation {
            flips_rotations: false,
            pixel_spacing_mm: None,
            scale_range: 0.0,
            slice_thickness_mm: None,
            blur_mm: 0.0,
            sharpen: 0.0,
            hu_gain: 0.0,
            hu_offset: 0.0,
            noise_hu: 0.0,
            correlated_noise_hu: 0.0,
            noise_probability: 0.5,
            metal_probability: 0.0,
            threshold_labels_hu: None,
        }
    }

    /// What real head CTs differ in, for a model that must serve any scanner: pixels of 0.3–1.0 mm,
    /// slabs up to 3 mm, soft (σ ≤ 0.5 mm) and sharp (≤ 1.0) kernels, calibration ±5 % and ±30 HU,
    /// white and correlated noise up to 150 HU (each in 35 % of the samples, so that 42 % of them
    /// stay clean), metal streaks in 10 % of the samples, and labels that follow the `threshold_hu`
    /// definition.
    pub fn robust(threshold_hu: f32) -> Self {
        Augmentation {
            flips_rotations: true,
            pixel_spacing_mm: Some([0.3, 1.0]),
            scale_range: 0.0,
            slice_thickness_mm: Some([0.6, 3.0]),
            blur_mm: 0.5,
            sharpen: 1.0,
            hu_gain: 0.05,
            hu_offset: 30.0,
            noise_hu: 150.0,
            correlated_noise_hu: 150.0,
            noise_probability: 0.35,
            metal_probability: 0.1,
            threshold_labels_hu: Some(threshold_hu),
        }
    }

    /// Checks that every amount is finite and in range; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidTrainConfig { what: format!("augmentation {what}") });
        let amounts = [
            ("scale range", self.scale_range),
            ("blur", self.blur_mm),
            ("sharpen", self.sharpen),
            ("HU gain", self.hu_gain),
            ("HU offset", self.hu_offset),
            ("noise σ", self.noise_hu),
            ("correlated noise σ", self.correlated_noise_hu),
            ("metal probability", self.metal_probability),
        ];
        if let Some((name, v)) = amounts.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return bad(format!("{name} {v} must be finite and non-negative"));
        }
        if self.scale_range >= 1.0 {
            return bad(format!("scale range {} must be below 1", self.scale_range));
        }
        if self.hu_gain >= 0.5 {
            return bad(format!("HU gain {} must be below 0.5", self.hu_gain));
        }
        if self.blur_mm > 5.0 || self.sharpen > 5.0 {
            return bad(format!(
                "kernel blur {} mm / sharpen {} must be at most 5",
                self.blur_mm, self.sharpen
            ));
        }
        if self.metal_probability > 1.0 {
            return bad(format!("metal probability {} is above 1", self.metal_probability));
        }
        if !(0.0..=1.0).contains(&self.noise_probability) {
            return bad(format!("noise probability {} must be in [0, 1]", self.noise_probability));
        }
        for (name, range, max) in [
            ("pixel spacing", self.pixel_spacing_mm, 20.0),
            ("slice thickness", self.slice_thickness_mm, 20.0),
        ] {
            if let Some([lo, hi]) = range
                && !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi && hi <= max)
            {
                return bad(format!("{name} range [{lo}, {hi}] mm must satisfy 0 < min ≤ max ≤ {max}"));
            }
        }
        if let Some(t) = self.threshold_labels_hu
            && !t.is_finite()
        {
            return bad(format!("label threshold {t} HU must be finite"));
        }
        Ok(())
    }
}

/// Weights of the slices `-m..=m` that make a slab `n` slice steps thick (a box of width `n`
/// centred on slice 0, each slice covering one step).
fn slab_weights(n: f64) -> Vec<f64> {
    let half = n / 2.0;
    let m = (half - 0.5).ceil().max(0.0) as i64;
    let w: Vec<f64> =
        (-m..=m).map(|o| ((o as f64 + 0.5).min(half) - (o as f64 - 0.5).max(-half)).max(0.0)).collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// One augmented, normalised training sample from slice `s`: `(input [channels][ch][cw], labels
/// [ch][cw])`, drawing from `rng` only.
pub(crate) fn training_sample(
    dataset: &Dataset,
    s: SliceRef,
    (ch, cw): (usize, usize),
    aug: &Augmentation,
    normalization: &Normalization,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<u8>) {
    let c_in = dataset.input_channels();
    let (h, w) = dataset.slice_shape(s);
    let [sx, sy, sz] = dataset.case_spacing(s.case);

    // 1. Resolution: zoom = source pixel / target pixel, per axis.
    let target = match aug.pixel_spacing_mm {
        Some([lo, hi]) if hi > lo => rng.random_range(lo.ln()..hi.ln()).exp(),
        Some([lo, _]) => lo,
        None => sx.min(sy),
    };
    let jitter = if aug.scale_range > 0.0 {
        1.0 + rng.random_range(-aug.scale_range..aug.scale_range) as f64
    } else {
        1.0
    };
    let (zy, zx) = if aug.pixel_spacing_mm.is_some() {
        (sy / (target * jitter), sx / (target * jitter))
    } else {
        (1.0 / jitter, 1.0 / jitter)
    };
    let centre_axis = |rng: &mut StdRng, n: usize, out: usize, zoom: f64| -> f64 {
        let half = out as f64 / (2.0 * zoom);
        let (lo, hi) = (half.min(n as f64 / 2.0), (n as f64 - half).max(n as f64 / 2.0));
        if hi > lo { rng.random_range(lo..=hi) } else { lo }
    };
    let mut centre = [centre_axis(rng, h, ch, zy), centre_axis(rng, w, cw, zx)];
    if zy == 1.0 && zx == 1.0 {
        // Unzoomed crops start on a pixel, so that they copy the slice exactly.
        centre = [
            (centre[0] - ch as f64 / 2.0).floor() + ch as f64 / 2.0,
            (centre[1] - cw as f64 / 2.0).floor() + cw as f64 / 2.0,
        ];
    }
    let (rows_c, cols_c) =
        (AxisTaps::new(ch, h, centre[0], zy, true), AxisTaps::new(cw, w, centre[1], zx, true));
    let (rows_l, cols_l) =
        (AxisTaps::new(ch, h, centre[0], zy, false), AxisTaps::new(cw, w, centre[1], zx, false));
    // Shrinking pixels need no filter; growing ones integrate over more of the object.
    let prefilter = [zy, zx].map(|z| if z < 1.0 { 0.5 * (1.0 / (z * z) - 1.0).sqrt() } else { 0.0 });

    // 2. Slab: weights over neighbouring slices.
    let slab = match aug.slice_thickness_mm {
        Some([lo, hi]) => {
            let t = if hi > lo { rng.random_range(lo..=hi) } else { lo };
            slab_weights((t / sz).max(1.0))
        }
        None => vec![1.0],
    };
    let m = (slab.len() / 2) as i64;
    let k = (c_in / 2) as i64;
    let mut x = Vec::with_capacity(c_in * ch * cw);
    for c in 0..c_in as i64 {
        let mut acc = vec![0.0f32; ch * cw];
        for (j, &wt) in slab.iter().enumerate() {
            let mut plane = dataset.plane(s.case, s.z as i64 + c - k + j as i64 - m);
            if prefilter.iter().any(|&p| p > 0.0) {
                gaussian_blur(&mut plane, h, w, prefilter);
            }
            for (a, v) in acc.iter_mut().zip(resample(&plane, w, &rows_c, &cols_c)) {
                *a += wt as f32 * v;
            }
        }
        x.extend(acc);
    }
    // Labels: linear interpolation of each class's indicator, averaged over the centre slice's slab.
    let n_classes = dataset.n_classes();
    let mut class_frac = vec![vec![0.0f32; ch * cw]; n_classes];
    for (j, &wt) in slab.iter().enumerate() {
        let labels = dataset.label_plane(s.case, s.z as i64 + j as i64 - m);
        for (cls, frac) in class_frac.iter_mut().enumerate().skip(1) {
            let ind: Vec<f32> = labels.iter().map(|&l| f32::from(l as usize == cls)).collect();
            if ind.iter().all(|&v| v == 0.0) {
                continue;
            }
            for (f, v) in frac.iter_mut().zip(resample(&ind, w, &rows_l, &cols_l)) {
                *f += wt as f32 * v;
            }
        }
    }
    // Pixels whose neighbourhood mixes classes: where a threshold definition decides.
    let mut boundary = vec![false; ch * cw];
    let mut labels: Vec<u8> = vec![0; ch * cw];
    for p in 0..ch * cw {
        let fg: f32 = class_frac[1..].iter().map(|f| f[p]).sum();
        boundary[p] = fg > 1e-4 && fg < 1.0 - 1e-4;
        let (best, _) = class_frac
            .iter()
            .enumerate()
            .skip(1)
            .map(|(c, f)| (c, f[p]))
            .fold((0, 1.0 - fg), |a, b| if b.1 > a.1 { b } else { a });
        labels[p] = best as u8;
    }
    for y in 0..ch {
        for x0 in 0..cw {
            let l = labels[y * cw + x0];
            let differs = (x0 + 1 < cw && labels[y * cw + x0 + 1] != l)
                || (y + 1 < ch && labels[(y + 1) * cw + x0] != l);
            if differs {
                boundary[y * cw + x0] = true;
            }
        }
    }

    // 3. Kernel.
    let kernel = rng.random_range(0..3u8);
    if kernel == 1 && aug.blur_mm > 0.0 {
        let s_mm = rng.random_range(0.0..aug.blur_mm) as f64;
        let px = [sy / zy, sx / zx];
        for plane in x.chunks_exact_mut(ch * cw) {
            gaussian_blur(plane, ch, cw, [s_mm / px[0], s_mm / px[1]]);
        }
    } else if kernel == 2 && aug.sharpen > 0.0 {
        let a = rng.random_range(0.0..aug.sharpen);
        for plane in x.chunks_exact_mut(ch * cw) {
            let mut b = plane.to_vec();
            gaussian_blur(&mut b, ch, cw, [1.0, 1.0]);
            for (v, bv) in plane.iter_mut().zip(&b) {
                *v += a * (*v - bv);
            }
        }
    }
    // 4. Calibration.
    let gain = 1.0 + if aug.hu_gain > 0.0 { rng.random_range(-aug.hu_gain..aug.hu_gain) } else { 0.0 };
    let offset = if aug.hu_offset > 0.0 { rng.random_range(-aug.hu_offset..aug.hu_offset) } else { 0.0 };
    for v in x.iter_mut() {
        *v = *v * gain + offset;
    }
    // The label boundary follows the threshold on the noise-free, transformed centre channel.
    if let Some(t) = aug.threshold_labels_hu {
        let centre_plane = &x[k as usize * ch * cw..(k as usize + 1) * ch * cw];
        let band = dilate(&boundary, ch, cw, 2);
        for ((l, &b), &v) in labels.iter_mut().zip(&band).zip(centre_plane) {
            if b && *l <= 1 {
                *l = u8::from(v >= t);
            }
        }
    }

    // 5. Noise and metal.
    let p_noise = aug.noise_probability as f64;
    if aug.noise_hu > 0.0 && rng.random_bool(p_noise) {
        let sigma = rng.random_range(0.0..aug.noise_hu);
        if let Ok(n) = Normal::new(0.0f32, sigma) {
            x.iter_mut().for_each(|v| *v += n.sample(rng));
        }
    }
    if aug.correlated_noise_hu > 0.0 && rng.random_bool(p_noise) {
        let sigma = rng.random_range(0.0..aug.correlated_noise_hu);
        let corr = rng.random_range(0.7..2.0f64);
        for plane in x.chunks_exact_mut(ch * cw) {
            add_correlated_noise(plane, ch, cw, sigma, corr, rng);
        }
    }
    if aug.metal_probability > 0.0 && rng.random_bool(aug.metal_probability as f64) {
        add_metal(&mut x, c_in, ch, cw, rng);
    }

    // 6. Normalise, flip and rotate.
    for v in x.iter_mut() {
        *v = normalization.apply(*v);
    }
    let t: u8 = if aug.flips_rotations { rng.random_range(0..if ch == cw { 8 } else { 4 }) } else { 0 };
    let x = dihedral(&x, c_in, ch, cw, t);
    let lf: Vec<f32> = labels.iter().map(|&v| v as f32).collect();
    let labels = dihedral(&lf, 1, ch, cw, t).iter().map(|&v| v as u8).collect();
    (x, labels)
}

/// Pixels within `r` (Chebyshev distance) of a set pixel.
fn dilate(mask: &[bool], h: usize, w: usize, r: usize) -> Vec<bool> {
    let mut rows = vec![false; h * w];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] {
                for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                    rows[y * w + xx] = true;
                }
            }
        }
    }
    let mut out = vec![false; h * w];
    for y in 0..h {
        for x in 0..w {
            if rows[y * w + x] {
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    out[yy * w + x] = true;
                }
            }
        }
    }
    out
}

/// Adds Gaussian noise of standard deviation `sigma` (HU) correlated over about `corr` pixels to a
/// plane `[h][w]`: white noise blurred by a Gaussian of σ = `corr` pixels ([`gaussian_blur`]),
/// rescaled to `sigma`. This is the correlated noise of [`Augmentation::correlated_noise_hu`];
/// evaluations use it to add the same kind of noise to whole scans.
///
/// ```
/// use rand::SeedableRng;
///
/// let mut plane = vec![0.0f32; 64 * 64];
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// msd_net::add_correlated_noise(&mut plane, 64, 64, 100.0, 1.0, &mut rng);
/// let sd = (plane.iter().map(|v| v * v).sum::<f32>() / plane.len() as f32).sqrt();
/// assert!(sd > 60.0 && sd < 140.0, "σ {sd}");
/// ```
pub fn add_correlated_noise<R: Rng + ?Sized>(
    plane: &mut [f32],
    h: usize,
    w: usize,
    sigma: f32,
    corr: f64,
    rng: &mut R,
) {
    let Ok(unit) = Normal::new(0.0f32, 1.0) else { return };
    let mut n: Vec<f32> = (0..h * w).map(|_| unit.sample(rng)).collect();
    gaussian_blur(&mut n, h, w, [corr, corr]);
    // A Gaussian of σ = c shrinks unit white noise to σ = 1 / (2 c √π) in 2D.
    let gain = sigma * (2.0 * corr * std::f64::consts::PI.sqrt()) as f32;
    for (v, e) in plane.iter_mut().zip(&n) {
        *v += gain * e;
    }
}

/// A small metal insert (3000 HU) with streaks: alternating bright and dark lines through it that
/// fade with distance, as filtered back-projection leaves them. Added to every channel alike.
fn add_metal(x: &mut [f32], channels: usize, h: usize, w: usize, rng: &mut StdRng) {
    // Put the metal where bone is when the crop has any (screws, plates and fillings sit in bone).
    let centre_plane = &x[(channels / 2) * h * w..(channels / 2 + 1) * h * w];
    let bright: Vec<usize> = (0..h * w).filter(|&p| centre_plane[p] > 700.0).collect();
    let p = if bright.is_empty() {
        rng.random_range(0..h * w)
    } else {
        bright[rng.random_range(0..bright.len())]
    };
    let (cy, cx) = ((p / w) as f64, (p % w) as f64);
    let radius = rng.random_range(1.0..3.5f64);
    let amplitude = rng.random_range(300.0..1500.0f64);
    let lines: Vec<(f64, f64, f64)> = (0..rng.random_range(4..12))
        .map(|i| {
            let angle = rng.random_range(0.0..std::f64::consts::PI);
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            (angle.cos(), angle.sin(), sign * rng.random_range(0.3..1.0))
        })
        .collect();
    let mut add = vec![0.0f32; h * w];
    for y in 0..h {
        for xx in 0..w {
            let (dy, dx) = (y as f64 - cy, xx as f64 - cx);
            let r = (dy * dy + dx * dx).sqrt();
            if r <= radius {
                add[y * w + xx] = f32::INFINITY;
                continue;
            }
            let fade = radius / (radius + 0.15 * r);
            let mut v = 0.0;
            for &(c, s, a) in &lines {
                let perp = dx * s - dy * c;
                v += a * (-perp * perp / 2.0).exp();
            }
            add[y * w + xx] = (amplitude * fade * v) as f32;
        }
    }
    for plane in x.chunks_exact_mut(h * w) {
        for (v, a) in plane.iter_mut().zip(&add) {
            *v = if a.is_infinite() { 3000.0 } else { *v + a };
        }
    }
}

/// Applies the dihedral symmetry `t` (bit 2: transpose, bit 0: flip rows, bit 1: flip columns) to
/// every plane of `[channels][h][w]`.
pub(crate) fn dihedral(planes: &[f32], channels: usize, h: usize, w: usize, t: u8) -> Vec<f32> {
    let mut out = vec![0.0; planes.len()];
    for c in 0..channels {
        let src = &planes[c * h * w..(c + 1) * h * w];
        let dst = &mut out[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let (mut sy, mut sx) = (y, x);
                if t & 4 != 0 {
                    (sy, sx) = (sx, sy);
                }
                if t & 1 != 0 {
                    sy = h - 1 - sy;
                }
                if t & 2 != 0 {
                    sx = w - 1 - sx;
                }
                dst[y * w + x] = src[sy * w + sx];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use msd_io::{Geometry, Volume};
    use ndarray::Array3;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn mirror_repeats_the_edge_pixel() {
        let got: Vec<usize> = (-4..8).map(|i| mirror(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
    }

    #[test]
    fn slab_weights_are_a_normalised_box() {
        assert_eq!(slab_weights(1.0), vec![1.0]);
        let w = slab_weights(3.0);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-12));
        let w = slab_weights(2.0);
        assert_eq!(w, vec![0.25, 0.5, 0.25]);
        for n in [1.3, 2.7, 4.9] {
            assert!((slab_weights(n).iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn cubic_sampling_keeps_quadratics_and_gaussians_keep_the_mean() {
        // A quadratic ramp is reproduced exactly by Keys' kernel at any zoom, away from the border.
        let (h, w) = (40, 40);
        let plane: Vec<f32> =
            (0..h * w).map(|i| ((i % w) as f32 - 20.0).powi(2) * 0.5 + (i / w) as f32).collect();
        for zoom in [0.8, 1.0, 1.7, 3.0] {
            let rows = AxisTaps::new(8, h, 20.0, zoom, true);
            let cols = AxisTaps::new(8, w, 20.0, zoom, true);
            let out = resample(&plane, w, &rows, &cols);
            for (o, v) in out.iter().enumerate() {
                let (y, x) = (zoom_source(o / 8, 8, 20.0, zoom), zoom_source(o % 8, 8, 20.0, zoom));
                let want = (x - 20.0).powi(2) * 0.5 + y;
                assert!((*v as f64 - want).abs() < 1e-3, "zoom {zoom}: {v} vs {want}");
            }
        }
        let mut p = plane.clone();
        gaussian_blur(&mut p, h, w, [1.5, 0.7]);
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!((mean(&p) - mean(&plane)).abs() / mean(&plane) < 0.02);
    }

    /// A 1-slice dataset: a disc of 1200 HU bone (radius `r` pixels) in 40 HU tissue on 1 mm pixels,
    /// labelled by the 300 HU threshold.
    fn disc_dataset(size: usize, r: f64, channels: usize) -> Dataset {
        let c = size as f64 / 2.0;
        let ct = Array3::from_shape_fn((3, size, size), |(_, y, x)| {
            let d = ((y as f64 + 0.5 - c).powi(2) + (x as f64 + 0.5 - c).powi(2)).sqrt();
            // A soft edge (1 pixel wide), as a scanner's PSF leaves it.
            (40.0 + 1160.0 * (0.5 - (d - r).clamp(-0.5, 0.5))) as f32
        });
        let lb = ct.mapv(|v| u8::from(v >= 300.0));
        let g = Geometry::default();
        let mut d = Dataset::new(channels).unwrap();
        d.add(&Volume::new(ct, g).unwrap(), &Volume::new(lb, g).unwrap()).unwrap();
        d
    }

    #[test]
    fn augmented_samples_depend_only_on_the_seed() {
        let data = disc_dataset(30, 8.0, 3);
        let aug = Augmentation::robust(300.0);
        let norm = Normalization::default();
        let s = SliceRef { case: 0, z: 1 };
        let draw = |seed| training_sample(&data, s, (16, 16), &aug, &norm, &mut StdRng::seed_from_u64(seed));
        let a = draw(5);
        assert_eq!(a, draw(5));
        assert_ne!(a, draw(6));
        assert_eq!(a.0.len(), 3 * 16 * 16);
        assert_eq!(a.1.len(), 16 * 16);
        // Without augmentation a sample is the normalised crop itself.
        let (x, l) =
            training_sample(&data, s, (30, 30), &Augmentation::none(), &norm, &mut StdRng::seed_from_u64(1));
        let (hu, labels) = data.sample(s).unwrap();
        assert_eq!(l, labels);
        assert!(x.iter().zip(&hu).all(|(a, b)| *a == norm.apply(*b)));
    }

    /// The fraction of labelled pixels in samples at a forced pixel size.
    fn labelled_area(
        data: &Dataset,
        aug: &Augmentation,
        crop: usize,
        seed: u64,
    ) -> (usize, Vec<f32>, Vec<u8>) {
        let norm = Normalization::default();
        let (x, l) = training_sample(
            data,
            SliceRef { case: 0, z: 1 },
            (crop, crop),
            aug,
            &norm,
            &mut StdRng::seed_from_u64(seed),
        );
        (l.iter().filter(|&&v| v == 1).count(), x, l)
    }

    #[test]
    fn resampling_to_finer_pixels_scales_the_area_and_keeps_labels_on_the_threshold() {
        let data = disc_dataset(64, 12.0, 1);
        let base = Augmentation { flips_rotations: false, ..Augmentation::none() };
        let (a1, _, _) = labelled_area(&data, &base, 64, 0);
        for (px, follow) in [(0.5, None), (0.5, Some(300.0)), (0.8, Some(300.0))] {
            let aug = Augmentation { pixel_spacing_mm: Some([px, px]), threshold_labels_hu: follow, ..base };
            let crop = (64.0 / px) as usize;
            let (a, x, l) = labelled_area(&data, &aug, crop, 3);
            let ratio = a as f64 * px * px / a1 as f64;
            assert!((ratio - 1.0).abs() < 0.06, "pixel {px}: area ratio {ratio}");
            // No nearest-neighbour staircase: the label is the threshold of the interpolated image
            // within the boundary band (everywhere here).
            if follow.is_some() {
                let norm = Normalization::default();
                let bad =
                    x.iter().zip(&l).filter(|(v, lab)| (**v >= norm.apply(300.0)) != (**lab == 1)).count();
                assert_eq!(bad, 0, "pixel {px}: {bad} pixels disagree with the threshold");
            }
        }
    }

    #[test]
    fn calibration_and_kernels_move_the_threshold_label_with_the_image() {
        let data = disc_dataset(48, 10.0, 1);
        let norm = Normalization::default();
        for (i, aug) in [
            Augmentation { hu_offset: 200.0, hu_gain: 0.3, ..Augmentation::none() },
            Augmentation { blur_mm: 2.0, ..Augmentation::none() },
            Augmentation { sharpen: 2.0, ..Augmentation::none() },
        ]
        .into_iter()
        .enumerate()
        {
            let aug = Augmentation { threshold_labels_hu: Some(300.0), ..aug };
            for seed in 0..6 {
                let (_, x, l) = labelled_area(&data, &aug, 48, seed);
                let bad =
                    x.iter().zip(&l).filter(|(v, lab)| (**v >= norm.apply(300.0)) != (**lab == 1)).count();
                assert_eq!(bad, 0, "augmentation {i}, seed {seed}");
            }
        }
    }

    #[test]
    fn noise_has_its_level_and_leaves_the_labels() {
        let data = disc_dataset(64, 12.0, 1);
        let plain = labelled_area(&data, &Augmentation::none(), 64, 0);
        let norm = Normalization::default();
        for aug in [
            Augmentation { noise_hu: 100.0, threshold_labels_hu: Some(300.0), ..Augmentation::none() },
            Augmentation {
                correlated_noise_hu: 100.0,
                threshold_labels_hu: Some(300.0),
                ..Augmentation::none()
            },
        ] {
            let mut sds = Vec::new();
            for seed in 0..16 {
                let (_, x, l) = labelled_area(&data, &aug, 64, seed);
                assert_eq!(l, plain.2, "noise must not change labels");
                let diff: Vec<f64> =
                    x.iter().zip(&plain.1).map(|(a, b)| ((a - b) * norm.std) as f64).collect();
                let m = diff.iter().sum::<f64>() / diff.len() as f64;
                sds.push((diff.iter().map(|d| (d - m).powi(2)).sum::<f64>() / diff.len() as f64).sqrt());
            }
            // σ is drawn U(0, 100) for half of the samples: some are noisy, none beyond the bound.
            let max = sds.iter().cloned().fold(0.0, f64::max);
            assert!(max > 20.0 && max < 110.0, "{aug:?}: σ {sds:?}");
            assert!(sds.contains(&0.0));
        }
    }

    #[test]
    fn the_noisy_fraction_follows_the_noise_probability() {
        let data = disc_dataset(32, 6.0, 1);
        let plain = labelled_area(&data, &Augmentation::none(), 32, 0);
        let noisy_count = |p: f32| {
            let aug = Augmentation { noise_hu: 100.0, noise_probability: p, ..Augmentation::none() };
            (0..200).filter(|&seed| labelled_area(&data, &aug, 32, seed).1 != plain.1).count()
        };
        assert_eq!(noisy_count(0.0), 0);
        assert_eq!(noisy_count(1.0), 200);
        // Binomial(200, 0.35): mean 70, σ 6.7.
        let n = noisy_count(0.35);
        assert!((45..=95).contains(&n), "{n} of 200 samples noisy at p = 0.35");
    }

    #[test]
    fn slabs_average_neighbouring_slices_and_labels_follow() {
        // Slices 0..3 hold 0, 1000 and 2000 HU: a 3-slice slab of the middle one reads 1000.
        let ct = Array3::from_shape_fn((3, 8, 8), |(z, _, _)| 1000.0 * z as f32);
        let lb = ct.mapv(|v| u8::from(v >= 300.0));
        let g = Geometry::new([1.0, 1.0, 1.0], [0.0; 3], Geometry::IDENTITY).unwrap();
        let mut d = Dataset::new(1).unwrap();
        d.add(&Volume::new(ct, g).unwrap(), &Volume::new(lb, g).unwrap()).unwrap();
        let aug = Augmentation { slice_thickness_mm: Some([3.0, 3.0]), ..Augmentation::none() };
        let norm = Normalization::new([-1000.0, 3000.0], 0.0, 1.0).unwrap();
        let (x, _) = training_sample(
            &d,
            SliceRef { case: 0, z: 1 },
            (8, 8),
            &aug,
            &norm,
            &mut StdRng::seed_from_u64(0),
        );
        assert!(x.iter().all(|v| (v - 1000.0).abs() < 1e-3), "{x:?}");
        // Slice 0 (0 HU, background) averaged with itself (edge repeated) and 1000 HU: 333 HU.
        let (x, l) = training_sample(
            &d,
            SliceRef { case: 0, z: 0 },
            (8, 8),
            &Augmentation { threshold_labels_hu: Some(300.0), ..aug },
            &norm,
            &mut StdRng::seed_from_u64(0),
        );
        assert!(x.iter().all(|v| (v - 1000.0 / 3.0).abs() < 1e-2), "{x:?}");
        assert!(l.iter().all(|&v| v == 1), "the slab crosses 300 HU: {l:?}");
    }

    #[test]
    fn metal_adds_bright_voxels_and_streaks_but_keeps_labels() {
        let data = disc_dataset(64, 12.0, 1);
        let plain = labelled_area(&data, &Augmentation::none(), 64, 0);
        let aug = Augmentation { metal_probability: 1.0, ..Augmentation::none() };
        let (_, x, l) = labelled_area(&data, &aug, 64, 0);
        let norm = Normalization::default();
        assert_eq!(l, plain.2);
        assert!(x.iter().any(|&v| v >= norm.apply(2000.0)));
        let changed = x.iter().zip(&plain.1).filter(|(a, b)| ((**a - **b) * norm.std).abs() > 50.0).count();
        assert!(changed > 64, "streaks reach beyond the insert: {changed} pixels changed");
    }

    #[test]
    fn bad_augmentation_amounts_are_refused() {
        assert!(Augmentation::default().validate().is_ok());
        assert!(Augmentation::none().validate().is_ok());
        assert!(Augmentation::robust(300.0).validate().is_ok());
        for aug in [
            Augmentation { scale_range: 1.0, ..Augmentation::default() },
            Augmentation { scale_range: -0.1, ..Augmentation::default() },
            Augmentation { noise_hu: f32::NAN, ..Augmentation::default() },
            Augmentation { hu_gain: f32::INFINITY, ..Augmentation::default() },
            Augmentation { metal_probability: 1.5, ..Augmentation::default() },
            Augmentation { noise_probability: 1.5, ..Augmentation::default() },
            Augmentation { noise_probability: f32::NAN, ..Augmentation::default() },
            Augmentation { pixel_spacing_mm: Some([1.0, 0.5]), ..Augmentation::default() },
            Augmentation { pixel_spacing_mm: Some([0.0, 0.5]), ..Augmentation::default() },
            Augmentation { slice_thickness_mm: Some([1.0, f64::NAN]), ..Augmentation::default() },
            Augmentation { threshold_labels_hu: Some(f32::NAN), ..Augmentation::default() },
        ] {
            assert!(matches!(aug.validate(), Err(Error::InvalidTrainConfig { .. })), "{aug:?}");
        }
    }
}
