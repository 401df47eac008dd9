//! Applying a model to a whole CT volume, plane by plane, on the scan's own pixel grid.
//!
//! A model trained with resolution augmentation serves any clinical pixel size, so by default each
//! plane is segmented as it is: no resampling, nothing lost to interpolating the scan and the
//! result. [`SegmentOptions::resample_to_model`] resamples each plane to the model's pixel spacing
//! instead, and the class probabilities (never labels) back. Several plane orientations can be
//! fused by averaging their probabilities.
//!
//! Inference keeps no training state: one feature buffer of `total_channels · rows · cols` floats
//! is reused for every plane, the kernels parallelise within it, and per-class probability volumes
//! are kept only when asked for.
use msd_io::{LabelVolume, Volume};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

use crate::boundary::{DEFAULT_BAND_VOXELS, estimate_noise_hu, snap_to_iso};
use crate::cpu::final_layer;
use crate::kernels::{self, Bf16Forward, InferenceKernels, Isa, Precision};
use crate::loss::softmax_planes;
use crate::resample::{resample_plane, resampled_len};
use crate::train::argmax;
use crate::{Device, Error, Model, Result};

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

/// How [`Model::segment_with`] runs. Build it with [`SegmentOptions::default`] and the `with_`
/// methods.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SegmentOptions {
    /// The plane orientations to run; with more than one, their probabilities are averaged.
    pub axes: Vec<SliceAxis>,
    /// Resample each plane to the model's pixel spacing, and the probabilities back (default
    /// `false`: the scan's own grid).
    pub resample_to_model: bool,
    /// Keep one probability volume per class in [`Segmentation::probabilities`] (default `false`).
    pub keep_probabilities: bool,
    /// Where the network runs (default [`Device::Cpu`]). On a CUDA GPU each plane goes through the
    /// hand-written CUDA kernels (`cuda::CudaBackend`, feature `cuda`); everything else
    /// (normalisation, resampling, fusing, arg-max) is the same code as on the CPU.
    pub device: Device,
    /// Place the skull boundary on the CT's iso-surface at the model's label definition
    /// ([`Model::label_iso_hu`]), weighed against the network by the scan's noise
    /// ([`crate::snap_to_iso`]); default `true`. Applies to two-class models that record a
    /// threshold definition; others keep the network's arg-max.
    pub snap_to_iso: bool,
    /// Resample planes whose pixels lie outside the range the model was trained on
    /// ([`Model::trained_pixel_range_mm`]) to the nearest end of it, and the probabilities back;
    /// planes inside it stay on the scan's own grid (default `true`). A model knows nothing of
    /// pixels it never saw: on headsq's 3.2 mm pixels the shipped model (trained on 0.3–1.0 mm)
    /// does better at 1.0 mm.
    pub fit_to_trained_pixels: bool,
    /// The number format of the feature maps on the CPU (default [`Precision::Auto`]: bf16 where
    /// the CPU has AMX or AVX512-BF16, see [`crate::kernels::Bf16Forward`]; [`Precision::F32`] is
    /// bit-for-bit the network training evaluates). A GPU runs `f32`.
    pub precision: Precision,
}

impl Default for SegmentOptions {
    /// Axial planes on the scan's own grid; labels only.
    fn default() -> Self {
        SegmentOptions {
            axes: vec![SliceAxis::Axial],
            resample_to_model: false,
            keep_probabilities: false,
            device: Device::Cpu,
            snap_to_iso: true,
            fit_to_trained_pixels: true,
            precision: Precision::Auto,
        }
    }
}

impl SegmentOptions {
    /// Returns the options with these plane orientations.
    pub fn with_axes(mut self, axes: Vec<SliceAxis>) -> Self {
        self.axes = axes;
        self
    }

    /// Returns the options with resampling to the model's pixel spacing switched on or off.
    pub fn with_resample_to_model(mut self, resample: bool) -> Self {
        self.resample_to_model = resample;
        self
    }

    /// Returns the options with the per-class probability volumes kept or not.
    pub fn with_probabilities(mut self, keep: bool) -> Self {
        self.keep_probabilities = keep;
        self
    }

    /// Returns the options with the boundary snapped to the model's iso-value or not (`false`: the
    /// network's arg-max everywhere).
    pub fn with_snap_to_iso(mut self, snap: bool) -> Self {
        self.snap_to_iso = snap;
        self
    }

    /// Returns the options with planes outside the model's trained pixel range resampled into it
    /// or not (`false`: every plane on the scan's own grid unless [`Self::resample_to_model`]).
    pub fn with_fit_to_trained_pixels(mut self, fit: bool) -> Self {
        self.fit_to_trained_pixels = fit;
        self
    }

