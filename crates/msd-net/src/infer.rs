//! Applying a model to a whole CT volume: slice by slice in parallel, resampled to the model's
//! pixel spacing and back, optionally fusing axial, coronal and sagittal passes.
use msd_io::{LabelVolume, Volume};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

use crate::resample::{resample_plane, resampled_len};
use crate::train::argmax;
use crate::{Backend, BatchShape, CpuBackend, Error, Model, Result};

/// The orientation of the 2D planes a volume is cut into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceAxis {
    /// Planes of constant z (rows y, columns x).
    Axial,
    /// Planes of constant y (rows z, columns x).
    Coronal,
    /// Planes of constant x (rows z, columns y).
    Sagittal,
}

/// How [`Model::segment_with`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentOptions {
    /// The plane orientations to run; with more than one, their probabilities are averaged.
    pub axes: Vec<SliceAxis>,
    /// Resample each plane to the model's pixel spacing (and the result back).
    pub resample: bool,
}

impl Default for SegmentOptions {
    /// Axial planes, resampled to the model's spacing.
    fn default() -> Self {
        SegmentOptions { axes: vec![SliceAxis::Axial], resample: true }
    }
}

/// The result of segmenting a volume, on the CT's grid.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// The arg-max class of every voxel.
    pub labels: LabelVolume,
    /// One probability volume per class (they sum to 1 at every voxel).
    pub probabilities: Vec<Volume<f32>>,
}

/// The plane geometry of an axis on a volume of shape `[z, y, x]` with spacing `(x, y, z)`:
/// (number of planes, rows, columns, row spacing, column spacing).
fn plane_layout(axis: SliceAxis, shape: [usize; 3], spacing: [f64; 3]) -> (usize, usize, usize, f64, f64) {
    let [nz, ny, nx] = shape;
    let [sx, sy, sz] = spacing;
    match axis {
        SliceAxis::Axial => (nz, ny, nx, sy, sx),
        SliceAxis::Coronal => (ny, nz, nx, sz, sx),
        SliceAxis::Sagittal => (nx, nz, ny, sz, sy),
    }
}

/// The ndarray axis that indexes planes.
fn plane_axis(axis: SliceAxis) -> Axis {
    match axis {
        SliceAxis::Axial => Axis(0),
        SliceAxis::Coronal => Axis(1),
        SliceAxis::Sagittal => Axis(2),
    }
}

impl Model {
    /// Segments a CT volume (HU) slice by slice along the axial axis, with resampling to the
    /// model's pixel spacing: per-class probabilities and labels on the CT's grid.
    pub fn segment(&self, ct: &Volume<f32>) -> Result<Segmentation> {
        self.segment_with(ct, &SegmentOptions::default(), |_, _| {})
    }

    /// Segments a CT volume with explicit options; `progress(done, total)` is called as planes
    /// finish (from the calling thread's perspective, in completion order).
    pub fn segment_with(
        &self,
        ct: &Volume<f32>,
        options: &SegmentOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Segmentation> {
        self.validate()?;
        if options.axes.is_empty() {
            return Err(Error::InvalidInput { what: "no slice axis to segment along".into() });
        }
        let k = self.config.n_classes;
        let shape = ct.shape();
        let total_planes: usize =
            options.axes.iter().map(|a| plane_layout(*a, shape, ct.geometry().spacing()).0).sum();
        let mut sum: Vec<Array3<f32>> =
            (0..k).map(|_| Array3::zeros((shape[0], shape[1], shape[2]))).collect();
        let mut done = 0;
        for &axis in &options.axes {
            let (n, rows, cols, rs, cs) = plane_layout(axis, shape, ct.geometry().spacing());
            let (mr, mc) = if options.resample {
                (self.pixel_spacing_mm[1], self.pixel_spacing_mm[0])
            } else {
                (rs, cs)
            };
            let (orows, ocols) = (resampled_len(rows, rs, mr), resampled_len(cols, cs, mc));
            let pa = plane_axis(axis);
            let half = (self.config.input_channels / 2) as isize;
            // Planes in parallel; each returns its k probability planes on the CT's plane grid.
            let planes: Vec<Vec<f32>> = (0..n)
                .into_par_iter()
                .map(|i| -> Result<Vec<f32>> {
                    let mut input = Vec::with_capacity(self.config.input_channels * orows * ocols);
                    for dz in -half..=half {
                        let j = (i as isize + dz).clamp(0, n as isize - 1) as usize;
                        let plane: Vec<f32> = ct.data().index_axis(pa, j).iter().copied().collect();
                        let r = resample_plane(&plane, rows, cols, orows, ocols, mr / rs, mc / cs);
                        input.extend(r.into_iter().map(|v| self.normalization.apply(v)));
                    }
                    let mut backend = CpuBackend::new(&self.config)?;
                    backend.set_params(&self.params)?;
                    backend.forward(&input, BatchShape { images: 1, height: orows, width: ocols })?;
                    let mut probs = vec![0.0; k * orows * ocols];
                    backend.probabilities(&mut probs)?;
                    let mut out = Vec::with_capacity(k * rows * cols);
                    for c in 0..k {
                        let p = &probs[c * orows * ocols..(c + 1) * orows * ocols];
                        out.extend(resample_plane(p, orows, ocols, rows, cols, rs / mr, cs / mc));
                    }
                    Ok(out)
                })
                .collect::<Result<_>>()?;
            for (i, p) in planes.iter().enumerate() {
                for (c, s) in sum.iter_mut().enumerate() {
                    let mut view = s.index_axis_mut(pa, i);
                    for (d, v) in view.iter_mut().zip(&p[c * rows * cols..(c + 1) * rows * cols]) {
                        *d += v;
                    }
                }
                done += 1;
                progress(done, total_planes);
            }
        }
        let scale = 1.0 / options.axes.len() as f32;
        let labels = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
            argmax(sum.iter().map(|s| s[[z, y, x]])) as u8
        });
        let probabilities = sum
            .into_iter()
            .map(|mut s| {
                s.mapv_inplace(|v| v * scale);
                ct.with_data(s)
            })
            .collect::<msd_io::Result<Vec<_>>>()?;
        Ok(Segmentation { labels: ct.with_data(labels)?, probabilities })
    }

    /// Class probabilities `[n_classes][h][w]` for one image given in HU, `[input_channels][h][w]`,
    /// at the model's pixel spacing (no resampling).
    pub fn predict_image(&self, hu: &[f32], height: usize, width: usize) -> Result<Vec<f32>> {
        let mut backend = CpuBackend::new(&self.config)?;
        backend.set_params(&self.params)?;
        let input: Vec<f32> = hu.iter().map(|&v| self.normalization.apply(v)).collect();
        backend.forward(&input, BatchShape { images: 1, height, width })?;
        let mut probs = vec![0.0; self.config.n_classes * height * width];
        backend.probabilities(&mut probs)?;
        Ok(probs)
    }
}
