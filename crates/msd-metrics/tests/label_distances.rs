//! Surface distances from label volumes: exact on simple shapes, anisotropic spacing honoured.
use msd_metrics::{Error, Region, label_surface_distances};

use crate::fixtures::labels;

#[test]
fn single_voxels_are_their_anisotropic_offset_apart() {
    let spacing = [0.7, 1.3, 2.5];
    let a = labels([9, 9, 9], spacing, |x, y, z| u8::from((x, y, z) == (2, 3, 4)));
    let b = labels([9, 9, 9], spacing, |x, y, z| u8::from((x, y, z) == (5, 1, 6)));
    let d = label_surface_distances(&a, &b, None, 1.0, None).unwrap();
    let want = ((3.0f64 * 0.7).powi(2) + (2.0f64 * 1.3).powi(2) + (2.0f64 * 2.5).powi(2)).sqrt();
    assert!((d.mad_mm() - want).abs() < 1e-5, "{} vs {want}", d.mad_mm());
    assert_eq!(d.surface_dice, 0.0);
}

#[test]
fn identical_volumes_are_zero_apart() {
    let a = labels([10, 12, 14], [1.0, 1.0, 2.0], |x, y, z| u8::from(x > 3 && y > 2 && z > 1 && x + y < 18));
    let d = label_surface_distances(&a, &a, None, 0.0, None).unwrap();
    assert_eq!(d.symmetric.max_mm, 0.0);
    assert_eq!(d.surface_dice, 1.0);
}

/// Boundary voxels (class voxels with a 6-neighbour outside, or on the border) as mm positions.
fn naive_boundary(v: &msd_io::LabelVolume) -> Vec<[f64; 3]> {
    let [nz, ny, nx] = v.shape();
    let s = v.geometry().spacing();
    let d = v.data();
    let at = |z: isize, y: isize, x: isize| {
        z >= 0
            && y >= 0
            && x >= 0
            && (z as usize) < nz
            && (y as usize) < ny
            && (x as usize) < nx
            && d[[z as usize, y as usize, x as usize]] != 0
    };
    let mut out = Vec::new();
    for ((z, y, x), &val) in d.indexed_iter() {
        let (zi, yi, xi) = (z as isize, y as isize, x as isize);
        let nbrs = [
            (zi - 1, yi, xi),
            (zi + 1, yi, xi),
            (zi, yi - 1, xi),
            (zi, yi + 1, xi),
            (zi, yi, xi - 1),
            (zi, yi, xi + 1),
        ];
        if val != 0 && nbrs.iter().any(|&(a, b, c)| !at(a, b, c)) {
            out.push([x as f64 * s[0], y as f64 * s[1], z as f64 * s[2]]);
        }
    }
    out
}

fn naive_mean(from: &[[f64; 3]], to: &[[f64; 3]]) -> f64 {
    from.iter()
        .map(|p| {
            to.iter()
                .map(|q| (0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f64>())
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .sum::<f64>()
        / from.len() as f64
}

#[test]
fn matches_a_brute_force_reference_on_anisotropic_balls() {
    let spacing = [0.6, 0.9, 2.2];
    let a = crate::fixtures::ball([12, 20, 24], spacing, [11.0, 9.0, 5.0], 6.0);
    let b = crate::fixtures::ball([12, 20, 24], spacing, [12.5, 10.0, 6.0], 5.0);
    let d = label_surface_distances(&a, &b, None, 1.0, None).unwrap();
    let (pa, pb) = (naive_boundary(&a), naive_boundary(&b));
    assert_eq!((d.pred_to_ref.points, d.ref_to_pred.points), (pa.len(), pb.len()));
    let (ab, ba) = (naive_mean(&pa, &pb), naive_mean(&pb, &pa));
    assert!((d.pred_to_ref.mean_mm - ab).abs() < 1e-5, "{} vs {ab}", d.pred_to_ref.mean_mm);
    assert!((d.ref_to_pred.mean_mm - ba).abs() < 1e-5, "{} vs {ba}", d.ref_to_pred.mean_mm);
    let pooled = (ab * pa.len() as f64 + ba * pb.len() as f64) / (pa.len() + pb.len()) as f64;
    assert!((d.mad_mm() - pooled).abs() < 1e-5);
}

#[test]
fn empty_label_and_region_handling() {
    let a = labels([5, 5, 5], [1.0; 3], |x, _, _| u8::from(x == 2));
    let e = labels([5, 5, 5], [1.0; 3], |_, _, _| 0);
    assert!(matches!(
        label_surface_distances(&a, &e, None, 1.0, None),
        Err(Error::EmptyLabel { which: "reference", .. })
    ));
    assert!(matches!(
        label_surface_distances(&e, &a, Some(1), 1.0, None),
        Err(Error::EmptyLabel { which: "predicted", .. })
    ));
    let far = Region::sphere([1000.0; 3], 1.0).unwrap();
    let d = label_surface_distances(&a, &a, None, 1.0, Some(&far)).unwrap();
    assert_eq!(d.symmetric.points, 0);
    assert!(d.mad_mm().is_nan());
}
