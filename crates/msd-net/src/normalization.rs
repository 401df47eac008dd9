//! Input normalisation: a Hounsfield window, then mean / standard deviation from the training set.
use msd_io::Volume;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Maps Hounsfield units to network input: `(clamp(hu, window) − mean) / std`.
///
/// The window keeps metal and air outliers from dominating; mean and std are those of the
/// windowed training voxels. It is stored in the model file, so a model always sees its inputs
/// as it did in training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// `[low, high]` HU window applied before standardising.
    pub window_hu: [f32; 2],
    /// Mean of the windowed training voxels (HU).
    pub mean: f32,
    /// Standard deviation of the windowed training voxels (HU), > 0.
    pub std: f32,
}

impl Default for Normalization {
    /// The default window with mean 0 and std 1 (no standardisation).
    fn default() -> Self {
        Normalization { window_hu: Self::DEFAULT_WINDOW_HU, mean: 0.0, std: 1.0 }
    }
}

impl Normalization {
    /// The default HU window: air to dense cortical bone.
    pub const DEFAULT_WINDOW_HU: [f32; 2] = [-1000.0, 2000.0];

    /// A checked normalisation (finite values, `low < high`, `std > 0`).
    pub fn new(window_hu: [f32; 2], mean: f32, std: f32) -> Result<Self> {
        let n = Normalization { window_hu, mean, std };
        n.validate()?;
        Ok(n)
    }

    /// Ok when every value is finite, the window is not empty and `std > 0`.
    pub fn validate(&self) -> Result<()> {
        let [lo, hi] = self.window_hu;
        if !(lo.is_finite()
            && hi.is_finite()
            && lo < hi
            && self.mean.is_finite()
            && self.std.is_finite()
            && self.std > 0.0)
        {
            return Err(Error::InvalidNormalization { normalization: *self });
        }
        Ok(())
    }

    /// Window plus mean / std of the windowed voxels of all `volumes` (computed in f64).
    pub fn from_volumes<'a>(
        volumes: impl IntoIterator<Item = &'a Volume<f32>>,
        window_hu: [f32; 2],
    ) -> Result<Self> {
        let (mut n, mut s, mut s2) = (0u64, 0.0f64, 0.0f64);
        for v in volumes {
            for &x in v.data().iter() {
                if x.is_nan() {
                    continue;
                }
                let x = x.clamp(window_hu[0], window_hu[1]) as f64;
                n += 1;
                s += x;
                s2 += x * x;
            }
        }
        if n == 0 {
            return Err(Error::NoVoxels);
        }
        let mean = s / n as f64;
        let std = (s2 / n as f64 - mean * mean).max(0.0).sqrt().max(1e-3);
        Normalization::new(window_hu, mean as f32, std as f32)
    }

    /// The network input for a value in HU (NaN maps to the window's low end).
    #[inline]
    pub fn apply(&self, hu: f32) -> f32 {
        let v = if hu.is_nan() { self.window_hu[0] } else { hu.clamp(self.window_hu[0], self.window_hu[1]) };
        (v - self.mean) / self.std
    }
}
