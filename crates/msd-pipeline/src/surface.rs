//! From a segmentation to the surface an implant is designed on: marching cubes plus clean-up.
use msd_geom::{DecimateOptions, Mesh, SmoothOptions};
use msd_io::LabelVolume;
use rayon::prelude::*;

use crate::Result;

/// How a label volume becomes a surface mesh.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SurfaceOptions {
    /// Keep only this many of the largest connected components (by triangle count); 0 keeps all.
    pub keep_components: usize,
    /// Drop components with fewer triangles than this ("noise residuals").
    pub min_component_triangles: usize,
    /// Volume-preserving Taubin smoothing of the staircase surface (`None`: none).
    pub smoothing: Option<SmoothOptions>,
    /// Decimation to a triangle budget with bounded deviation (`None`: none).
    pub decimation: Option<DecimateOptions>,
}

impl Default for SurfaceOptions {
    /// Keeps every component of at least 50 triangles: the skull, and bone fragments of some size,
    /// without the specks a noisy segmentation leaves.
    fn default() -> Self {
        SurfaceOptions { keep_components: 0, min_component_triangles: 50, smoothing: None, decimation: None }
    }
}

impl SurfaceOptions {
    /// Options that keep all components, however small.
    pub fn raw() -> Self {
        SurfaceOptions { keep_components: 0, min_component_triangles: 0, smoothing: None, decimation: None }
    }

    /// The surface of a segmentation cleaned by `cleanup`: one closed piece when the clean-up keeps
    /// the largest bone component, else the default (every piece of 50 triangles or more). A
    /// component that is one under 26-connectivity can still fall apart into several closed
    /// surfaces where bone touches only along an edge or at a corner (no face joins the voxels, so
    /// no surface does), and a print wants the one piece the clean-up promised.
    pub fn for_cleanup(cleanup: &msd_geom::Cleanup) -> Self {
        match cleanup.keep {
            msd_geom::KeepComponents::Largest => Self::default().keep_components(1),
            _ => Self::default(),
        }
    }

    /// Returns the options with Taubin smoothing (`iterations` λ|μ pairs, volume restored; 0: none).
    pub fn smooth(mut self, iterations: usize) -> Self {
        self.smoothing = (iterations > 0).then(|| SmoothOptions { iterations, ..SmoothOptions::default() });
        self
    }

    /// Returns the options with decimation to at most `target_triangles`, no vertex moving further
    /// than `max_deviation_mm` from the surface.
    pub fn decimate(mut self, target_triangles: usize, max_deviation_mm: f64) -> Self {
        self.decimation = Some(DecimateOptions { target_triangles, max_deviation_mm });
        self
    }

    /// Returns the options with `n` largest components kept (0: all).
    pub fn keep_components(mut self, n: usize) -> Self {
        self.keep_components = n;
        self
    }

    /// Returns the options with components under `min` triangles dropped.
    pub fn min_component_triangles(mut self, min: usize) -> Self {
        self.min_component_triangles = min;
        self
    }

    /// Extracts the surface of the non-zero voxels of `labels` with these options.
    pub fn extract(&self, labels: &LabelVolume) -> Result<Mesh> {
        // A 0/1 volume is meshed as it is; any other is binarised first (in parallel), so a
        // large mask is not copied for nothing.
        let binary = match labels.data().as_slice_memory_order() {
            Some(s) => s.par_chunks(1 << 16).all(|c| c.iter().all(|&v| v <= 1)),
            None => labels.data().iter().all(|&v| v <= 1),
        };
        let mut mesh = if binary {
            msd_geom::label_surface(labels, 1)?
        } else {
            let mut binary = labels.data().as_standard_layout().into_owned();
            if let Some(s) = binary.as_slice_mut() {
                s.par_chunks_mut(1 << 16).for_each(|c| c.iter_mut().for_each(|v| *v = u8::from(*v != 0)));
            }
            msd_geom::label_surface(&labels.with_data(binary)?, 1)?
        };
        // Both clean-ups from one component pass when both apply (the same mesh as one after the
        // other).
        match (self.min_component_triangles, self.keep_components) {
            (0, 0) => {}
            (min, 0) => mesh = mesh.drop_small_components(min),
            (0, keep) => mesh = mesh.keep_largest_components(keep),
            (min, keep) => mesh = mesh.select_components(min, keep),
        }
        if let Some(smoothing) = &self.smoothing {
            mesh = msd_geom::smooth_taubin(&mesh, smoothing)?;
        }
        if let Some(decimation) = &self.decimation {
            mesh = msd_geom::decimate(&mesh, decimation)?.mesh;
        }
        Ok(mesh)
    }
}

