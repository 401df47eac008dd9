//! Decimation to a target face count by quadric edge collapse (Garland & Heckbert 1997), with the
//! deviation from the original surface bounded.
//!
//! The method and what the bound means are documented on [`decimate()`].
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use parry3d::math::Vector;
use parry3d::query::PointQuery;
use parry3d::shape::TriMesh;

use crate::mesh::{cross64, dot};
use crate::{Error, Mesh, Result};

/// Parameters of [`decimate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecimateOptions {
    /// Stop when the mesh has at most this many triangles.
    pub target_triangles: usize,
    /// Refuse collapses that would put a vertex, or the centroid of a changed triangle, further than
    /// this from the original surface (mm). `f64::INFINITY` for no bound (and no distance queries).
    pub max_deviation_mm: f64,
}

/// What [`decimate`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Decimation {
    /// The decimated mesh.
    pub mesh: Mesh,
    /// The largest distance (mm) from the original surface measured for any accepted collapse (0 when
    /// no bound was asked for).
    pub max_deviation_mm: f64,
    /// Whether the target was reached (false: the deviation bound or topology stopped it earlier).
    pub reached_target: bool,
}

type Quadric = [f64; 10];

fn plane_quadric(n: [f64; 3], d: f64) -> Quadric {
    let [a, b, c] = n;
    [a * a, a * b, a * c, a * d, b * b, b * c, b * d, c * c, c * d, d * d]
}

fn add(q: &mut Quadric, r: &Quadric) {
    for k in 0..10 {
        q[k] += r[k];
    }
}

fn eval(q: &Quadric, p: [f64; 3]) -> f64 {
    let [x, y, z] = p;
    q[0] * x * x
        + 2.0 * q[1] * x * y
        + 2.0 * q[2] * x * z
        + 2.0 * q[3] * x
        + q[4] * y * y
        + 2.0 * q[5] * y * z
        + 2.0 * q[6] * y
        + q[7] * z * z
        + 2.0 * q[8] * z
        + q[9]
}

/// The point minimising `q`, or `None` when the quadric is (nearly) singular.
fn minimiser(q: &Quadric, scale: f64) -> Option<[f64; 3]> {
    let m = [[q[0], q[1], q[2]], [q[1], q[4], q[5]], [q[2], q[5], q[7]]];
    let b = [-q[3], -q[6], -q[8]];
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let trace = q[0] + q[4] + q[7];
    if det.is_nan() || det.abs() <= 1e-9 * trace.powi(3).max(f64::MIN_POSITIVE) {
        return None;
    }
    let solve = |col: usize| {
        let mut mm = m;
        for r in 0..3 {
            mm[r][col] = b[r];
        }
        (mm[0][0] * (mm[1][1] * mm[2][2] - mm[1][2] * mm[2][1])
            - mm[0][1] * (mm[1][0] * mm[2][2] - mm[1][2] * mm[2][0])
            + mm[0][2] * (mm[1][0] * mm[2][1] - mm[1][1] * mm[2][0]))
            / det
    };
    let p = [solve(0), solve(1), solve(2)];
    p.iter().all(|c| c.is_finite() && c.abs() < scale).then_some(p)
}

#[derive(PartialEq)]
struct Candidate {
    cost: f64,
    a: u32,
    b: u32,
    stamp: (u32, u32),
    target: [f64; 3],
}

impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on cost.
        other.cost.total_cmp(&self.cost).then_with(|| (other.a, other.b).cmp(&(self.a, self.b)))
    }
}

struct State {
    pos: Vec<[f64; 3]>,
    quadric: Vec<Quadric>,
    tris: Vec<[u32; 3]>,
    alive: Vec<bool>,
    vertex_tris: Vec<Vec<u32>>,
    stamp: Vec<u32>,
    fixed: Vec<bool>,
    scale: f64,
    /// Per-vertex marks for the link condition, and the last mark used.
    mark: Vec<u64>,
    mark_counter: u64,
}

impl State {
    fn neighbours(&self, v: u32) -> Vec<u32> {
        let mut n: Vec<u32> = self.vertex_tris[v as usize]
            .iter()
            .flat_map(|&t| self.tris[t as usize])
            .filter(|&u| u != v)
            .collect();
        n.sort_unstable();
        n.dedup();
        n
    }

