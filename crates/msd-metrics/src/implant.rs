//! AutoImplant-style scores of a designed implant against the true one (Li & Egger et al.,
//! "AutoImplant 2020/2021", the SkullBreak/SkullFix challenges): Dice over the whole implant,
//! boundary Dice (Dice counted only in a band around the defect's rim, where the implant must meet
//! the remaining skull) and the 95th-percentile Hausdorff distance between the implants' surfaces.
use msd_io::LabelVolume;
use rayon::prelude::*;

use crate::edt::squared_edt;
use crate::overlap::GRID_TOLERANCE_MM;
use crate::{Error, Region, Result, label_surface_distances, overlap, overlap_in_region};

/// The challenge's three measures for one implant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImplantScores {
    /// Dice of the implants (1 when both are empty).
    pub dice: f64,
    /// Dice counted only in the rim band.
    pub boundary_dice: f64,
    /// HD95 (mm) between the implants' boundary voxels (symmetric, as [`label_surface_distances`]).
    pub hd95_mm: f64,
}

/// The band within `band_mm` of the defect's rim: the voxels at most `band_mm` from a reference
/// implant voxel that touches (6-neighbour) the defective skull. `defective_skull` and
/// `reference_implant` must share a grid.
pub fn defect_rim_band(
    reference_implant: &LabelVolume,
    defective_skull: &LabelVolume,
    band_mm: f64,
) -> Result<LabelVolume> {
    reference_implant
        .check_same_grid(defective_skull, GRID_TOLERANCE_MM)
        .map_err(|source| Error::GridMismatch { what: "reference implant and defective skull", source })?;
    if !(band_mm.is_finite() && band_mm >= 0.0) {
        return Err(Error::invalid("band", format!("{band_mm} mm; it must be finite and ≥ 0")));
    }
    let [nz, ny, nx] = reference_implant.shape();
    let imp = reference_implant.data();
    let skull = defective_skull.data();
    let rim: Vec<bool> = (0..nz * ny * nx)
        .into_par_iter()
        .map(|i| {
            let (z, y, x) = (i / (ny * nx), i / nx % ny, i % nx);
            if imp[[z, y, x]] == 0 {
                return false;
            }
            let n = |dz: isize, dy: isize, dx: isize| {
                let (zz, yy, xx) = (z as isize + dz, y as isize + dy, x as isize + dx);
                zz >= 0
                    && yy >= 0
                    && xx >= 0
                    && (zz as usize) < nz
                    && (yy as usize) < ny
                    && (xx as usize) < nx
                    && skull[[zz as usize, yy as usize, xx as usize]] != 0
            };
            n(1, 0, 0) || n(-1, 0, 0) || n(0, 1, 0) || n(0, -1, 0) || n(0, 0, 1) || n(0, 0, -1)
        })
        .collect();
    if !rim.iter().any(|&r| r) {
        return Err(Error::EmptyLabel { which: "rim of the reference implant", label: 1 });
    }
    let d2 = squared_edt(&rim, [nz, ny, nx], reference_implant.geometry().spacing());
    let limit = band_mm * band_mm;
    let band =
        ndarray::Array3::from_shape_vec((nz, ny, nx), d2.iter().map(|&d| u8::from(d <= limit)).collect())
            .expect("shape matches");
    Ok(reference_implant.with_data(band)?)
}

/// Dice, boundary Dice in `band` (e.g. [`defect_rim_band`] or `defect_region.nii.gz`) and HD95 of a
/// predicted implant against the reference, all on one grid.
pub fn implant_scores(
    pred: &LabelVolume,
    reference: &LabelVolume,
    band: &LabelVolume,
) -> Result<ImplantScores> {
    let whole = overlap(pred, reference)?;
    band.check_same_grid(reference, GRID_TOLERANCE_MM)
        .map_err(|source| Error::GridMismatch { what: "band and reference", source })?;
    let near = overlap_in_region(pred, reference, &Region::Mask(band.clone()))?;
    let hd95_mm = label_surface_distances(pred, reference, None, 1.0, None)?.hd95_mm();
    Ok(ImplantScores { dice: whole.dice(), boundary_dice: near.dice(), hd95_mm })
}

#[cfg(test)]
mod tests {
    use msd_io::Geometry;
    use ndarray::Array3;

    use super::*;

    fn slabs(zs: &[usize]) -> LabelVolume {
        let g = Geometry::new([1.0, 1.0, 2.0], [0.0; 3], Geometry::IDENTITY).unwrap();
        LabelVolume::new(
            Array3::from_shape_fn((8, 6, 6), |(z, y, x)| u8::from(zs.contains(&z) && x < 4 && y < 4)),
            g,
        )
        .unwrap()
    }

    #[test]
    fn hand_computed_case() {
        // Reference: a 4×4 slab at z = 2 (16 voxels); prediction: the same slab and the one above
        // (32 voxels). Dice = 2·16 / (16 + 32) = 2/3. Every voxel is a boundary voxel; the upper
        // slab lies one z step (2 mm) from the reference, the rest at 0: of the 48 distances
        // (16 + 16 from the prediction, 16 from the reference) 16 are 2 mm, so HD95 = 2 mm.
        let reference = slabs(&[2]);
        let pred = slabs(&[2, 3]);
        // The band: only the row y = 0.
        let band =
            reference.with_data(Array3::from_shape_fn((8, 6, 6), |(_, y, _)| u8::from(y == 0))).unwrap();
        let s = implant_scores(&pred, &reference, &band).unwrap();
        assert!((s.dice - 2.0 / 3.0).abs() < 1e-12, "{s:?}");
        // In the band: 4 reference voxels, 8 predicted, 4 shared: 8 / 12.
        assert!((s.boundary_dice - 8.0 / 12.0).abs() < 1e-12, "{s:?}");
        assert!((s.hd95_mm - 2.0).abs() < 1e-6, "{s:?}");
        // Identical implants score perfectly.
        let same = implant_scores(&reference, &reference, &band).unwrap();
        assert_eq!((same.dice, same.boundary_dice, same.hd95_mm), (1.0, 1.0, 0.0));
    }

    #[test]
    fn rim_band_is_measured_from_the_rim() {
        // Skull: slab z = 2 for x < 2; implant: slab z = 2 for 2 ≤ x < 4. Rim voxels are x = 2; a
        // 1.5 mm band holds x = 1, 2, 3 (1 mm apart) at z = 2 only (z steps are 2 mm).
        let g = Geometry::new([1.0, 1.0, 2.0], [0.0; 3], Geometry::IDENTITY).unwrap();
        let skull =
            LabelVolume::new(Array3::from_shape_fn((5, 3, 6), |(z, _, x)| u8::from(z == 2 && x < 2)), g)
                .unwrap();
        let implant = LabelVolume::new(
            Array3::from_shape_fn((5, 3, 6), |(z, _, x)| u8::from(z == 2 && (2..4).contains(&x))),
            g,
        )
        .unwrap();
        let band = defect_rim_band(&implant, &skull, 1.5).unwrap();
        for ((z, _, x), &v) in band.data().indexed_iter() {
            assert_eq!(v != 0, z == 2 && (1..=3).contains(&x), "z {z} x {x}");
        }
        assert!(defect_rim_band(&implant, &skull, -1.0).is_err());
    }
}
