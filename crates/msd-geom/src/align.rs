//! Rigid alignment of a mesh to another mesh or to a CT: point-to-plane ICP (Chen & Medioni 1992)
//! from a coarse start by centroids and principal axes, because gold-standard models exported from
//! design software are often in another frame than the scan.
//!
//! How closest points are found is documented on [`align_icp`].
use msd_io::Volume;
use parry3d::math::Vector;
use parry3d::query::PointQueryWithLocation;
use parry3d::shape::TriMesh;
use rayon::prelude::*;

use crate::mesh::{cross64, dot};
use crate::{Error, Mesh, Result, marching_cubes};

/// Parameters of [`align_icp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignOptions {
    /// Most ICP iterations after the coarse start.
    pub max_iterations: usize,
    /// Moving-mesh vertices used per iteration (an even subsample when the mesh has more).
    pub sample_points: usize,
    /// Stop when an iteration moves the samples by less than this (mm, RMS).
    pub tolerance_mm: f64,
    /// Try centroid + principal-axes starts (four axis sign choices) besides the centroid-only start,
    /// and keep the best; turn off when the meshes are already roughly aligned.
    pub coarse_start: bool,
    /// Ignore correspondences further apart than this (mm); `f64::INFINITY` for no limit. Pairs
    /// beyond 3 × the median distance are ignored in any case (outliers, partial overlap).
    pub max_correspondence_mm: f64,
}

impl Default for AlignOptions {
    /// 100 iterations, 20 000 samples, 10⁻⁶ mm tolerance, coarse start on, no distance limit.
    fn default() -> Self {
        AlignOptions {
            max_iterations: 100,
            sample_points: 20_000,
            tolerance_mm: 1e-6,
            coarse_start: true,
            max_correspondence_mm: f64::INFINITY,
        }
    }
}

/// The result of a rigid alignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// Rigid 4×4 transform (row-major, column vectors, mm) taking the moving mesh onto the fixed one:
    /// apply it with [`Mesh::transformed`].
    pub transform: [[f64; 4]; 4],
    /// RMS distance (mm) from every transformed moving vertex to the fixed surface.
    pub rms_mm: f64,
    /// ICP iterations run after the coarse start.
    pub iterations: usize,
    /// Whether the last iteration moved the samples by less than the tolerance.
    pub converged: bool,
}

type Mat4 = [[f64; 4]; 4];

const IDENTITY: Mat4 =
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];

fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut m = [[0.0; 4]; 4];
    for r in 0..4 {
        for c in 0..4 {
            m[r][c] = (0..4).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    m
}

fn apply(m: &Mat4, p: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3])
}

fn rigid(rot: [[f64; 3]; 3], t: [f64; 3]) -> Mat4 {
    let mut m = IDENTITY;
    for r in 0..3 {
        m[r][..3].copy_from_slice(&rot[r]);
        m[r][3] = t[r];
    }
    m
}

/// Rotation by the vector `w` (axis × angle), Rodrigues' formula.
fn rotation(w: [f64; 3]) -> [[f64; 3]; 3] {
    let angle = dot(w, w).sqrt();
    if angle < 1e-15 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    let k = w.map(|c| c / angle);
    let (s, c) = angle.sin_cos();
    let mut r = [[0.0; 3]; 3];
    let kx = [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]];
    for i in 0..3 {
        for j in 0..3 {
            let id = if i == j { 1.0 } else { 0.0 };
            r[i][j] = id * c + s * kx[i][j] + (1.0 - c) * k[i] * k[j];
        }
    }
    r
}

/// Eigenvectors (columns, by decreasing eigenvalue) of a symmetric 3×3 matrix, by Jacobi rotations.
fn principal_axes(mut a: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..64 {
        let off = a[0][1].abs() + a[0][2].abs() + a[1][2].abs();
        if off < 1e-15 * (a[0][0].abs() + a[1][1].abs() + a[2][2].abs()).max(1e-300) {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-300 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            let mut j = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
            j[p][p] = c;
            j[q][q] = c;
            j[p][q] = s;
            j[q][p] = -s;
            // a ← Jᵀ a J, v ← v J
            let mut aj = [[0.0; 3]; 3];
            for r in 0..3 {
                for cc in 0..3 {
                    aj[r][cc] = (0..3).map(|k| a[r][k] * j[k][cc]).sum();
                }
            }
            for r in 0..3 {
                for cc in 0..3 {
                    a[r][cc] = (0..3).map(|k| j[k][r] * aj[k][cc]).sum();
                }
            }
            let mut vj = [[0.0; 3]; 3];
            for r in 0..3 {
                for cc in 0..3 {
                    vj[r][cc] = (0..3).map(|k| v[r][k] * j[k][cc]).sum();
                }
            }
            v = vj;
        }
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|&x, &y| a[y][y].total_cmp(&a[x][x]));
    let mut out = [[0.0; 3]; 3];
    for (col, &src) in order.iter().enumerate() {
        for r in 0..3 {
            out[r][col] = v[r][src];
        }
    }
    out
}

