//! Analytic surface-distance cases: concentric and translated spheres, identical and disjoint
//! surfaces, regions.
use msd_metrics::{Error, Region, SurfaceDistanceOptions, surface_distances};

use crate::fixtures::{icosphere, translated};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn concentric_spheres_are_the_radius_difference_apart() {
    let inner = icosphere([1.0, -2.0, 3.0], 20.0, 5);
    let outer = icosphere([1.0, -2.0, 3.0], 23.0, 5);
    let d = surface_distances(&inner, &outer, &SurfaceDistanceOptions::new().samples_per_mm2(2.0)).unwrap();
    for s in [d.pred_to_ref, d.ref_to_pred, d.symmetric] {
        assert!(close(s.mean_mm, 3.0, 0.01), "{s:?}");
        assert!(close(s.median_mm, 3.0, 0.02) && close(s.hd95_mm, 3.0, 0.02) && close(s.max_mm, 3.0, 0.03));
        assert!(close(s.rms_mm, 3.0, 0.01));
    }
    assert_eq!(d.surface_dice, 0.0);
    let loose = SurfaceDistanceOptions::new().tolerance_mm(3.1).compute(&inner, &outer).unwrap();
    assert_eq!(loose.surface_dice, 1.0);
    // Area weighting: the outer sphere has (23/20)² times the inner's area, and the samples say so.
    let ratio = d.ref_to_pred.area_mm2 / d.pred_to_ref.area_mm2;
    assert!(close(ratio, (23.0f64 / 20.0).powi(2), 1e-3), "{ratio}");
}

/// Mean over a sphere of radius r of the distance to the same sphere moved by t:
/// ½ ∫₋₁¹ |√(r² + t² − 2rtu) − r| du, by the midpoint rule.
fn translated_sphere_mad(r: f64, t: f64) -> f64 {
    let n = 200_000;
    (0..n)
        .map(|i| {
            let u = -1.0 + (i as f64 + 0.5) * 2.0 / n as f64;
            ((r * r + t * t - 2.0 * r * t * u).sqrt() - r).abs()
        })
        .sum::<f64>()
        / n as f64
}

#[test]
fn sphere_against_itself_translated_along_x() {
    let a = icosphere([0.0; 3], 15.0, 5);
    for t in [0.5f32, 2.0, 6.0] {
        let b = translated(&a, [t, 0.0, 0.0]);
        let d = surface_distances(&a, &b, &SurfaceDistanceOptions::new().samples_per_mm2(4.0)).unwrap();
        let want = translated_sphere_mad(15.0, f64::from(t));
        assert!(close(d.mad_mm(), want, 0.01 * want + 0.003), "t = {t}: {} vs {want}", d.mad_mm());
        // Largest deviation is t, at the poles on the x axis.
        assert!(close(d.hausdorff_mm(), f64::from(t), 0.02 + 0.01 * f64::from(t)), "{}", d.hausdorff_mm());
    }
}

#[test]
fn identical_surfaces_are_zero_apart() {
    let a = icosphere([5.0, 5.0, 5.0], 10.0, 4);
    let d = surface_distances(&a, &a, &SurfaceDistanceOptions::new()).unwrap();
    assert!(d.symmetric.max_mm < 1e-4, "{:?}", d.symmetric);
    assert_eq!(d.surface_dice, 1.0);
}

#[test]
fn disjoint_spheres_are_centre_distance_minus_radii_on_average() {
    let a = icosphere([0.0; 3], 5.0, 4);
    let b = icosphere([100.0, 0.0, 0.0], 5.0, 4);
    let d = surface_distances(&a, &b, &SurfaceDistanceOptions::new().samples_per_mm2(8.0)).unwrap();
    // The mean of |p − c| over a sphere of radius r at distance D from c is D + r²/(3D).
    let want = 100.0 + 25.0 / 300.0 - 5.0;
    assert!(close(d.mad_mm(), want, 0.02), "{} vs {want}", d.mad_mm());
    assert!(close(d.symmetric.max_mm, 100.0, 0.05), "{}", d.symmetric.max_mm);
    assert_eq!(d.surface_dice, 0.0);
}

