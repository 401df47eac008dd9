//! Volume-preserving smoothing: Taubin's λ|μ filter, which removes the voxel staircase of a
//! marching-cubes surface without the shrinkage of plain Laplacian smoothing (which thins bone).
use rayon::prelude::*;

use crate::{Error, Mesh, Result};

/// Parameters of [`smooth_taubin`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothOptions {
    /// Number of λ|μ pairs of steps (each pair is one shrink and one inflate).
    pub iterations: usize,
    /// Shrinking step, in (0, 1).
    pub lambda: f64,
    /// Inflating step, negative with |μ| > λ (pass-band `1/λ + 1/μ`, about 0.1 for the defaults).
    pub mu: f64,
    /// After smoothing, move every vertex along its normal by the one offset that restores the
    /// enclosed volume exactly (closed meshes only; ignored for open ones).
    pub preserve_volume: bool,
}

impl Default for SmoothOptions {
    /// 10 iterations of λ = 0.5, μ = −0.53, with the volume restored.
    fn default() -> Self {
        SmoothOptions { iterations: 10, lambda: 0.5, mu: -0.53, preserve_volume: true }
    }
}

/// Vertex neighbourhoods (compressed rows): `neighbours[start[v]..start[v + 1]]`.
pub(crate) struct Adjacency {
    pub(crate) start: Vec<u32>,
    pub(crate) neighbours: Vec<u32>,
    /// Vertices on an open border (an edge used by one triangle): they stay fixed.
    pub(crate) boundary: Vec<bool>,
}

pub(crate) fn adjacency(mesh: &Mesh) -> Adjacency {
    let n = mesh.vertices().len();
    let mut edges: Vec<(u32, u32)> = mesh
        .triangles()
        .iter()
        .flat_map(|t| [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])])
        .filter(|(a, b)| a != b)
        .map(|(a, b)| if a < b { (a, b) } else { (b, a) })
        .collect();
    edges.par_sort_unstable();
    let mut boundary = vec![false; n];
    let mut unique = Vec::with_capacity(edges.len() / 2);
    let mut i = 0;
    while i < edges.len() {
        let mut j = i + 1;
        while j < edges.len() && edges[j] == edges[i] {
            j += 1;
        }
        if j - i == 1 {
            boundary[edges[i].0 as usize] = true;
            boundary[edges[i].1 as usize] = true;
        }
        unique.push(edges[i]);
        i = j;
    }
    let mut count = vec![0u32; n + 1];
    for &(a, b) in &unique {
        count[a as usize + 1] += 1;
        count[b as usize + 1] += 1;
    }
    for v in 0..n {
        count[v + 1] += count[v];
    }
    let mut fill = count.clone();
    let mut neighbours = vec![0u32; unique.len() * 2];
    for &(a, b) in &unique {
        neighbours[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
        neighbours[fill[b as usize] as usize] = a;
        fill[b as usize] += 1;
    }
    Adjacency { start: count, neighbours, boundary }
}

/// Taubin λ|μ smoothing with uniform weights (Taubin 1995): alternately moves each vertex a fraction
/// λ toward the mean of its neighbours and a fraction |μ| away from it, which low-pass filters the
/// surface without shrinking it. Border vertices of open meshes stay fixed. See [`SmoothOptions`].
pub fn smooth_taubin(mesh: &Mesh, options: &SmoothOptions) -> Result<Mesh> {
    let SmoothOptions { iterations, lambda, mu, preserve_volume } = *options;
    if !(lambda > 0.0 && lambda < 1.0 && mu < 0.0 && -mu >= lambda && mu > -1.0) {
        return Err(Error::InvalidArgument {
            what: format!("Taubin steps λ = {lambda}, μ = {mu}: need 0 < λ < 1 and −1 < μ ≤ −λ"),
        });
    }
    let adj = adjacency(mesh);
    let mut pos: Vec<[f64; 3]> = mesh.vertices().iter().map(|p| p.map(|c| c as f64)).collect();
    let mut next = pos.clone();
    for _ in 0..iterations {
        for factor in [lambda, mu] {
            next.par_iter_mut().enumerate().for_each(|(v, out)| {
                let (a, b) = (adj.start[v] as usize, adj.start[v + 1] as usize);
                if b == a || adj.boundary[v] {
                    *out = pos[v];
                    return;
                }
                let mut mean = [0.0; 3];
                for &u in &adj.neighbours[a..b] {
                    for k in 0..3 {
                        mean[k] += pos[u as usize][k];
                    }
                }
                let n = (b - a) as f64;
                *out = [0, 1, 2].map(|k| pos[v][k] + factor * (mean[k] / n - pos[v][k]));
            });
            std::mem::swap(&mut pos, &mut next);
        }
    }
    let mut smoothed = Mesh::from_parts_unchecked(
        pos.iter().map(|p| p.map(|c| c as f32)).collect(),
        mesh.triangles().to_vec(),
    );
    if preserve_volume && iterations > 0 && mesh.check().is_closed() {
        let (v0, v1, area) = (mesh.enclosed_volume(), smoothed.enclosed_volume(), smoothed.area());
        if area > 0.0 && v1.is_finite() {
            let offset = (v0 - v1) / area;
            let normals = smoothed.vertex_normals();
            let (vertices, triangles) = smoothed.into_parts();
            let vertices = vertices
                .iter()
                .zip(&normals)
                .map(|(p, n)| [0, 1, 2].map(|k| (p[k] as f64 + offset * n[k] as f64) as f32))
                .collect();
            smoothed = Mesh::from_parts_unchecked(vertices, triangles);
        }
    }
    Ok(smoothed)
}
