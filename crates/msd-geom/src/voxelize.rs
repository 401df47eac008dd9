//! Mesh → label: which voxel centres of a grid lie inside a closed surface, as 3D Slicer's
//! model-to-labelmap does, but robust to meshes with small holes or flipped patches.
//!
//! How inside is decided is documented on [`voxelize()`].
use std::sync::atomic::{AtomicU8, Ordering};

use msd_io::{Geometry, LabelVolume, Volume};
use ndarray::Array3;
use rayon::prelude::*;

use crate::{Error, Mesh, Result};

/// Sub-voxel offsets of the rays from the voxel centres, per axis (chosen unlike any simple fraction).
const RAY_OFFSET: [f64; 3] = [1.618_034e-4, 2.718_282e-4, 3.141_593e-4];

/// Label volume (1 inside, 0 outside) on the grid `geometry` × `shape_zyx`: a voxel is inside when its
/// centre is inside the mesh, as 3D Slicer's model-to-labelmap does, but robust to meshes with small
/// holes or flipped patches.
///
/// The mesh should be in the same LPS millimetres as the geometry. Fails when the shape has an empty
/// dimension or is too large to address. [`mesh_to_labels`] does the same onto a volume's grid and
/// refuses a mesh that covers none of it.
///
/// # How inside is decided
///
/// Three families of rays run through the voxel centres, one along each grid axis. Along every ray the
/// signed crossings with the surface (+1 where it leaves a region the surface encloses, −1 where it
/// enters, from the triangle's winding) are summed into a winding number; a voxel centre is inside for
/// that family when its winding number is non-zero. A voxel is inside when at least two of the three
/// families say so. For a closed mesh the three always agree; a hole or a flipped patch only corrupts
/// the rays that pass through it, which the other two directions out-vote, and nested or overlapping
/// shells are handled by the winding number (a parity count would carve them out).
///
/// Rays are offset from the voxel centres by a few 10⁻⁴ voxel so they do not hit vertices and edges of
/// meshes made on the same grid (marching-cubes vertices sit at integer and half-integer indices).
/// Triangles are scanned in parallel and each ray is filled in parallel.
pub fn voxelize(mesh: &Mesh, geometry: &Geometry, shape_zyx: [usize; 3]) -> Result<LabelVolume> {
    let [nz, ny, nx] = shape_zyx;
    let len =
        nz.checked_mul(ny).and_then(|v| v.checked_mul(nx)).filter(|&n| n > 0 && n < isize::MAX as usize / 2);
    let Some(len) = len else {
        return Err(Error::InvalidArgument { what: format!("voxel grid shape (z, y, x) = {shape_zyx:?}") });
    };
    // Rays are numbered with 32 bits within each family.
    if [nx * ny, ny * nz, nz * nx].iter().any(|&rays| rays > u32::MAX as usize) {
        return Err(Error::InvalidArgument {
            what: format!("voxel grid shape (z, y, x) = {shape_zyx:?} has more than 2³² rays along an axis"),
        });
    }
    // Mesh vertices in continuous voxel indices (x, y, z).
    let points: Vec<[f64; 3]> = mesh
        .vertices()
        .par_iter()
        .map(|p| geometry.world_to_index([p[0] as f64, p[1] as f64, p[2] as f64]))
        .collect();
    let dims = [nx, ny, nz];
    let strides = [1usize, nx, nx * ny];
    let votes: Vec<AtomicU8> = (0..len).into_par_iter().map(|_| AtomicU8::new(0)).collect();
    for axis in 0..3 {
        cast_rays(mesh, &points, axis, dims, strides, &votes);
    }
    let data: Vec<u8> = votes.into_par_iter().map(|v| (v.into_inner() >= 2) as u8).collect();
    let array = Array3::from_shape_vec((nz, ny, nx), data)
        .map_err(|e| Error::InvalidArgument { what: format!("voxel grid shape {shape_zyx:?}: {e}") })?;
    Ok(LabelVolume::new(array, *geometry)?)
}