    /// Returns the options with the feature maps in `precision` on the CPU.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The kernels a CPU run of these options uses on this machine.
    pub fn cpu_kernels(&self) -> InferenceKernels {
        InferenceKernels::select(self.precision)
    }

    /// Returns the options with the network run on `device` ([`Device::Auto`] is resolved when
    /// segmenting starts).
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
}

/// The result of segmenting a volume, on the CT's grid.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// The arg-max class of every voxel.
    pub labels: LabelVolume,
    /// One probability volume per class (they sum to 1 at every voxel), when
    /// [`SegmentOptions::keep_probabilities`] asked for them; empty otherwise.
    pub probabilities: Vec<Volume<f32>>,
    /// How the boundary was placed on the iso-surface, when it was ([`SegmentOptions::snap_to_iso`]).
    pub iso_snap: Option<IsoSnap>,
}

/// What [`crate::snap_to_iso`] did to a segmentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IsoSnap {
    /// The iso-value the boundary was placed at (HU), the model's label definition.
    pub iso_hu: f32,
    /// The scan's noise σ measured by [`crate::estimate_noise_hu`] (HU), which weighs the CT against
    /// the network.
    pub noise_hu: f32,
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

/// Runs a model's forward pass on single images, on the CPU or a GPU.
enum Predictor<'a> {
    /// The `f32` CPU kernels, reusing one feature buffer.
    Cpu { model: &'a Model, isa: Isa, features: Vec<f32> },
    /// The bf16 CPU kernels, weights packed once, buffers reused.
    CpuBf16(Box<Bf16Forward>),
    /// The CUDA kernels, the network's parameters uploaded once.
    #[cfg(feature = "cuda")]
    Cuda(Box<crate::cuda::CudaBackend>),
}

