//! Training data: CT volumes in HU with their label volumes, cut into axial slices or 2.5D slabs.
use msd_io::{LabelVolume, Volume};
use ndarray::{Array3, s};

use crate::resample::{resample_labels, resample_plane, resampled_len};
use crate::{Error, Result};

/// One CT volume and its labels, at their own pixel spacing or resampled in-plane to the
/// dataset's.
#[derive(Debug, Clone)]
struct Case {
    ct: Array3<f32>,
    labels: Array3<u8>,
    /// Voxel spacing `(x, y, z)` in mm of `ct` and `labels`.
    spacing: [f64; 3],
}

/// Where a training sample comes from: a case and an axial slice index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SliceRef {
    /// Index of the case, in the order cases were added.
    pub case: usize,
    /// Axial slice (z index).
    pub z: usize,
}

/// CT / label pairs for training, sampled as axial slices (one input channel) or 2.5D slabs
/// (`2k + 1` channels: the slice and `k` neighbours on each side, edge slices repeated).
///
/// Cases keep their own pixel spacing (training resamples each sample to the pixel sizes its
/// [`crate::Augmentation`] asks for), unless [`Dataset::with_pixel_spacing`] fixes one spacing for
/// all: then every case is resampled in-plane to it when added, the CT bilinearly and the labels by
/// linear interpolation of each class's indicator.
#[derive(Debug, Clone)]
pub struct Dataset {
    input_channels: usize,
    pixel_spacing_mm: Option<[f64; 2]>,
    cases: Vec<Case>,
    originals: Vec<Volume<f32>>,
    n_classes: usize,
}

impl Dataset {
    /// An empty dataset giving `input_channels` (odd: 1, 3, 5, ...) channels per sample.
    pub fn new(input_channels: usize) -> Result<Self> {
        if input_channels == 0 || input_channels.is_multiple_of(2) {
            return Err(Error::InvalidValue {
                name: "input_channels",
                value: input_channels as f64,
                expected: "odd (the slice and k neighbours on each side)",
            });
        }
        Ok(Dataset {
            input_channels,
            pixel_spacing_mm: None,
            cases: Vec::new(),
            originals: Vec::new(),
            n_classes: 2,
        })
    }

