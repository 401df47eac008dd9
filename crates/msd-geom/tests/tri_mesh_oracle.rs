//! Our topology and smoothing checked against tri-mesh's independent half-edge implementation.
use msd_geom::{Mesh, SmoothOptions, label_surface, smooth_taubin};
use msd_io::{Geometry, LabelVolume};
use ndarray::Array3;
use tri_mesh::math::Vector3;

fn to_tri_mesh(m: &Mesh) -> tri_mesh::Mesh {
    tri_mesh::Mesh::new(&three_d_asset::TriMesh {
        positions: three_d_asset::Positions::F64(
            m.vertices().iter().map(|p| Vector3::new(p[0] as f64, p[1] as f64, p[2] as f64)).collect(),
        ),
        indices: three_d_asset::Indices::U32(m.triangles().iter().flatten().copied().collect()),
        ..Default::default()
    })
}

fn blobs() -> Mesh {
    // Three separate blobs of different sizes.
    let a = Array3::from_shape_fn((14, 16, 30), |(z, y, x)| {
        let d = |c: [f64; 3]| {
            ((x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) + (z as f64 - c[2]).powi(2)).sqrt()
        };
        u8::from(d([6.0, 7.0, 6.0]) < 5.0 || d([17.0, 8.0, 7.0]) < 3.5 || d([25.0, 7.5, 6.5]) < 2.0)
    });
    label_surface(&LabelVolume::new(a, Geometry::default()).unwrap(), 1).unwrap()
}

#[test]
fn closedness_and_components_agree_with_tri_mesh() {
    let m = blobs();
    let t = to_tri_mesh(&m);
    assert!(t.is_closed() && m.check().is_closed());
    let mut theirs: Vec<usize> = t.connected_components().iter().map(|c| c.len()).collect();
    theirs.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(theirs, m.connected_components().sizes);
    let open = m.filter_triangles(|t| t != 5);
    assert!(!to_tri_mesh(&open).is_closed() && !open.check().is_closed());
}

#[test]
fn taubin_steps_match_tri_mesh_smoothing() {
    let m = blobs();
    let ours = smooth_taubin(
        &m,
        &SmoothOptions { iterations: 3, preserve_volume: false, ..SmoothOptions::default() },
    )
    .unwrap();
    let mut t = to_tri_mesh(&m);
    for _ in 0..3 {
        t.smooth_vertices(0.5);
        t.smooth_vertices(-0.53);
    }
    // tri-mesh keeps our vertex order: its vertex i is our vertex i.
    let worst = t
        .vertex_iter()
        .zip(ours.vertices())
        .map(|(v, p)| {
            let q = t.vertex_position(v);
            ((q.x - p[0] as f64).powi(2) + (q.y - p[1] as f64).powi(2) + (q.z - p[2] as f64).powi(2)).sqrt()
        })
        .fold(0.0f64, f64::max);
    assert!(worst < 1e-4, "largest difference {worst} mm");
}