#[test]
fn sphere_region_counts_only_the_cap_inside_it() {
    let a = icosphere([0.0; 3], 10.0, 5);
    let b = translated(&a, [0.0, 0.0, 1.0]);
    // A ball around the +x equator: the shift is tangential there, distances small (≤ 0.35 mm).
    let region = Region::sphere([10.0, 0.0, 0.0], 3.0).unwrap();
    let opts = SurfaceDistanceOptions::new().samples_per_mm2(8.0);
    let all = opts.compute(&a, &b).unwrap();
    let near = opts.clone().region(region).compute(&a, &b).unwrap();
    assert!(
        near.symmetric.points < all.symmetric.points / 20,
        "{} of {}",
        near.symmetric.points,
        all.symmetric.points
    );
    assert!(near.mad_mm() < 0.2 && all.mad_mm() > 0.4, "{} {}", near.mad_mm(), all.mad_mm());
    // A region holding no surface gives NaN, not a panic or an error.
    let far = opts.region(Region::sphere([100.0, 0.0, 0.0], 1.0).unwrap()).compute(&a, &b).unwrap();
    assert_eq!(far.symmetric.points, 0);
    assert!(far.mad_mm().is_nan() && far.surface_dice.is_nan());
}

#[test]
fn bad_inputs_are_typed_errors() {
    let a = icosphere([0.0; 3], 10.0, 1);
    let empty = msd_geom::Mesh::new(vec![[0.0; 3]], vec![]).unwrap();
    let err = surface_distances(&empty, &a, &SurfaceDistanceOptions::new()).unwrap_err();
    assert!(matches!(err, Error::EmptyMesh { which: "predicted", .. }), "{err}");
    let flat =
        msd_geom::Mesh::new(vec![[0.0; 3], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], vec![[0, 1, 2]]).unwrap();
    assert!(matches!(
        surface_distances(&a, &flat, &SurfaceDistanceOptions::new()),
        Err(Error::EmptyMesh { .. })
    ));
    for opts in [
        SurfaceDistanceOptions::new().samples_per_mm2(f64::NAN),
        SurfaceDistanceOptions::new().samples_per_mm2(0.0),
        SurfaceDistanceOptions::new().tolerance_mm(-1.0),
        SurfaceDistanceOptions::new().max_samples_per_surface(0),
        SurfaceDistanceOptions::new().region(Region::Sphere { centre: [0.0; 3], radius_mm: f64::INFINITY }),
    ] {
        assert!(matches!(surface_distances(&a, &a, &opts), Err(Error::InvalidArgument { .. })), "{opts:?}");
    }
}

#[test]
fn sample_cap_keeps_area_weighting() {
    let small = icosphere([0.0; 3], 5.0, 4);
    let big = icosphere([100.0, 0.0, 0.0], 10.0, 4);
    // Both capped at the same count: pooling must still weight the big sphere four times as much.
    let d = SurfaceDistanceOptions::new()
        .samples_per_mm2(100.0)
        .max_samples_per_surface(2000)
        .compute(&small, &big)
        .unwrap();
    assert_eq!((d.pred_to_ref.points, d.ref_to_pred.points), (2000, 2000));
    let (small_to_big, big_to_small) = (100.0 + 25.0 / 300.0 - 10.0, 100.0 + 100.0 / 300.0 - 5.0);
    assert!(close(d.pred_to_ref.mean_mm, small_to_big, 0.05), "{:?}", d.pred_to_ref);
    assert!(close(d.ref_to_pred.mean_mm, big_to_small, 0.05), "{:?}", d.ref_to_pred);
    let weighted = (small_to_big + 4.0 * big_to_small) / 5.0;
    assert!(close(d.mad_mm(), weighted, 0.05), "{} vs {weighted}", d.mad_mm());
}