/// The label volume of a closed mesh on the grid of `like` (1 inside, 0 outside): [`voxelize()`]
/// onto `like`'s geometry and shape, for a gold-standard mesh (LPS mm) over the CT it was made from.
///
/// # Errors
/// [`Error::MeshOutsideGrid`] when the mesh covers no voxel centre of the grid: it is in another
/// frame, or of another scan (align it first with [`align_to_volume`](crate::align_to_volume));
/// otherwise as [`voxelize()`].
pub fn mesh_to_labels<T>(mesh: &Mesh, like: &Volume<T>) -> Result<LabelVolume> {
    let labels = voxelize(mesh, like.geometry(), like.shape())?;
    if !labels.data().iter().any(|&v| v != 0) {
        return Err(Error::MeshOutsideGrid { shape: like.shape() });
    }
    Ok(labels)
}

/// One ray crossing: which ray, where along it (voxel index), and the winding change.
#[derive(Clone, Copy)]
struct Hit {
    ray: u32,
    at: f32,
    sign: i8,
}

fn cast_rays(
    mesh: &Mesh,
    points: &[[f64; 3]],
    axis: usize,
    dims: [usize; 3],
    strides: [usize; 3],
    votes: &[AtomicU8],
) {
    let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
    let (nu, nv, nd) = (dims[u], dims[v], dims[axis]);
    let (ou, ov) = (RAY_OFFSET[u], RAY_OFFSET[v]);
    let mut hits: Vec<Hit> = mesh
        .triangles()
        .par_iter()
        .flat_map_iter(|t| {
            let p = t.map(|i| points[i as usize]);
            let q = p.map(|p| [p[u], p[v]]);
            // Twice the signed projected area: its sign says whether the triangle faces +axis.
            let area = (q[1][0] - q[0][0]) * (q[2][1] - q[0][1]) - (q[2][0] - q[0][0]) * (q[1][1] - q[0][1]);
            let mut out = Vec::new();
            if area == 0.0 || !area.is_finite() {
                return out.into_iter();
            }
            let lo = |k: usize| q.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
            let hi = |k: usize| q.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max);
            let range = |lo: f64, hi: f64, off: f64, n: usize| {
                let a = (lo - off).ceil().max(0.0);
                let b = (hi - off).floor().min(n as f64 - 1.0);
                if a > b { 0..0 } else { a as usize..b as usize + 1 }
            };
            // Crossing sign: a triangle facing +axis is where the ray leaves the enclosed region.
            let sign: i8 = if area > 0.0 { -1 } else { 1 };
            for iv in range(lo(1), hi(1), ov, nv) {
                for iu in range(lo(0), hi(0), ou, nu) {
                    let (x, y) = (iu as f64 + ou, iv as f64 + ov);
                    let edge =
                        |a: [f64; 2], b: [f64; 2]| (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
                    let w = [edge(q[1], q[2]), edge(q[2], q[0]), edge(q[0], q[1])];
                    let inside =
                        if area > 0.0 { w.iter().all(|&e| e > 0.0) } else { w.iter().all(|&e| e < 0.0) };
                    if inside {
                        let at = (w[0] * p[0][axis] + w[1] * p[1][axis] + w[2] * p[2][axis]) / area;
                        out.push(Hit { ray: (iv * nu + iu) as u32, at: at as f32, sign: -sign });
                    }
                }
            }
            out.into_iter()
        })
        .collect();
    hits.par_sort_unstable_by(|a, b| a.ray.cmp(&b.ray).then(a.at.total_cmp(&b.at)));
    // Split into per-ray groups and fill each ray in parallel.
    let mut bounds = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let mut j = i + 1;
        while j < hits.len() && hits[j].ray == hits[i].ray {
            j += 1;
        }
        bounds.push((i, j));
        i = j;
    }
    bounds.par_iter().for_each(|&(i, j)| {
        let ray = hits[i].ray as usize;
        let (iu, iv) = (ray % nu, ray / nu);
        let base = iu * strides[u] + iv * strides[v];
        let mut winding = 0i32;
        for k in i..j {
            winding += hits[k].sign as i32;
            if winding != 0 && k + 1 < j {
                // Voxel centres strictly after this crossing and up to the next one.
                let from = (hits[k].at as f64).floor().max(-1.0) as i64 + 1;
                let to = ((hits[k + 1].at as f64).ceil() as i64).min(nd as i64);
                for d in from.max(0)..to {
                    if (d as f64) > hits[k].at as f64 && (d as f64) < hits[k + 1].at as f64 {
                        votes[base + d as usize * strides[axis]].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_surface;

    #[test]
    fn cube_mesh_fills_its_voxels() {
        // A 2×2×2 mm box from index 0.5 to 4.5: centres 1..=4 along each axis are inside.
        let g = Geometry::new([1.0; 3], [0.0; 3], Geometry::IDENTITY).unwrap();
        let lo = 0.5f32;
        let hi = 4.5f32;
        let v = (0..8)
            .map(|i| {
                [
                    if i & 1 == 1 { hi } else { lo },
                    if i & 2 == 2 { hi } else { lo },
                    if i & 4 == 4 { hi } else { lo },
                ]
            })
            .collect();
        let t = vec![
            [0, 2, 1],
            [1, 2, 3],
            [4, 5, 6],
            [5, 7, 6],
            [0, 1, 4],
            [1, 5, 4],
            [2, 6, 3],
            [3, 6, 7],
            [0, 4, 2],
            [2, 4, 6],
            [1, 3, 5],
            [3, 7, 5],
        ];
        let m = Mesh::new(v, t).unwrap();
        for mesh in [m.clone(), m.flipped()] {
            let l = voxelize(&mesh, &g, [6, 6, 6]).unwrap();
            assert_eq!(l.data().iter().filter(|&&v| v == 1).count(), 64);
            assert_eq!(l.data()[[1, 1, 1]], 1);
            assert_eq!(l.data()[[0, 1, 1]], 0);
        }
        // A missing face is out-voted by the two other ray directions.
        let open = m.filter_triangles(|t| t > 1);
        let l = voxelize(&open, &g, [6, 6, 6]).unwrap();
        assert_eq!(l.data().iter().filter(|&&v| v == 1).count(), 64);
    }

    #[test]
    fn label_round_trip_is_exact_on_an_oblique_grid() {
        let (s, c) = (0.3f64.sin(), 0.3f64.cos());
        let dir = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]];
        let g = Geometry::new([0.7, 1.1, 2.5], [10.0, -4.0, 3.0], dir).unwrap();
        let mut state = 99u64;
        let mut a = Array3::<u8>::zeros((9, 10, 11));
        for v in a.iter_mut() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *v = ((state >> 61) < 3) as u8;
        }
        let vol = LabelVolume::new(a.clone(), g).unwrap();
        let m = label_surface(&vol, 1).unwrap();
        let back = voxelize(&m, &g, vol.shape()).unwrap();
        assert_eq!(back.data(), &a);
    }

    #[test]
    fn mesh_to_labels_fills_the_grid_of_a_volume_and_refuses_a_mesh_beside_it() {
        let g = Geometry::new([1.0; 3], [0.0; 3], Geometry::IDENTITY).unwrap();
        let ct = Volume::new(Array3::<f32>::zeros((6, 6, 6)), g).unwrap();
        let mut a = Array3::<u8>::zeros((6, 6, 6));
        a.slice_mut(ndarray::s![1..5, 1..5, 1..5]).fill(1);
        let m = label_surface(&LabelVolume::new(a.clone(), g).unwrap(), 1).unwrap();
        let labels = mesh_to_labels(&m, &ct).unwrap();
        assert_eq!(labels.data(), &a);
        assert_eq!(labels.geometry(), ct.geometry());
        // The same mesh 100 mm away covers no voxel centre: another frame, refused.
        let far = Geometry::new([1.0; 3], [100.0, 0.0, 0.0], Geometry::IDENTITY).unwrap();
        let beside = Volume::new(Array3::<f32>::zeros((6, 6, 6)), far).unwrap();
        match mesh_to_labels(&m, &beside) {
            Err(Error::MeshOutsideGrid { shape }) => assert_eq!(shape, [6, 6, 6]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_shape_is_refused() {
        let g = Geometry::default();
        assert!(voxelize(&Mesh::default(), &g, [0, 3, 3]).is_err());
        assert!(voxelize(&Mesh::default(), &g, [usize::MAX, 3, 3]).is_err());
        assert!(voxelize(&Mesh::default(), &g, [1, 70_000, 70_000]).is_err());
    }
}