    fn candidate(&self, a: u32, b: u32) -> Candidate {
        let mut q = self.quadric[a as usize];
        add(&mut q, &self.quadric[b as usize]);
        let (pa, pb) = (self.pos[a as usize], self.pos[b as usize]);
        let mid = [0, 1, 2].map(|k| 0.5 * (pa[k] + pb[k]));
        let target = minimiser(&q, self.scale).unwrap_or_else(|| {
            *[pa, pb, mid].iter().min_by(|x, y| eval(&q, **x).total_cmp(&eval(&q, **y))).unwrap_or(&mid)
        });
        let cost = eval(&q, target).max(0.0);
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        Candidate { cost, a: lo, b: hi, stamp: (self.stamp[lo as usize], self.stamp[hi as usize]), target }
    }

    /// The largest distance from `original` of `target` and of the centroids of the triangles that
    /// collapsing `b` into `a` changes, or `None` as soon as one is further than `bound` (the BVH
    /// search is pruned at the bound, which keeps the common case fast).
    fn deviation(&self, original: &TriMesh, a: u32, b: u32, target: [f64; 3], bound: f64) -> Option<f64> {
        let dist = |p: [f64; 3]| {
            let q = Vector::new(p[0] as f32, p[1] as f32, p[2] as f32);
            original
                .project_local_point_with_max_dist(q, false, bound as f32)
                .map(|proj| (proj.point - q).length() as f64)
        };
        let mut worst = dist(target)?;
        for v in [a, b] {
            for &t in &self.vertex_tris[v as usize] {
                let tri = self.tris[t as usize];
                if tri.contains(&a) && tri.contains(&b) {
                    continue;
                }
                let p = tri.map(|i| if i == a || i == b { target } else { self.pos[i as usize] });
                worst = worst.max(dist([0, 1, 2].map(|k| (p[0][k] + p[1][k] + p[2][k]) / 3.0))?);
            }
        }
        (worst <= bound).then_some(worst)
    }

