//! Signed distances and deviation maps written as PLY and PNG.
use msd_metrics::{DeviationMap, Error, SurfaceIndex, signed_vertex_distances};

use crate::fixtures::icosphere;

#[test]
fn signed_distance_is_negative_inside_and_positive_outside() {
    let reference = icosphere([1.0, 2.0, 3.0], 12.0, 4);
    let inside = signed_vertex_distances(&icosphere([1.0, 2.0, 3.0], 10.0, 3), &reference).unwrap();
    let outside = signed_vertex_distances(&icosphere([1.0, 2.0, 3.0], 14.0, 3), &reference).unwrap();
    assert!(inside.iter().all(|d| (d + 2.0).abs() < 0.05), "{:?}", &inside[..4]);
    assert!(outside.iter().all(|d| (d - 2.0).abs() < 0.05), "{:?}", &outside[..4]);
    let plain = SurfaceIndex::new(&reference).unwrap();
    assert!(matches!(plain.signed_distances(&[[0.0; 3]]), Err(Error::InvalidArgument { .. })));
    let d = plain.distance([1.0, 2.0, 3.0 + 20.0]);
    assert!((d - 8.0).abs() < 0.01, "{d}");
    let q = plain.closest_point([1.0, 2.0, 23.0]);
    assert!((q[2] - 15.0).abs() < 0.01, "{q:?}");
}

#[test]
fn ply_and_png_are_written_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let reference = icosphere([0.0; 3], 10.0, 3);
    let mesh = crate::fixtures::translated(&reference, [1.0, 0.0, 0.0]);
    let map = DeviationMap::new(&mesh, &reference).unwrap();
    assert_eq!(map.signed_mm().len(), mesh.vertices().len());
    assert!(map.signed_mm().iter().any(|&d| d > 0.5) && map.signed_mm().iter().any(|&d| d < -0.5));
    let ply = dir.path().join("dev.ply");
    map.write_ply(&ply, Some(1.0)).unwrap();
    let bytes = std::fs::read(&ply).unwrap();
    let end = bytes.windows(11).position(|w| w == b"end_header\n").unwrap() + 11;
    let header = std::str::from_utf8(&bytes[..end]).unwrap();
    assert!(header.contains(&format!("element vertex {}", mesh.vertices().len())));
    assert_eq!(bytes.len() - end, mesh.vertices().len() * 19 + mesh.triangles().len() * 13);
    // The first vertex's quality is its signed distance.
    let q = f32::from_le_bytes(bytes[end + 15..end + 19].try_into().unwrap());
    assert_eq!(q, map.signed_mm()[0]);
    let missing = dir.path().join("no/such/dir/x.ply");
    assert!(matches!(map.write_ply(&missing, None), Err(Error::Io { .. })));
    assert!(DeviationMap::from_values(mesh.clone(), vec![0.0; 3]).is_err());
}