/// The watertight surface (LPS mm) of the non-zero voxels of a segmentation, cleaned with the
/// default [`SurfaceOptions`].
pub fn surface(labels: &LabelVolume) -> Result<Mesh> {
    SurfaceOptions::default().extract(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use msd_io::{Geometry, Volume};
    use ndarray::Array3;

    #[test]
    fn after_keeping_the_largest_bone_the_surface_is_one_piece() {
        // Two 4³ boxes that share only a corner voxel edge: one 26-connected component, two
        // closed surfaces.
        let mut a = Array3::<u8>::zeros((12, 12, 12));
        for z in 1..5 {
            for y in 1..5 {
                for x in 1..5 {
                    a[[z, y, x]] = 1;
                    a[[z + 4, y + 4, x + 4]] = 1;
                }
            }
        }
        a[[1, 1, 1]] = 0; // the first box a little smaller: the larger piece is well defined
        let labels = Volume::new(a, Geometry::default()).unwrap();
        let (kept, _) = msd_geom::Cleanup::default().apply(&labels).unwrap();
        assert_eq!(kept.data(), labels.data(), "one 26-connected component, nothing removed");
        assert_eq!(SurfaceOptions::default().extract(&kept).unwrap().check().components, 2);
        let one = SurfaceOptions::for_cleanup(&msd_geom::Cleanup::default()).extract(&kept).unwrap();
        assert_eq!(one.check().components, 1);
        assert!(one.check().is_watertight());
        let keep_all =
            msd_geom::Cleanup { keep: msd_geom::KeepComponents::All, ..msd_geom::Cleanup::default() };
        assert_eq!(SurfaceOptions::for_cleanup(&keep_all).extract(&kept).unwrap().check().components, 2);
    }

    #[test]
    fn a_box_and_a_speck_give_one_closed_surface() {
        let mut a = Array3::<u8>::zeros((8, 8, 8));
        for z in 2..6 {
            for y in 2..6 {
                for x in 2..6 {
                    a[[z, y, x]] = 1;
                }
            }
        }
        a[[0, 0, 7]] = 1;
        let labels = Volume::new(a, Geometry::default()).unwrap();
        let raw = SurfaceOptions::raw().extract(&labels).unwrap();
        let clean = surface(&labels).unwrap();
        assert!(clean.triangles().len() < raw.triangles().len());
        assert!(clean.check().is_watertight());
        let v = clean.enclosed_volume();
        assert!(v > 30.0 && v < 70.0, "volume {v}");
        // Smoothing keeps the volume; decimation meets its budget and stays closed.
        let smooth = surface_options_smoothed().extract(&labels).unwrap();
        assert!((smooth.enclosed_volume() - v).abs() < 0.02 * v, "{} vs {v}", smooth.enclosed_volume());
        assert_ne!(smooth.vertices(), clean.vertices());
        let small = SurfaceOptions::default().decimate(40, 1.0).extract(&labels).unwrap();
        assert!(small.triangles().len() < clean.triangles().len());
        assert!(small.check().is_closed());
    }

    fn surface_options_smoothed() -> SurfaceOptions {
        SurfaceOptions::default().smooth(10)
    }
}
