//! Surface distances straight from label volumes, for users without meshes.
//!
//! The surface of a segmentation is its boundary voxels: voxels of the class with at least one
//! 6-neighbour outside it (or on the volume's border), as MONAI's `get_mask_edges` finds them. The
//! distance from each boundary voxel of one volume to the nearest boundary voxel of the other comes
//! from an exact Euclidean distance transform in millimetres (anisotropic spacing honoured). Every
//! boundary voxel counts once (MONAI's convention); the statistics are those of
//! [`crate::surface_distance`] with voxels in place of area samples.
use msd_io::LabelVolume;
use rayon::prelude::*;

use crate::edt::squared_edt;
use crate::overlap::GRID_TOLERANCE_MM;
use crate::region::Region;
use crate::surface_distance::{SurfaceDistances, check_tolerance};
use crate::{Error, Result};

/// Distances between the boundaries of a class in two label volumes on one grid.
///
/// `label` picks the class: `None` means every non-zero voxel. `tolerance_mm` is the surface-Dice
/// tolerance; with a `region`, only boundary voxels whose centre lies in it are counted (their
/// distances still go to the whole other boundary). The `area_mm2` of the summaries is NaN.
///
/// Fails with [`Error::GridMismatch`] when the grids differ and [`Error::EmptyLabel`] when a
/// volume has no voxel of the class.
pub fn label_surface_distances(
    pred: &LabelVolume,
    reference: &LabelVolume,
    label: Option<u8>,
    tolerance_mm: f64,
    region: Option<&Region>,
) -> Result<SurfaceDistances> {
    pred.check_same_grid(reference, GRID_TOLERANCE_MM)
        .map_err(|source| Error::GridMismatch { what: "prediction and reference", source })?;
    check_tolerance(tolerance_mm)?;
    if let Some(r) = region {
        r.validate()?;
    }
    let class = |v: u8| match label {
        None => v != 0,
        Some(l) => v == l,
    };
    let shape = reference.shape();
    let p_edge = boundary(pred, &class);
    let r_edge = boundary(reference, &class);
    let which_label = label.unwrap_or(1);
    let Some(pb) = bounds(&p_edge, shape) else {
        return Err(Error::EmptyLabel { which: "predicted", label: which_label });
    };
    let Some(rb) = bounds(&r_edge, shape) else {
        return Err(Error::EmptyLabel { which: "reference", label: which_label });
    };
    // The transform only needs the box holding both boundaries: every site and every query is in it.
    let lo = [0, 1, 2].map(|k| pb.0[k].min(rb.0[k]));
    let hi = [0, 1, 2].map(|k| pb.1[k].max(rb.1[k]));
    let sub = [0, 1, 2].map(|k| hi[k] - lo[k] + 1);
    let crop = |edge: &[bool]| -> Vec<bool> {
        let mut out = Vec::with_capacity(sub[0] * sub[1] * sub[2]);
        for z in lo[0]..=hi[0] {
            for y in lo[1]..=hi[1] {
                let row = (z * shape[1] + y) * shape[2];
                out.extend_from_slice(&edge[row + lo[2]..=row + hi[2]]);
            }
        }
        out
    };
    let (pc, rc) = (crop(&p_edge), crop(&r_edge));
    let spacing = reference.geometry().spacing();
    let to_ref = squared_edt(&rc, sub, spacing);
    let to_pred = squared_edt(&pc, sub, spacing);
    let g = reference.geometry();
    let tester = region.map(Region::tester);
    let collect = |edge: &[bool], dist2: &[f64]| -> Vec<f32> {
        let mut out = Vec::new();
        for (i, _) in edge.iter().enumerate().filter(|(_, e)| **e) {
            let (z, y, x) = (i / (sub[1] * sub[2]), i / sub[2] % sub[1], i % sub[2]);
            if let Some(t) = &tester {
                let p = g.index_to_world([(x + lo[2]) as f64, (y + lo[1]) as f64, (z + lo[0]) as f64]);
                if !t.contains(p) {
                    continue;
                }
            }
            out.push(dist2[i].sqrt() as f32);
        }
        out
    };
    let pd = collect(&pc, &to_ref);
    let rd = collect(&rc, &to_pred);
    Ok(SurfaceDistances::from_directed((&pd, 1.0, f64::NAN), (&rd, 1.0, f64::NAN), tolerance_mm))
}

/// Boundary voxels of the class, in standard `[z, y, x]` order; one z slice per parallel task.
fn boundary(v: &LabelVolume, class: &(impl Fn(u8) -> bool + Sync)) -> Vec<bool> {
    let [nz, ny, nx] = v.shape();
    let owned;
    let d: &[u8] = match v.data().as_slice() {
        Some(s) => s,
        None => {
            owned = v.data().iter().copied().collect::<Vec<u8>>();
            &owned
        }
    };
    let plane = ny * nx;
    let mut out = vec![false; nz * plane];
    out.par_chunks_mut(plane).enumerate().for_each(|(z, slice)| {
        for y in 0..ny {
            for x in 0..nx {
                let i = z * plane + y * nx + x;
                if !class(d[i]) {
                    continue;
                }
                let border = z == 0 || y == 0 || x == 0 || z + 1 == nz || y + 1 == ny || x + 1 == nx;
                slice[y * nx + x] = border
                    || !class(d[i - plane])
                    || !class(d[i + plane])
                    || !class(d[i - nx])
                    || !class(d[i + nx])
                    || !class(d[i - 1])
                    || !class(d[i + 1]);
            }
        }
    });
    out
}

/// Smallest and largest `[z, y, x]` of the set voxels, if any.
fn bounds(edge: &[bool], shape: [usize; 3]) -> Option<([usize; 3], [usize; 3])> {
    let mut lo = [usize::MAX; 3];
    let mut hi = [0; 3];
    let mut any = false;
    for (i, _) in edge.iter().enumerate().filter(|(_, e)| **e) {
        let idx = [i / (shape[1] * shape[2]), i / shape[2] % shape[1], i % shape[2]];
        for k in 0..3 {
            lo[k] = lo[k].min(idx[k]);
            hi[k] = hi[k].max(idx[k]);
        }
        any = true;
    }
    any.then_some((lo, hi))
}
