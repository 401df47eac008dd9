//! A 512 × 512 × 250 defective skull for timing `msd implant` at clinical grid size: the cthead
//! craniectomy (`../shared/data/cthead/skull_defect_ref.nii.gz`, 232 × 250 × 113 voxels) resampled by
//! nearest neighbour onto a finer grid covering the same box (0.45 × 0.49 × 0.90 mm voxels).
//!
//! ```sh
//! cargo run --release --example implant_large -- OUT.nii.gz
//! time msd implant --skull OUT.nii.gz --out implant.nii.gz --mesh implant.stl
//! ```
use std::path::PathBuf;

use msd::io::{Geometry, LabelVolume};
use ndarray::Array3;

/// The target grid (x, y, z).
const SHAPE: [usize; 3] = [512, 512, 250];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: implant_large OUT.nii.gz");
        std::process::exit(2);
    };
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cthead");
    let path = data.join("skull_defect_ref.nii.gz");
    if !path.exists() {
        eprintln!("implant_large: {} is absent: nothing to resample", path.display());
        std::process::exit(1);
    }
    let skull = msd::io::read_labels(&path)?;
    let resampled = resample_nearest(&skull, SHAPE)?;
    msd::io::write_volume(&out, &resampled)?;
    eprintln!(
        "wrote {} ({:?} voxels, spacing {:?} mm)",
        out.display(),
        SHAPE,
        resampled.geometry().spacing()
    );
    Ok(())
}

/// The label on a grid of `shape` (x, y, z) voxels covering the same box as `labels`' voxels, by
/// nearest neighbour.
fn resample_nearest(
    labels: &LabelVolume,
    shape: [usize; 3],
) -> Result<LabelVolume, Box<dyn std::error::Error>> {
    let g = labels.geometry();
    let [nz, ny, nx] = labels.shape();
    let src = [nx, ny, nz];
    let ratio: [f64; 3] = [0, 1, 2].map(|k| src[k] as f64 / shape[k] as f64);
    let spacing: [f64; 3] = [0, 1, 2].map(|k| g.spacing()[k] * ratio[k]);
    // Voxel i of the new grid has its centre at source index (i + 0.5) · ratio − 0.5.
    let origin = g.index_to_world([0, 1, 2].map(|k| 0.5 * ratio[k] - 0.5));
    let geometry = Geometry::new(spacing, origin, g.direction())?;
    let nearest = |i: usize, k: usize| (((i as f64 + 0.5) * ratio[k]) as usize).min(src[k] - 1);
    let data = Array3::from_shape_fn((shape[2], shape[1], shape[0]), |(z, y, x)| {
        labels.data()[[nearest(z, 2), nearest(y, 1), nearest(x, 0)]]
    });
    Ok(LabelVolume::new(data, geometry)?)
}
