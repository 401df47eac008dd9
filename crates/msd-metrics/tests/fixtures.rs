//! Named builders for synthetic meshes and label volumes.
use msd_geom::Mesh;
use msd_io::{Geometry, LabelVolume};
use ndarray::Array3;

/// An icosphere: the icosahedron subdivided `level` times, projected on the sphere of `radius`
/// around `centre`, wound counter-clockwise seen from outside.
pub fn icosphere(centre: [f32; 3], radius: f32, level: u32) -> Mesh {
    let t = (1.0 + 5f32.sqrt()) / 2.0;
    let mut v: Vec<[f32; 3]> = vec![
        [-1.0, t, 0.0],
        [1.0, t, 0.0],
        [-1.0, -t, 0.0],
        [1.0, -t, 0.0],
        [0.0, -1.0, t],
        [0.0, 1.0, t],
        [0.0, -1.0, -t],
        [0.0, 1.0, -t],
        [t, 0.0, -1.0],
        [t, 0.0, 1.0],
        [-t, 0.0, -1.0],
        [-t, 0.0, 1.0],
    ];
    let mut f: Vec<[u32; 3]> = vec![
        [0, 11, 5],
        [0, 5, 1],
        [0, 1, 7],
        [0, 7, 10],
        [0, 10, 11],
        [1, 5, 9],
        [5, 11, 4],
        [11, 10, 2],
        [10, 7, 6],
        [7, 1, 8],
        [3, 9, 4],
        [3, 4, 2],
        [3, 2, 6],
        [3, 6, 8],
        [3, 8, 9],
        [4, 9, 5],
        [2, 4, 11],
        [6, 2, 10],
        [8, 6, 7],
        [9, 8, 1],
    ];
    let unit = |p: [f32; 3]| {
        let n = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        [p[0] / n, p[1] / n, p[2] / n]
    };
    v = v.into_iter().map(unit).collect();
    for _ in 0..level {
        let mut mid = std::collections::HashMap::new();
        let mut next = Vec::with_capacity(f.len() * 4);
        let mut midpoint = |a: u32, b: u32, v: &mut Vec<[f32; 3]>| -> u32 {
            *mid.entry((a.min(b), a.max(b))).or_insert_with(|| {
                let (p, q) = (v[a as usize], v[b as usize]);
                v.push(unit([(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0, (p[2] + q[2]) / 2.0]));
                (v.len() - 1) as u32
            })
        };
        for [a, b, c] in f {
            let ab = midpoint(a, b, &mut v);
            let bc = midpoint(b, c, &mut v);
            let ca = midpoint(c, a, &mut v);
            next.extend([[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]);
        }
        f = next;
    }
    let v = v.into_iter().map(|p| [0, 1, 2].map(|k| centre[k] + radius * p[k])).collect();
    Mesh::new(v, f).unwrap()
}

/// The same mesh moved by `offset` (mm).
pub fn translated(mesh: &Mesh, offset: [f32; 3]) -> Mesh {
    let v = mesh.vertices().iter().map(|p| [0, 1, 2].map(|k| p[k] + offset[k])).collect();
    Mesh::new(v, mesh.triangles().to_vec()).unwrap()
}

/// A label volume of the given shape `[z, y, x]` and spacing (x, y, z) with voxels set by `f(x, y, z)`.
pub fn labels(shape: [usize; 3], spacing: [f64; 3], f: impl Fn(usize, usize, usize) -> u8) -> LabelVolume {
    let g = Geometry::new(spacing, [-10.0, 5.0, 20.0], Geometry::IDENTITY).unwrap();
    LabelVolume::new(Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| f(x, y, z)), g)
        .unwrap()
}

/// A voxel ball of `radius_mm` around the voxel `centre` (x, y, z), on a grid with `spacing`.
pub fn ball(shape: [usize; 3], spacing: [f64; 3], centre: [f64; 3], radius_mm: f64) -> LabelVolume {
    labels(shape, spacing, |x, y, z| {
        let d2 = ((x as f64 - centre[0]) * spacing[0]).powi(2)
            + ((y as f64 - centre[1]) * spacing[1]).powi(2)
            + ((z as f64 - centre[2]) * spacing[2]).powi(2);
        u8::from(d2 <= radius_mm * radius_mm)
    })
}

/// Path of a file in the shared CThead data set.
pub fn cthead(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead").join(name)
}
