//! A voxel array indexed `[z, y, x]` together with the geometry that places it in the patient.
use ndarray::Array3;

use crate::{Error, Geometry, Result};

/// A 3D image: voxel values in an `Array3` indexed `[z, y, x]`, placed in the patient by a
/// [`Geometry`] (LPS millimetres). CT volumes hold Hounsfield units (`Volume<f32>` or `Volume<i16>`);
/// label volumes hold class indices ([`LabelVolume`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T> {
    data: Array3<T>,
    geometry: Geometry,
}

/// A label volume: one class index per voxel (0 = background).
pub type LabelVolume = Volume<u8>;

impl<T> Volume<T> {
    /// Pairs an array indexed `[z, y, x]` with its geometry. Fails when any dimension is zero.
    pub fn new(data: Array3<T>, geometry: Geometry) -> Result<Self> {
        let (z, y, x) = data.dim();
        if z == 0 || y == 0 || x == 0 {
            return Err(Error::InvalidGeometry {
                what: format!("volume shape (z, y, x) = ({z}, {y}, {x}) has an empty dimension"),
            });
        }
        Ok(Volume { data, geometry })
    }

    /// The voxel array, indexed `[z, y, x]`.
    pub fn data(&self) -> &Array3<T> {
        &self.data
    }

    /// Mutable access to the voxel array (its shape cannot change through this).
    pub fn data_mut(&mut self) -> ndarray::ArrayViewMut3<'_, T> {
        // A view, not `&mut Array3`, so the shape stays the one the geometry was checked against.
        self.data.view_mut()
    }

    /// Takes the voxel array and geometry apart.
    pub fn into_parts(self) -> (Array3<T>, Geometry) {
        (self.data, self.geometry)
    }

    /// The geometry placing the voxels in LPS millimetres.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Shape as `[z, y, x]`.
    pub fn shape(&self) -> [usize; 3] {
        let (z, y, x) = self.data.dim();
        [z, y, x]
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Always false: a volume has at least one voxel.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A volume of the same grid with the values mapped through `f`.
    pub fn map<U>(&self, f: impl FnMut(&T) -> U) -> Volume<U> {
        Volume { data: self.data.map(f), geometry: self.geometry }
    }

    /// A new volume on this grid with other voxel values; fails if the shape differs.
    pub fn with_data<U>(&self, data: Array3<U>) -> Result<Volume<U>> {
        let (z, y, x) = data.dim();
        if [z, y, x] != self.shape() {
            return Err(Error::ShapeMismatch { expected: self.shape(), found: [z, y, x] });
        }
        Ok(Volume { data, geometry: self.geometry })
    }

    /// Ok when both volumes have the same shape and geometry (within `tolerance_mm`), else a
    /// [`Error::GridMismatch`] or [`Error::ShapeMismatch`] saying what differs.
    pub fn check_same_grid<U>(&self, other: &Volume<U>, tolerance_mm: f64) -> Result<()> {
        if self.shape() != other.shape() {
            return Err(Error::ShapeMismatch { expected: self.shape(), found: other.shape() });
        }
        self.geometry.check_same_grid(&other.geometry, tolerance_mm)
    }
}