    /// Whether collapsing `b` into `a` at `target` keeps the surface manifold and unflipped.
    fn can_collapse(&mut self, a: u32, b: u32, target: [f64; 3]) -> bool {
        if self.fixed[a as usize] || self.fixed[b as usize] {
            return false;
        }
        let shared =
            self.vertex_tris[a as usize].iter().filter(|t| self.tris[**t as usize].contains(&b)).count();
        if shared != 2 {
            return false;
        }
        // Link condition: the common neighbours of a and b are exactly the two opposite vertices.
        // Neighbours of a get mark m, common ones m + 1 (so each is counted once); no allocation.
        self.mark_counter += 2;
        let m = self.mark_counter;
        for &t in &self.vertex_tris[a as usize] {
            for u in self.tris[t as usize] {
                if u != a {
                    self.mark[u as usize] = m;
                }
            }
        }
        let mut common = 0;
        for &t in &self.vertex_tris[b as usize] {
            for u in self.tris[t as usize] {
                if u != b && self.mark[u as usize] == m {
                    self.mark[u as usize] = m + 1;
                    common += 1;
                }
            }
        }
        if common != 2 {
            return false;
        }
        for v in [a, b] {
            for &t in &self.vertex_tris[v as usize] {
                let tri = self.tris[t as usize];
                if tri.contains(&a) && tri.contains(&b) {
                    continue;
                }
                let old = tri.map(|i| self.pos[i as usize]);
                let new = tri.map(|i| if i == a || i == b { target } else { self.pos[i as usize] });
                let n0 = cross64(sub(old[1], old[0]), sub(old[2], old[0]));
                let n1 = cross64(sub(new[1], new[0]), sub(new[2], new[0]));
                let (l0, l1) = (dot(n0, n0).sqrt(), dot(n1, n1).sqrt());
                if l1 <= 1e-12 * self.scale * self.scale || dot(n0, n1) < 0.2 * l0 * l1 {
                    return false;
                }
            }
        }
        true
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Decimates `mesh` toward `options.target_triangles` by quadric edge collapse, keeping every new
/// vertex and changed-triangle centroid within `options.max_deviation_mm` of the original surface.
/// Open-border vertices are kept.
///
/// # Method
///
/// Every vertex carries the sum of the squared-distance quadrics of the original triangle planes
/// around it. Edges collapse cheapest first to the point that minimises the merged quadric. A
/// collapse is refused when it would make the surface non-manifold (link condition), flip or nearly
/// flip a triangle, or touch an open border, and, when a deviation bound is given, when the new vertex
/// or the centroid of any triangle it changes lies further than the bound from the original surface.
/// That distance is measured exactly against the original triangles with `parry3d`'s BVH point
/// projection, so the bound is a measured one, not the (very conservative) quadric estimate. A closed,
/// edge-manifold input stays closed and edge-manifold.
pub fn decimate(mesh: &Mesh, options: &DecimateOptions) -> Result<Decimation> {
    if options.max_deviation_mm.is_nan() || options.max_deviation_mm < 0.0 {
        return Err(Error::InvalidArgument {
            what: format!("maximum deviation {} mm must be non-negative", options.max_deviation_mm),
        });
    }
    let n = mesh.vertices().len();
    let pos: Vec<[f64; 3]> = mesh.vertices().iter().map(|p| p.map(|c| c as f64)).collect();
    let scale = mesh
        .bounds()
        .map(|b| {
            (0..3)
                .map(|k| (b.max[k] - b.min[k]) as f64 + b.max[k].abs().max(b.min[k].abs()) as f64)
                .sum::<f64>()
        })
        .unwrap_or(1.0)
        .max(1.0)
        * 4.0;
    let mut quadric = vec![[0.0; 10]; n];
    let mut vertex_tris = vec![Vec::new(); n];
    let tris: Vec<[u32; 3]> = mesh.triangles().to_vec();
    let mut alive = vec![true; tris.len()];
    for (t, tri) in tris.iter().enumerate() {
        if tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2] {
            alive[t] = false;
            continue;
        }
        let p = tri.map(|i| pos[i as usize]);
        let nrm = cross64(sub(p[1], p[0]), sub(p[2], p[0]));
        let l = dot(nrm, nrm).sqrt();
        for &v in tri {
            vertex_tris[v as usize].push(t as u32);
        }
        if l > 0.0 {
            let u = nrm.map(|c| c / l);
            let q = plane_quadric(u, -dot(u, p[0]));
            for &v in tri {
                add(&mut quadric[v as usize], &q);
            }
        }
    }
    // Border vertices (an edge used by one triangle) stay where they are.
    let adj = crate::smooth::adjacency(mesh);
    let mut state = State {
        pos,
        quadric,
        tris,
        alive,
        vertex_tris,
        stamp: vec![0; n],
        fixed: adj.boundary,
        scale,
        mark: vec![0; n],
        mark_counter: 0,
    };
    let mut heap = BinaryHeap::new();
    for v in 0..n {
        let (s, e) = (adj.start[v] as usize, adj.start[v + 1] as usize);
        for &u in &adj.neighbours[s..e] {
            if (v as u32) < u {
                heap.push(state.candidate(v as u32, u));
            }
        }
    }
    let original = if options.max_deviation_mm.is_finite() {
        let v = mesh.vertices().iter().map(|p| Vector::new(p[0], p[1], p[2])).collect();
        let t = mesh
            .triangles()
            .iter()
            .copied()
            .filter(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2])
            .collect();
        Some(TriMesh::new(v, t).map_err(|e| Error::InvalidArgument {
            what: format!("mesh unusable for distance queries: {e:?}"),
        })?)
    } else {
        None
    };
    let mut live = state.alive.iter().filter(|&&a| a).count();
    let mut worst = 0.0f64;
    while live > options.target_triangles {
        let Some(c) = heap.pop() else { break };
        if c.stamp != (state.stamp[c.a as usize], state.stamp[c.b as usize]) {
            continue;
        }
        let (a, b) = (c.a, c.b);
        if !state.can_collapse(a, b, c.target) {
            continue;
        }
        if let Some(original) = &original {
            match state.deviation(original, a, b, c.target, options.max_deviation_mm) {
                Some(d) => worst = worst.max(d),
                None => continue,
            }
        }
        // Collapse b into a.
        let b_tris = std::mem::take(&mut state.vertex_tris[b as usize]);
        for &t in &b_tris {
            let tri = &mut state.tris[t as usize];
            if tri.contains(&a) {
                state.alive[t as usize] = false;
                live -= 1;
                for &v in tri.iter() {
                    state.vertex_tris[v as usize].retain(|&x| x != t);
                }
            } else {
                for v in tri.iter_mut() {
                    if *v == b {
                        *v = a;
                    }
                }
                state.vertex_tris[a as usize].push(t);
            }
        }
        state.pos[a as usize] = c.target;
        let qb = state.quadric[b as usize];
        add(&mut state.quadric[a as usize], &qb);
        state.stamp[a as usize] += 1;
        state.stamp[b as usize] += 1;
        for u in state.neighbours(a) {
            heap.push(state.candidate(a, u));
        }
    }
    let reached_target = live <= options.target_triangles;
    let vertices: Vec<[f32; 3]> = state.pos.iter().map(|p| p.map(|c| c as f32)).collect();
    let triangles: Vec<[u32; 3]> =
        state.tris.iter().zip(&state.alive).filter(|(_, a)| **a).map(|(t, _)| *t).collect();
    let mesh = Mesh::from_parts_unchecked(vertices, triangles).compacted();
    Ok(Decimation { mesh, max_deviation_mm: worst, reached_target })
}