impl<'a> Predictor<'a> {
    /// A predictor on `device`, which must be concrete (resolved), with `kernels` on the CPU.
    fn new(model: &'a Model, device: Device, kernels: InferenceKernels) -> Result<Self> {
        match device {
            Device::Cpu => match kernels.checked()? {
                InferenceKernels::F32(isa) => Ok(Predictor::Cpu { model, isa, features: Vec::new() }),
                InferenceKernels::Bf16(isa) => {
                    Ok(Predictor::CpuBf16(Box::new(Bf16Forward::new(isa, &model.config, &model.params)?)))
                }
            },
            Device::Cuda(ordinal) => Self::cuda(model, ordinal),
            Device::Auto => Err(Error::UnresolvedDevice { device }),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda(model: &'a Model, ordinal: usize) -> Result<Self> {
        use std::sync::{Arc, Mutex};

        use crate::Backend;
        use crate::cuda::{CudaBackend, CudaDevice};
        // Opened once per process and GPU: the context and the NVRTC-compiled kernels then serve
        // every later volume (a batch segments many).
        static OPENED: Mutex<Vec<(usize, Arc<CudaDevice>)>> = Mutex::new(Vec::new());
        let dev = {
            let mut opened = OPENED.lock().unwrap_or_else(|p| p.into_inner());
            match opened.iter().find(|(o, _)| *o == ordinal) {
                Some((_, dev)) => dev.clone(),
                None => {
                    let dev = CudaDevice::new(ordinal)?;
                    opened.push((ordinal, dev.clone()));
                    dev
                }
            }
        };
        // Inputs arrive normalised, as for the CPU kernels (the backend's default).
        let mut backend = CudaBackend::on_device(dev, &model.config)?;
        backend.set_params(&model.params)?;
        Ok(Predictor::Cuda(Box::new(backend)))
    }

    #[cfg(not(feature = "cuda"))]
    fn cuda(_model: &'a Model, ordinal: usize) -> Result<Self> {
        Err(Error::CudaNotBuilt { device: Device::Cuda(ordinal) })
    }

    /// Class probabilities `[n_classes][h][w]` of a normalised input `[input_channels][h][w]`.
    fn predict(&mut self, input: &[f32], h: usize, w: usize, probs: &mut Vec<f32>) -> Result<()> {
        match self {
            Predictor::Cpu { model, isa, features } => {
                let config = &model.config;
                let c_total = config.total_channels();
                let too_large = || Error::TooLarge { what: "feature buffer", dims: vec![c_total, h, w] };
                let hw = h.checked_mul(w).ok_or_else(too_large)?;
                if hw == 0 {
                    return Err(Error::EmptyImage { height: h, width: w });
                }
                if input.len() != config.input_channels * hw {
                    return Err(Error::len("input image", config.input_channels * hw, input.len()));
                }
                let need = c_total.checked_mul(hw).ok_or_else(too_large)?;
                features.resize(need, 0.0);
                features[..input.len()].copy_from_slice(input);
                let params = &model.params;
                kernels::forward(*isa, config, &params.conv_weights, &params.conv_biases, features, h, w)?;
                probs.resize(config.n_classes * hw, 0.0);
                final_layer(config, params, features, hw, probs);
                softmax_planes(probs, config.n_classes);
                Ok(())
            }
            Predictor::CpuBf16(net) => {
                net.forward(input, h, w, probs)?;
                softmax_planes(probs, net.config().n_classes);
                Ok(())
            }
            #[cfg(feature = "cuda")]
            Predictor::Cuda(net) => {
                use crate::{Backend, BatchShape};
                net.forward(input, BatchShape { images: 1, height: h, width: w })?;
                probs.resize(net.config().n_classes * h * w, 0.0);
                net.probabilities(probs)
            }
        }
    }
}

/// Where the fused result of several passes is gathered.
enum Accumulator {
    /// One pass, labels only: each plane's arg-max is written directly.
    Labels(Array3<u8>),
    /// The iso-surface snap of a two-class model, probabilities not kept: the sum of the skull
    /// class's probability alone (the background's is one minus it), half the memory of `Sums`,
    /// and how to snap it.
    Skull(Array3<f32>, IsoSnap),
    /// Probabilities asked for, or several passes of a model with more classes: per-class sums.
    Sums(Vec<Array3<f32>>),
}

/// The network inputs of the planes around the current one, each normalised (and resampled) once:
/// a 2.5D model reads every plane `2k + 1` times.
struct PlaneCache {
    /// (plane index, prepared plane), in increasing plane index.
    planes: std::collections::VecDeque<(usize, Vec<f32>)>,
}

impl PlaneCache {
    /// The prepared plane `j`, computed by `prepare` when not cached; planes before `keep_from` are
    /// dropped first (planes are visited in increasing order).
    fn get(&mut self, j: usize, keep_from: usize, prepare: impl FnOnce() -> Vec<f32>) -> &[f32] {
        while self.planes.front().is_some_and(|(i, _)| *i < keep_from) {
            self.planes.pop_front();
        }
        let at = match self.planes.iter().position(|(i, _)| *i == j) {
            Some(at) => at,
            None => {
                self.planes.push_back((j, prepare()));
                self.planes.len() - 1
            }
        };
        &self.planes[at].1
    }
}

impl Model {
    /// Segments a CT volume (HU) with the default [`SegmentOptions`]: axial planes on the scan's own
    /// grid; labels on the CT's grid.
    pub fn segment(&self, ct: &Volume<f32>) -> Result<Segmentation> {
        self.segment_with(ct, &SegmentOptions::default(), |_, _| {})
    }

    /// Segments a CT volume with explicit options; `progress(done, total)` is called as planes
    /// finish.
    ///
    /// # Errors
    /// [`Error::NoSliceAxis`] without a slice axis, [`Error::EmptyImage`] for a volume without
    /// voxels, an invalid model ([`Model::validate`]); [`Error::CudaNotBuilt`] /
    /// [`Error::CudaUnavailable`] when [`SegmentOptions::device`] is a GPU this build or machine
    /// cannot use; `Error::Cuda` (feature `cuda`) when the GPU fails while running.
    pub fn segment_with(
        &self,
        ct: &Volume<f32>,
        options: &SegmentOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Segmentation> {
        self.validate()?;
        if options.axes.is_empty() {
            return Err(Error::NoSliceAxis);
        }
        let device = options.device.resolve()?.device();
        let k = self.config.n_classes;
        let shape = ct.shape();
        let spacing = ct.geometry().spacing();
        let total_planes: usize = options.axes.iter().map(|a| plane_layout(*a, shape, spacing).0).sum();
        let dims = (shape[0], shape[1], shape[2]);
        // The iso-value snap needs the skull probability and the scan's noise; a scan without soft
        // tissue to measure it on keeps the network's labels.
        let snap = match self.label_iso_hu {
            Some(iso_hu) if options.snap_to_iso && k == 2 => {
                estimate_noise_hu(ct.data()).map(|noise_hu| IsoSnap { iso_hu, noise_hu })
            }
            _ => None,
        };
        let mut acc = match snap {
            _ if options.keep_probabilities => {
                Accumulator::Sums((0..k).map(|_| Array3::zeros(dims)).collect())
            }
            Some(s) => Accumulator::Skull(Array3::zeros(dims), s),
            None if options.axes.len() > 1 => {
                Accumulator::Sums((0..k).map(|_| Array3::zeros(dims)).collect())
            }
            None => Accumulator::Labels(Array3::zeros(dims)),
        };
        let mut predictor = Predictor::new(self, device, options.cpu_kernels())?;
        let mut probs = Vec::new();
        let mut done = 0;
        let half = self.config.input_channels / 2;
        for &axis in &options.axes {
            let (n, rows, cols, rs, cs) = plane_layout(axis, shape, spacing);
            let (mr, mc) = self.network_pixels(options, rs, cs);
            let (orows, ocols) = (resampled_len(rows, rs, mr), resampled_len(cols, cs, mc));
            let pa = plane_axis(axis);
            let mut input = Vec::with_capacity(self.config.input_channels * orows * ocols);
            // Planes are normalised as they are needed (no normalised copy of the volume) and
            // resampled at most once each.
            let mut cache = PlaneCache { planes: Default::default() };
            for i in 0..n {
                input.clear();
                for j in (i as isize - half as isize)..=(i + half) as isize {
                    let j = j.clamp(0, n as isize - 1) as usize;
                    let prepared = cache.get(j, i.saturating_sub(half), || {
                        let plane: Vec<f32> = ct
                            .data()
                            .index_axis(pa, j)
                            .iter()
                            .map(|&v| self.normalization.apply(v))
                            .collect();
                        if orows == rows && ocols == cols {
                            plane
                        } else {
                            resample_plane(&plane, rows, cols, orows, ocols, mr / rs, mc / cs)
                        }
                    });
                    input.extend_from_slice(prepared);
                }
                predictor.predict(&input, orows, ocols, &mut probs)?;
                let back: Vec<f32>;
                let on_grid: &[f32] = if orows == rows && ocols == cols {
                    &probs
                } else {
                    back = (0..k)
                        .flat_map(|c| {
                            let p = &probs[c * orows * ocols..(c + 1) * orows * ocols];
                            resample_plane(p, orows, ocols, rows, cols, rs / mr, cs / mc)
                        })
                        .collect();
                    &back
                };
                let hw = rows * cols;
                match &mut acc {
                    Accumulator::Labels(labels) => {
                        let mut view = labels.index_axis_mut(pa, i);
                        let plane: Vec<u8> = (0..hw)
                            .into_par_iter()
                            .map(|p| argmax((0..k).map(|c| on_grid[c * hw + p])) as u8)
                            .collect();
                        view.iter_mut().zip(plane).for_each(|(d, s)| *d = s);
                    }
                    Accumulator::Skull(skull, _) => {
                        let mut view = skull.index_axis_mut(pa, i);
                        view.iter_mut().zip(&on_grid[hw..2 * hw]).for_each(|(d, v)| *d += v);
                    }
                    Accumulator::Sums(sums) => {
                        for (c, s) in sums.iter_mut().enumerate() {
                            let mut view = s.index_axis_mut(pa, i);
                            view.iter_mut().zip(&on_grid[c * hw..(c + 1) * hw]).for_each(|(d, v)| *d += v);
                        }
                    }
                }
                done += 1;
                progress(done, total_planes);
            }
        }
        let scale = 1.0 / options.axes.len() as f32;
        match acc {
            Accumulator::Labels(labels) => {
                Ok(Segmentation { labels: ct.with_data(labels)?, probabilities: Vec::new(), iso_snap: None })
            }
            Accumulator::Skull(mut skull, s) => {
                skull.mapv_inplace(|v| v * scale);
                let labels = snap_to_iso(ct.data(), &skull, s.iso_hu, s.noise_hu, DEFAULT_BAND_VOXELS)?;
                Ok(Segmentation {
                    labels: ct.with_data(labels)?,
                    probabilities: Vec::new(),
                    iso_snap: Some(s),
                })
            }
            Accumulator::Sums(mut sums) => {
                sums.iter_mut().for_each(|s| s.mapv_inplace(|v| v * scale));
                let labels = match snap {
                    Some(s) => snap_to_iso(ct.data(), &sums[1], s.iso_hu, s.noise_hu, DEFAULT_BAND_VOXELS)?,
                    None => Array3::from_shape_fn(dims, |(z, y, x)| {
                        argmax(sums.iter().map(|s| s[[z, y, x]])) as u8
                    }),
                };
                let probabilities = if options.keep_probabilities {
                    sums.into_iter().map(|s| ct.with_data(s)).collect::<msd_io::Result<Vec<_>>>()?
                } else {
                    Vec::new()
                };
                Ok(Segmentation { labels: ct.with_data(labels)?, probabilities, iso_snap: snap })
            }
        }
    }

    /// The pixel spacing (rows, columns; mm) the network sees for planes of spacing `(rs, cs)`: the
    /// model's with [`SegmentOptions::resample_to_model`], each clamped into the trained range with
    /// [`SegmentOptions::fit_to_trained_pixels`], else the plane's own.
    pub fn network_pixels(&self, options: &SegmentOptions, rs: f64, cs: f64) -> (f64, f64) {
        if options.resample_to_model {
            return (self.pixel_spacing_mm[1], self.pixel_spacing_mm[0]);
        }
        match self.trained_pixel_range_mm {
            Some([lo, hi]) if options.fit_to_trained_pixels => (rs.clamp(lo, hi), cs.clamp(lo, hi)),
            _ => (rs, cs),
        }
    }

    /// Class probabilities `[n_classes][h][w]` for one image given in HU, `[input_channels][h][w]`,
    /// at the image's own pixel spacing, on the CPU in `f32` (as training evaluates it).
    pub fn predict_image(&self, hu: &[f32], height: usize, width: usize) -> Result<Vec<f32>> {
        self.predict_image_with(hu, height, width, Precision::F32)
    }

    /// [`Model::predict_image`] with the feature maps in `precision`.
    pub fn predict_image_with(
        &self,
        hu: &[f32],
        height: usize,
        width: usize,
        precision: Precision,
    ) -> Result<Vec<f32>> {
        self.validate()?;
        let input: Vec<f32> = hu.iter().map(|&v| self.normalization.apply(v)).collect();
        let mut probs = Vec::new();
        Predictor::new(self, Device::Cpu, InferenceKernels::select(precision))?
            .predict(&input, height, width, &mut probs)?;
        Ok(probs)
    }
}

#[cfg(test)]
mod tests {
    use msd_io::{Geometry, Volume};
    use ndarray::Array3;

    use crate::{Device, Model, MsdConfig, Normalization, SegmentOptions};

    fn small() -> (Model, Volume<f32>) {
        let model = Model::new(MsdConfig::new(3, 1, 1, 2), Normalization::default(), 1).unwrap();
        let ct = Volume::new(
            Array3::from_shape_fn((2, 9, 11), |(z, y, x)| (z * 99 + y * 11 + x) as f32),
            Geometry::default(),
        )
        .unwrap();
        (model, ct)
    }

    #[test]
    fn auto_segments_like_the_cpu_when_no_gpu_is_used() {
        let (model, ct) = small();
        let cpu = model.segment(&ct).unwrap();
        let auto = Device::Auto.resolve().unwrap();
        if auto.device() == Device::Cpu {
            let opts = SegmentOptions::default().with_device(Device::Auto);
            let seg = model.segment_with(&ct, &opts, |_, _| {}).unwrap();
            assert_eq!(seg.labels.data(), cpu.labels.data());
        }
    }

    #[test]
    fn planes_outside_the_trained_pixels_are_resampled_into_them() {
        let (mut model, ct) = small();
        let opts = SegmentOptions::default();
        // Not recorded: the scan's own pixels.
        assert_eq!(model.network_pixels(&opts, 3.2, 0.2), (3.2, 0.2));
        model.trained_pixel_range_mm = Some([0.3, 1.0]);
        assert_eq!(model.network_pixels(&opts, 3.2, 0.2), (1.0, 0.3));
        assert_eq!(model.network_pixels(&opts, 0.5, 0.7), (0.5, 0.7));
        assert_eq!(
            model.network_pixels(&opts.clone().with_fit_to_trained_pixels(false), 3.2, 0.2),
            (3.2, 0.2)
        );
        model.pixel_spacing_mm = [0.6, 0.4];
        assert_eq!(model.network_pixels(&opts.clone().with_resample_to_model(true), 0.5, 0.5), (0.4, 0.6));
        // The test volume has 1 mm pixels: a range above them resamples, and the labels come back
        // on the CT's grid.
        model.trained_pixel_range_mm = Some([2.0, 3.0]);
        let seg = model.segment(&ct).unwrap();
        assert_eq!(seg.labels.shape(), ct.shape());
        assert_eq!(seg.labels.geometry(), ct.geometry());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_inference_without_the_feature_is_a_typed_error() {
        let (model, ct) = small();
        let opts = SegmentOptions::default().with_device(Device::Cuda(0));
        let mut planes = 0;
        match model.segment_with(&ct, &opts, |_, _| planes += 1) {
            Err(crate::Error::CudaNotBuilt { device }) => assert_eq!(device, Device::Cuda(0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(planes, 0, "nothing runs before the device is checked");
    }
}