    /// Fixes the in-plane pixel spacing `(columns, rows)` in mm that cases are resampled to.
    pub fn with_pixel_spacing(mut self, spacing_mm: [f64; 2]) -> Result<Self> {
        if let Some(&s) = spacing_mm.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::InvalidValue {
                name: "pixel spacing (mm)",
                value: s,
                expected: "finite and > 0",
            });
        }
        self.pixel_spacing_mm = Some(spacing_mm);
        Ok(self)
    }

    /// Adds a CT volume (HU) and its label volume, which must share its grid.
    pub fn add(&mut self, ct: &Volume<f32>, labels: &LabelVolume) -> Result<()> {
        ct.check_same_grid(labels, 1e-3)?;
        let [sx, sy, sz] = ct.geometry().spacing();
        let Some(target) = self.pixel_spacing_mm else {
            let max_label = labels.data().iter().copied().max().unwrap_or(0) as usize;
            self.n_classes = self.n_classes.max(max_label + 1);
            self.cases.push(Case {
                ct: ct.data().to_owned(),
                labels: labels.data().to_owned(),
                spacing: [sx, sy, sz],
            });
            self.originals.push(ct.clone());
            return Ok(());
        };
        let [nz, ny, nx] = ct.shape();
        let (ox, oy) = (resampled_len(nx, sx, target[0]), resampled_len(ny, sy, target[1]));
        let (cs, rs) = (target[0] / sx, target[1] / sy);
        let max_label = labels.data().iter().copied().max().unwrap_or(0);
        let mut ct_out = Array3::<f32>::zeros((nz, oy, ox));
        let mut lb_out = Array3::<u8>::zeros((nz, oy, ox));
        for z in 0..nz {
            let plane: Vec<f32> = ct.data().index_axis(ndarray::Axis(0), z).iter().copied().collect();
            let lplane: Vec<u8> = labels.data().index_axis(ndarray::Axis(0), z).iter().copied().collect();
            let r = resample_plane(&plane, ny, nx, oy, ox, rs, cs);
            let l = resample_labels(&lplane, max_label, ny, nx, oy, ox, rs, cs);
            ct_out.index_axis_mut(ndarray::Axis(0), z).iter_mut().zip(r).for_each(|(d, s)| *d = s);
            lb_out.index_axis_mut(ndarray::Axis(0), z).iter_mut().zip(l).for_each(|(d, s)| *d = s);
        }
        self.n_classes = self.n_classes.max(max_label as usize + 1);
        self.cases.push(Case { ct: ct_out, labels: lb_out, spacing: [target[0], target[1], sz] });
        self.originals.push(ct.clone());
        Ok(())
    }

    /// The voxel spacing `(x, y, z)` in mm of a case's samples.
    ///
    /// # Panics
    ///
    /// If `case` is not below [`Dataset::cases`].
    pub fn case_spacing(&self, case: usize) -> [f64; 3] {
        self.cases[case].spacing
    }

    /// Axial slice `z` of a case's CT in HU, `[rows][cols]`; `z` outside the volume repeats the
    /// edge slice.
    pub(crate) fn plane(&self, case: usize, z: i64) -> Vec<f32> {
        let ct = &self.cases[case].ct;
        let z = z.clamp(0, ct.dim().0 as i64 - 1) as usize;
        ct.index_axis(ndarray::Axis(0), z).iter().copied().collect()
    }

    /// Axial slice `z` of a case's labels, `[rows][cols]`; `z` outside the volume repeats the edge
    /// slice.
    pub(crate) fn label_plane(&self, case: usize, z: i64) -> Vec<u8> {
        let l = &self.cases[case].labels;
        let z = z.clamp(0, l.dim().0 as i64 - 1) as usize;
        l.index_axis(ndarray::Axis(0), z).iter().copied().collect()
    }

    /// Input channels per sample.
    pub fn input_channels(&self) -> usize {
        self.input_channels
    }

    /// The in-plane pixel spacing `(columns, rows)` in mm that cases are resampled to, or, when
    /// none was fixed, the first case's (`None` while empty).
    pub fn pixel_spacing_mm(&self) -> Option<[f64; 2]> {
        self.pixel_spacing_mm.or_else(|| self.cases.first().map(|c| [c.spacing[0], c.spacing[1]]))
    }

    /// Classes seen in the labels (at least 2: the largest label + 1).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of cases.
    pub fn cases(&self) -> usize {
        self.cases.len()
    }

    /// Every sample (all axial slices of all cases), in order.
    pub fn slices(&self) -> Vec<SliceRef> {
        self.cases
            .iter()
            .enumerate()
            .flat_map(|(case, c)| (0..c.ct.dim().0).map(move |z| SliceRef { case, z }))
            .collect()
    }

    /// The CT volumes as added (for the normalisation statistics).
    pub fn volumes(&self) -> impl Iterator<Item = &Volume<f32>> {
        self.originals.iter()
    }

    /// Shape `(rows, columns)` of a sample.
    ///
    /// # Panics
    ///
    /// If `s` is not one of [`Dataset::slices`].
    pub fn slice_shape(&self, s: SliceRef) -> (usize, usize) {
        let (_, h, w) = self.cases[s.case].ct.dim();
        (h, w)
    }

    /// One whole sample in HU, as training sees it before normalisation and augmentation: the
    /// input `[input_channels][rows][cols]` (slices `z − k ..= z + k`, the edge slice repeated
    /// where the volume ends) and the labels `[rows][cols]` of slice `z`.
    pub fn sample(&self, s: SliceRef) -> Result<(Vec<f32>, Vec<u8>)> {
        let case =
            self.cases.get(s.case).filter(|c| s.z < c.ct.dim().0).ok_or_else(|| Error::NoSuchSlice {
                case: s.case,
                z: s.z,
                cases: self.cases.len(),
                slices: self.cases.get(s.case).map(|c| c.ct.dim().0),
            })?;
        let (_, h, w) = case.ct.dim();
        Ok(self.crop(s, 0, 0, h, w))
    }

    /// The HU input `[channels][rows][cols]` (crop `y0..y0+h`, `x0..x0+w`) and its labels.
    pub(crate) fn crop(&self, s: SliceRef, y0: usize, x0: usize, h: usize, w: usize) -> (Vec<f32>, Vec<u8>) {
        let case = &self.cases[s.case];
        let nz = case.ct.dim().0 as isize;
        let k = (self.input_channels / 2) as isize;
        let mut input = Vec::with_capacity(self.input_channels * h * w);
        for dz in -k..=k {
            let z = (s.z as isize + dz).clamp(0, nz - 1) as usize;
            input.extend(case.ct.slice(s![z, y0..y0 + h, x0..x0 + w]).iter().copied());
        }
        let labels = case.labels.slice(s![s.z, y0..y0 + h, x0..x0 + w]).iter().copied().collect();
        (input, labels)
    }
}