/// Area-weighted centroid and covariance of a surface.
fn moments(mesh: &Mesh) -> Result<([f64; 3], [[f64; 3]; 3])> {
    let c = mesh
        .surface_centroid()
        .ok_or_else(|| Error::InvalidArgument { what: "cannot align a mesh of zero area".into() })?;
    let mut cov = [[0.0; 3]; 3];
    let mut total = 0.0;
    for t in 0..mesh.triangles().len() {
        let p = mesh.triangle_points(t).map(|q| [0, 1, 2].map(|k| q[k] as f64 - c[k]));
        let n = cross64(sub(p[1], p[0]), sub(p[2], p[0]));
        let area = 0.5 * dot(n, n).sqrt();
        // Exact second moment of a triangle: (Σ pᵢpᵢᵀ + (Σ pᵢ)(Σ pᵢ)ᵀ) / 12 × area.
        let s = [0, 1, 2].map(|k| p[0][k] + p[1][k] + p[2][k]);
        for r in 0..3 {
            for cc in 0..3 {
                let sq: f64 = p.iter().map(|q| q[r] * q[cc]).sum();
                cov[r][cc] += area * (sq + s[r] * s[cc]) / 12.0;
            }
        }
        total += area;
    }
    for row in cov.iter_mut() {
        for v in row.iter_mut() {
            *v /= total;
        }
    }
    Ok((c, cov))
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The fixed surface prepared for closest-point queries.
struct Target {
    shape: TriMesh,
    normals: Vec<[f64; 3]>,
}

impl Target {
    fn new(mesh: &Mesh) -> Result<Target> {
        let vertices = mesh.vertices().iter().map(|p| Vector::new(p[0], p[1], p[2])).collect();
        let shape = TriMesh::new(vertices, mesh.triangles().to_vec()).map_err(|e| {
            Error::InvalidArgument { what: format!("fixed mesh unusable for queries: {e:?}") }
        })?;
        let normals = mesh.triangle_normals().iter().map(|n| n.map(|c| c as f64)).collect();
        Ok(Target { shape, normals })
    }

    /// Closest point on the surface and the normal of its triangle.
    fn closest(&self, p: [f64; 3]) -> ([f64; 3], [f64; 3]) {
        let (proj, (tri, _)) = self
            .shape
            .project_local_point_and_get_location(Vector::new(p[0] as f32, p[1] as f32, p[2] as f32), false);
        let q = [proj.point.x as f64, proj.point.y as f64, proj.point.z as f64];
        (q, self.normals.get(tri as usize).copied().unwrap_or([0.0; 3]))
    }
}

/// Runs point-to-plane ICP from `start`; returns the transform, the sample RMS, iterations and
/// whether it converged.
fn icp(
    samples: &[[f64; 3]],
    target: &Target,
    start: Mat4,
    iterations: usize,
    options: &AlignOptions,
) -> (Mat4, f64, usize, bool) {
    let mut m = start;
    let mut rms = f64::INFINITY;
    for it in 0..iterations {
        let pairs: Vec<([f64; 3], [f64; 3], [f64; 3])> = samples
            .par_iter()
            .map(|&p| {
                let q = apply(&m, p);
                let (c, n) = target.closest(q);
                (q, c, n)
            })
            .collect();
        let mut dist: Vec<f64> = pairs.iter().map(|(q, c, _)| dot(sub(*q, *c), sub(*q, *c)).sqrt()).collect();
        rms = (dist.iter().map(|d| d * d).sum::<f64>() / dist.len().max(1) as f64).sqrt();
        let limit = {
            let mid = dist.len() / 2;
            let median = *dist.select_nth_unstable_by(mid, f64::total_cmp).1;
            (3.0 * median).max(1e-3).min(options.max_correspondence_mm)
        };
        let centre = {
            let mut s = [0.0; 3];
            for (q, _, _) in &pairs {
                for k in 0..3 {
                    s[k] += q[k];
                }
            }
            s.map(|v| v / pairs.len().max(1) as f64)
        };
        // Normal equations of Σ ((q − c)·n + (q̃ × n)·ω + n·t)², q̃ = q − centre.
        let mut ata = [[0.0f64; 6]; 6];
        let mut atb = [0.0f64; 6];
        let mut used = 0usize;
        for (q, c, n) in &pairs {
            let d = sub(*q, *c);
            if dot(d, d).sqrt() > limit || dot(*n, *n) == 0.0 {
                continue;
            }
            used += 1;
            let row = {
                let a = cross64(sub(*q, centre), *n);
                [a[0], a[1], a[2], n[0], n[1], n[2]]
            };
            let r = dot(d, *n);
            for i in 0..6 {
                for j in 0..6 {
                    ata[i][j] += row[i] * row[j];
                }
                atb[i] -= row[i] * r;
            }
        }
        if used < 6 {
            return (m, rms, it, false);
        }
        let Some(x) = solve6(ata, atb) else { return (m, rms, it, false) };
        let rot = rotation([x[0], x[1], x[2]]);
        let t = [x[3], x[4], x[5]];
        // q ↦ centre + R (q − centre) + t
        let rc = [0, 1, 2].map(|r| (0..3).map(|k| rot[r][k] * centre[k]).sum::<f64>());
        let step = rigid(rot, [0, 1, 2].map(|k| centre[k] - rc[k] + t[k]));
        m = mul(&step, &m);
        // RMS motion of the samples under this step: bounded by the rotation and translation sizes.
        let spread = (samples
            .iter()
            .map(|p| dot(sub(apply(&m, *p), centre), sub(apply(&m, *p), centre)))
            .sum::<f64>()
            / samples.len() as f64)
            .sqrt();
        let motion = dot(t, t).sqrt() + spread * dot([x[0], x[1], x[2]], [x[0], x[1], x[2]]).sqrt();
        if motion < options.tolerance_mm {
            return (m, rms, it + 1, true);
        }
    }
    (m, rms, iterations, false)
}

/// Solves a 6×6 symmetric positive system by Gaussian elimination with partial pivoting.
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let piv = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for r in col + 1..6 {
            let f = a[r][col] / a[col][col];
            for c in col..6 {
                a[r][c] -= f * a[col][c];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = [0.0; 6];
    for r in (0..6).rev() {
        let s: f64 = (r + 1..6).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Rigidly aligns `moving` to `fixed` by point-to-plane ICP and returns the transform taking
/// `moving` onto `fixed` with the RMS surface distance that remains.
///
/// The start is the translation between the surfaces' centroids; with
/// [`AlignOptions::coarse_start`], also the four rotations that map the moving principal axes onto
/// the fixed ones, each refined briefly, the best kept. Fails for meshes without area.
///
/// Closest points on the fixed surface come from `parry3d`'s triangle-mesh BVH
/// (`PointQueryWithLocation` on `TriMesh`), which answers exact point-to-triangle projections in
/// logarithmic time and is shared read-only across rayon threads.
pub fn align_icp(moving: &Mesh, fixed: &Mesh, options: &AlignOptions) -> Result<Alignment> {
    if options.sample_points < 6 || options.tolerance_mm.is_nan() || options.max_correspondence_mm.is_nan() {
        return Err(Error::InvalidArgument { what: format!("ICP options {options:?}") });
    }
    let target = Target::new(fixed)?;
    let (cm, cov_m) = moments(moving)?;
    let (cf, cov_f) = moments(fixed)?;
    let verts = moving.vertices();
    let stride = verts.len().div_ceil(options.sample_points).max(1);
    let samples: Vec<[f64; 3]> = verts.iter().step_by(stride).map(|p| p.map(|c| c as f64)).collect();
    let start_for = |rot: [[f64; 3]; 3]| {
        let rc = [0, 1, 2].map(|r| (0..3).map(|k| rot[r][k] * cm[k]).sum::<f64>());
        rigid(rot, [0, 1, 2].map(|k| cf[k] - rc[k]))
    };
    let mut starts = vec![start_for([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])];
    if options.coarse_start {
        // Right-handed bases, so every R = E_f · S · E_mᵀ with det S = 1 is a proper rotation.
        let right_handed = |mut e: [[f64; 3]; 3]| {
            let c = cross64([e[0][0], e[1][0], e[2][0]], [e[0][1], e[1][1], e[2][1]]);
            if dot(c, [e[0][2], e[1][2], e[2][2]]) < 0.0 {
                for row in e.iter_mut() {
                    row[2] = -row[2];
                }
            }
            e
        };
        let (em, ef) = (right_handed(principal_axes(cov_m)), right_handed(principal_axes(cov_f)));
        for signs in [[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]] {
            let mut r = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    r[i][j] = (0..3).map(|k| ef[i][k] * signs[k] * em[j][k]).sum();
                }
            }
            starts.push(start_for(r));
        }
        let coarse: Vec<[f64; 3]> = samples.iter().step_by((samples.len() / 1000).max(1)).copied().collect();
        let best = starts
            .iter()
            .map(|s| icp(&coarse, &target, *s, 10, options))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|r| r.0);
        if let Some(b) = best {
            starts = vec![b];
        }
    }
    let (m, _, iterations, converged) = icp(&samples, &target, starts[0], options.max_iterations, options);
    let sq: f64 = verts
        .par_iter()
        .map(|p| {
            let q = apply(&m, p.map(|c| c as f64));
            let (c, _) = target.closest(q);
            dot(sub(q, c), sub(q, c))
        })
        .sum();
    Ok(Alignment { transform: m, rms_mm: (sq / verts.len().max(1) as f64).sqrt(), iterations, converged })
}

/// Aligns `moving` to a CT's surface at `level` (e.g. 300 HU for bone): ICP against the largest
/// component of [`marching_cubes`] of the CT, which drops the table and small fragments.
pub fn align_to_volume(
    moving: &Mesh,
    ct: &Volume<f32>,
    level: f32,
    options: &AlignOptions,
) -> Result<Alignment> {
    let surface = marching_cubes(ct, level)?.keep_largest_components(1);
    if surface.is_empty() {
        return Err(Error::InvalidArgument { what: format!("the volume has no surface at level {level}") });
    }
    align_icp(moving, &surface, options)
}
