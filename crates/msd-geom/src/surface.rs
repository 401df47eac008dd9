//! Marching cubes: the surface of a label (voxels equal to a class) or of a scalar volume at a level,
//! in LPS millimetres, closed at the volume border, watertight, edge-manifold and wound outward.
//!
//! The method (case table, ambiguous faces, borders, parallel slabs) is documented on
//! [`marching_cubes`].
use std::collections::HashMap;
use std::sync::OnceLock;

use msd_io::{Geometry, LabelVolume, Volume};
use ndarray::{ArrayView3, Axis};
use rayon::prelude::*;

use crate::{Error, Mesh, Result};

/// Corner `i` of a cube sits at `(i & 1, (i >> 1) & 1, (i >> 2) & 1)` (x, y, z).
const fn corner(i: usize) -> [usize; 3] {
    [i & 1, (i >> 1) & 1, (i >> 2) & 1]
}

/// Edge `e` runs along axis `e / 4` from its base corner `EDGE_BASE[e]` to `EDGE_BASE[e] | 1 << axis`.
const EDGE_BASE: [usize; 12] = {
    let mut b = [0usize; 12];
    let mut axis = 0;
    while axis < 3 {
        let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
        let mut k = 0;
        while k < 4 {
            b[axis * 4 + k] = ((k & 1) << u) | (((k >> 1) & 1) << v);
            k += 1;
        }
        axis += 1;
    }
    b
};

fn edge_between(a: usize, b: usize) -> usize {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let axis = (hi ^ lo).trailing_zeros() as usize;
    (0..4).map(|k| axis * 4 + k).find(|&e| EDGE_BASE[e] == lo).unwrap_or(0)
}

/// The four corners of face `f = 2 · axis + side`, counter-clockwise seen from outside the cube.
fn face_corners(f: usize) -> [usize; 4] {
    let (a, s) = (f / 2, f % 2);
    let (u, v) = ((a + 1) % 3, (a + 2) % 3);
    let c = |du: usize, dv: usize| (s << a) | (du << u) | (dv << v);
    let ccw = [c(0, 0), c(1, 0), c(1, 1), c(0, 1)];
    if s == 1 { ccw } else { [ccw[3], ccw[2], ccw[1], ccw[0]] }
}

/// Triangles (as cube-edge triples) for every configuration and face decision.
struct CaseTable {
    /// For configuration `c` and join bits `j`, triangles `tris[start[c * 64 + j]..start[c * 64 + j + 1]]`.
    start: Vec<u32>,
    tris: Vec<[u8; 3]>,
    /// Per configuration, the faces (bit `f`) whose inside corners lie on a diagonal.
    ambiguous: [u8; 256],
    faces: [[usize; 4]; 6],
    /// Cycles that no fan can triangulate without a diagonal along a cube face (which the
    /// neighbouring cube might also use): triangulated around an extra centre vertex, referred to by
    /// edge codes `12 + k` for the case's `k`-th such cycle.
    centres: HashMap<usize, Vec<Vec<u8>>>,
}

fn case_table() -> &'static CaseTable {
    static TABLE: OnceLock<CaseTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let faces: [[usize; 4]; 6] = std::array::from_fn(face_corners);
        let mut ambiguous = [0u8; 256];
        let mut start = Vec::with_capacity(256 * 64 + 1);
        let mut tris = Vec::new();
        let mut centres: HashMap<usize, Vec<Vec<u8>>> = HashMap::new();
        let mut face_of_edges = [0u8; 12];
        for (f, fc) in faces.iter().enumerate() {
            for k in 0..4 {
                face_of_edges[edge_between(fc[k], fc[(k + 1) % 4])] |= 1 << f;
            }
        }
        let share_face = |a: usize, b: usize| face_of_edges[a] & face_of_edges[b] != 0;
        for config in 0..256usize {
            let inside = |c: usize| config >> c & 1 == 1;
            for (f, fc) in faces.iter().enumerate() {
                let ins = fc.map(inside);
                if ins[0] == ins[2] && ins[1] == ins[3] && ins[0] != ins[1] {
                    ambiguous[config] |= 1 << f;
                }
            }
            for join in 0..64usize {
                start.push(tris.len() as u32);
                let mut next = [usize::MAX; 12];
                for (f, fc) in faces.iter().enumerate() {
                    let ins = fc.map(inside);
                    let e = |k: usize| edge_between(fc[k % 4], fc[(k + 1) % 4]);
                    if ambiguous[config] >> f & 1 == 1 {
                        let k0 = if ins[0] { 0 } else { 1 };
                        if join >> f & 1 == 1 {
                            // Cut off the two outside corners m: entry e_m → exit e_(m−1).
                            for m in [k0 + 1, k0 + 3] {
                                next[e(m)] = e(m + 3);
                            }
                        } else {
                            // Cut off the two inside corners m: entry e_(m−1) → exit e_m.
                            for m in [k0, k0 + 2] {
                                next[e(m + 3)] = e(m);
                            }
                        }
                    } else {
                        let (mut entry, mut exit) = (None, None);
                        for k in 0..4 {
                            if ins[k] && !ins[(k + 1) % 4] {
                                exit = Some(e(k));
                            } else if !ins[k] && ins[(k + 1) % 4] {
                                entry = Some(e(k));
                            }
                        }
                        if let (Some(a), Some(b)) = (entry, exit) {
                            next[a] = b;
                        }
                    }
                }
                let mut seen = [false; 12];
                for s in 0..12 {
                    if next[s] == usize::MAX || seen[s] {
                        continue;
                    }
                    let mut cycle = vec![s];
                    seen[s] = true;
                    let mut e = next[s];
                    while e != s && e != usize::MAX && !seen[e] {
                        seen[e] = true;
                        cycle.push(e);
                        e = next[e];
                    }
                    let n = cycle.len();
                    // A fan apex none of whose diagonals runs along a cube face.
                    let apex = (0..n).find(|&a| {
                        (2..n.saturating_sub(1)).all(|i| !share_face(cycle[a], cycle[(a + i) % n]))
                    });
                    match apex {
                        Some(a) => {
                            for i in 1..n.saturating_sub(1) {
                                tris.push([
                                    cycle[a] as u8,
                                    cycle[(a + i) % n] as u8,
                                    cycle[(a + i + 1) % n] as u8,
                                ]);
                            }
                        }
                        None => {
                            let list = centres.entry(config * 64 + join).or_default();
                            let code = 12 + list.len() as u8;
                            for i in 0..n {
                                tris.push([code, cycle[i] as u8, cycle[(i + 1) % n] as u8]);
                            }
                            list.push(cycle.iter().map(|&e| e as u8).collect());
                        }
                    }
                }
            }
        }
        start.push(tris.len() as u32);
        CaseTable { start, tris, ambiguous, faces, centres }
    })
}

/// What marching cubes needs from a volume: inside flags and, for scalar data, values.
trait Field: Sync {
    /// Whether interpolation and the face decider need the values (false: midpoints, always join).
    const SCALAR: bool;
    /// Fills `inside` (and `values` when [`Field::SCALAR`]) for padded plane `pz` (0 and nz + 1 are padding).
    fn fill_plane(&self, pz: usize, inside: &mut [u8], values: &mut [f32]);
    fn shape(&self) -> [usize; 3];
}

struct LabelField<'a> {
    data: ArrayView3<'a, u8>,
    label: u8,
}

struct ScalarField<'a> {
    data: ArrayView3<'a, f32>,
    level: f32,
}

fn fill_padded<T: Copy>(
    data: &ArrayView3<'_, T>,
    pz: usize,
    inside: &mut [u8],
    mut each: impl FnMut(T, usize, &mut [u8]),
) {
    inside.fill(0);
    let [nz, ny, nx] = [data.len_of(Axis(0)), data.len_of(Axis(1)), data.len_of(Axis(2))];
    if pz == 0 || pz > nz {
        return;
    }
    let w = nx + 2;
    let slice = data.index_axis(Axis(0), pz - 1);
    for (y, row) in slice.outer_iter().enumerate() {
        let base = (y + 1) * w + 1;
        debug_assert!(y < ny);
        for (x, &v) in row.iter().enumerate() {
            each(v, base + x, inside);
        }
    }
}

impl Field for LabelField<'_> {
    const SCALAR: bool = false;
    fn fill_plane(&self, pz: usize, inside: &mut [u8], _values: &mut [f32]) {
        let label = self.label;
        fill_padded(&self.data, pz, inside, |v, i, ins| ins[i] = (v == label) as u8);
    }
    fn shape(&self) -> [usize; 3] {
        let d = self.data.dim();
        [d.0, d.1, d.2]
    }
}

impl Field for ScalarField<'_> {
    const SCALAR: bool = true;
    fn fill_plane(&self, pz: usize, inside: &mut [u8], values: &mut [f32]) {
        let level = self.level;
        values.fill(f32::NEG_INFINITY);
        fill_padded(&self.data, pz, inside, |v, i, ins| {
            ins[i] = (v >= level) as u8;
            // NaN samples are outside; keep them out of the interpolation too.
            values[i] = if v.is_nan() { f32::NEG_INFINITY } else { v - level };
        });
    }
    fn shape(&self) -> [usize; 3] {
        let d = self.data.dim();
        [d.0, d.1, d.2]
    }
}

/// The surface of the voxels equal to `label`: closed at the volume border, watertight,
/// edge-manifold, wound outward, with vertices on edge midpoints in LPS millimetres.
///
/// Voxel centres that carry the label are inside the surface and all others outside, so
/// [`crate::voxelize()`] on the same grid gives the label back. Returns an empty mesh when no voxel
/// carries the label. The cases are resolved as described for [`marching_cubes`].
pub fn label_surface(labels: &LabelVolume, label: u8) -> Result<Mesh> {
    Ok(extract(&LabelField { data: labels.data().view(), label }, labels.geometry()))
}

/// The isosurface of a scalar volume at `level` (inside = value ≥ level; NaN is outside), e.g. a
/// probability map at 0.5 or a CT at a bone level in HU. Closed at the border, watertight,
/// edge-manifold, wound outward (normals point toward lower values), vertices in LPS millimetres.
///
/// # How the cases are resolved
///
/// The case table is not the classic hand-written one: it is generated from one rule, so that every
/// cube face is cut the same way by the two cubes that share it. On each face the contour joins the
/// edge crossings in pairs; a face whose inside corners lie on a diagonal is ambiguous, and it is
/// resolved by the asymptotic decider (Nielson & Hamann 1991): the inside corners are joined through
/// the face when the bilinear interpolant's saddle value is inside (`p·q ≥ r·s` for the inside
/// values `p, q` and outside values `r, s`, relative to the level), separated otherwise. The decision
/// depends on the face's four values only, so both cubes agree and the surface has no cracks. The
/// face segments of a cube chain into disjoint cycles, each triangulated as a fan; every edge of the
/// output is then either a face segment shared by exactly two cubes (traversed in opposite directions)
/// or a fan diagonal inside one cycle, so the surface is closed, edge-manifold and consistently
/// oriented. For a label volume the decider always joins (the saddle sits exactly at the level), which
/// treats voxels that touch across a face diagonal as connected.
///
/// The volume is padded with one layer of outside voxels, so surfaces that reach the border close
/// half a voxel beyond the outermost samples. Label surfaces pass through edge midpoints; scalar
/// surfaces interpolate linearly along edges (kept 10⁻³ voxel away from the corners, so no two
/// vertices coincide).
///
/// Slabs of cube layers run in parallel (rayon); each keeps only two planes of edge→vertex indices,
/// so memory grows with the surface, not with the volume. Vertices on the plane between two slabs are
/// made by both and merged, so the output has no duplicate vertices.
pub fn marching_cubes(volume: &Volume<f32>, level: f32) -> Result<Mesh> {
    if !level.is_finite() {
        return Err(Error::InvalidArgument { what: format!("marching-cubes level {level} is not finite") });
    }
    Ok(extract(&ScalarField { data: volume.data().view(), level }, volume.geometry()))
}

/// Vertices and triangles of one slab of cube layers.
struct Slab {
    vertices: Vec<[f32; 3]>,
    triangles: Vec<[u32; 3]>,
    /// Vertices on the slab's bottom plane (made again by the slab below): key and position.
    bottom: Vec<(u64, [f32; 3])>,
    /// Vertices on the slab's top plane: key and local index.
    top: Vec<(u64, u32)>,
}

const BOTTOM: u32 = 1 << 31;

fn extract<F: Field>(field: &F, geometry: &Geometry) -> Mesh {
    let [nz, ny, nx] = field.shape();
    // Cube layers pz = 0..=nz in padded coordinates (cube between padded planes pz and pz + 1).
    let layers = nz + 1;
    let threads = rayon::current_num_threads().max(1);
    let per = layers.div_ceil(threads * 4).clamp(2, 64);
    let slabs: Vec<(usize, usize)> = (0..layers).step_by(per).map(|a| (a, (a + per).min(layers))).collect();
    let affine = geometry.affine();
    let results: Vec<Slab> =
        slabs.par_iter().map(|&(z0, z1)| march_slab(field, [nz, ny, nx], z0, z1, &affine)).collect();
    assemble(results)
}

fn assemble(slabs: Vec<Slab>) -> Mesh {
    let mut vertices: Vec<[f32; 3]> = Vec::with_capacity(slabs.iter().map(|s| s.vertices.len()).sum());
    let mut offsets = Vec::with_capacity(slabs.len());
    let mut bottom_maps: Vec<Vec<u32>> = Vec::with_capacity(slabs.len());
    let mut prev_top: HashMap<u64, u32> = HashMap::new();
    for s in &slabs {
        let offset = vertices.len() as u32;
        offsets.push(offset);
        vertices.extend_from_slice(&s.vertices);
        let map = s
            .bottom
            .iter()
            .map(|(key, p)| {
                prev_top.get(key).copied().unwrap_or_else(|| {
                    // Unreachable for a consistent field (both slabs see the same plane), but a vertex is
                    // cheaper than a hole if it ever happens.
                    vertices.push(*p);
                    (vertices.len() - 1) as u32
                })
            })
            .collect();
        bottom_maps.push(map);
        prev_top = s.top.iter().map(|&(k, i)| (k, offset + i)).collect();
    }
    let mut triangles = Vec::with_capacity(slabs.iter().map(|s| s.triangles.len()).sum());
    for ((s, &offset), bottom) in slabs.iter().zip(&offsets).zip(&bottom_maps) {
        triangles.par_extend(
            s.triangles.par_iter().map(|t| {
                t.map(|i| if i & BOTTOM != 0 { bottom[(i & !BOTTOM) as usize] } else { offset + i })
            }),
        );
    }
    Mesh::from_parts_unchecked(vertices, triangles)
}

fn march_slab<F: Field>(
    field: &F,
    [nz, ny, nx]: [usize; 3],
    z0: usize,
    z1: usize,
    affine: &[[f64; 4]; 4],
) -> Slab {
    let table = case_table();
    let w = nx + 2;
    let plane = w * (ny + 2);
    let nvals = if F::SCALAR { plane } else { 0 };
    let (mut in_lo, mut in_hi) = (vec![0u8; plane], vec![0u8; plane]);
    let (mut val_lo, mut val_hi) = (vec![0f32; nvals], vec![0f32; nvals]);
    // Vertex index per edge: x- and y-edges of the lower and upper plane, z-edges between them.
    let none = u32::MAX;
    let (mut ex_lo, mut ey_lo) = (vec![none; plane], vec![none; plane]);
    let (mut ex_hi, mut ey_hi) = (vec![none; plane], vec![none; plane]);
    let mut ez = vec![none; plane];
    // Slots set in each edge plane, so resetting costs as much as the surface, not the plane.
    let (mut touched_lo, mut touched_hi, mut touched_z): (Vec<u32>, Vec<u32>, Vec<u32>) = Default::default();
    // Per row pair: OR of the four rows of inside flags, to skip empty cubes by the word.
    let mut any = vec![0u8; w + 8];
    let mut out = Slab { vertices: Vec::new(), triangles: Vec::new(), bottom: Vec::new(), top: Vec::new() };
    field.fill_plane(z0, &mut in_lo, &mut val_lo);
    let to_world = |p: [f64; 3]| -> [f32; 3] {
        // Padded index → voxel index (−1), then the grid's affine to LPS mm.
        let q = [p[0] - 1.0, p[1] - 1.0, p[2] - 1.0];
        [0, 1, 2]
            .map(|r| (affine[r][0] * q[0] + affine[r][1] * q[1] + affine[r][2] * q[2] + affine[r][3]) as f32)
    };
    for pz in z0..z1 {
        field.fill_plane(pz + 1, &mut in_hi, &mut val_hi);
        let bottom_layer = pz == z0 && z0 > 0;
        let top_layer = pz + 1 == z1 && z1 <= nz;
        for py in 0..=ny {
            let r0 = py * w;
            let r1 = r0 + w;
            for (x, a) in any[..w].iter_mut().enumerate() {
                *a = in_lo[r0 + x] | in_lo[r1 + x] | in_hi[r0 + x] | in_hi[r1 + x];
            }
            let mut px = 0;
            while px <= nx {
                // Cubes px..px + 6 are empty when their eight corner columns are (`any` is padded by
                // 8 zero bytes, so the read stays in bounds).
                let word = u64::from_ne_bytes([
                    any[px],
                    any[px + 1],
                    any[px + 2],
                    any[px + 3],
                    any[px + 4],
                    any[px + 5],
                    any[px + 6],
                    any[px + 7],
                ]);
                if word == 0 {
                    px += 7;
                    continue;
                }
                if any[px] | any[px + 1] == 0 {
                    px += 1;
                    continue;
                }
                let i = r0 + px;
                let config = (in_lo[i]
                    | in_lo[i + 1] << 1
                    | in_lo[i + w] << 2
                    | in_lo[i + w + 1] << 3
                    | in_hi[i] << 4
                    | in_hi[i + 1] << 5
                    | in_hi[i + w] << 6
                    | in_hi[i + w + 1] << 7) as usize;
                if config == 0 || config == 255 {
                    px += 1;
                    continue;
                }
                let idx = [i, i + 1, i + w, i + w + 1];
                let value = |c: usize| if c < 4 { val_lo[idx[c]] } else { val_hi[idx[c - 4]] };
                let mut join = 63usize;
                let amb = table.ambiguous[config];
                if F::SCALAR && amb != 0 {
                    for f in 0..6 {
                        if amb >> f & 1 == 1 {
                            let fc = table.faces[f];
                            let (p, q, r, s) = if config >> fc[0] & 1 == 1 {
                                (value(fc[0]), value(fc[2]), value(fc[1]), value(fc[3]))
                            } else {
                                (value(fc[1]), value(fc[3]), value(fc[0]), value(fc[2]))
                            };
                            if p * q < r * s {
                                join &= !(1 << f);
                            }
                        }
                    }
                }
                let case = config * 64 + join;
                let tris = &table.tris[table.start[case] as usize..table.start[case + 1] as usize];
                let mut cache = [none; 12];
                let mut positions = [[0f32; 3]; 12];
                let mut vertex = |e: usize, out: &mut Slab| -> (u32, [f32; 3]) {
                    if cache[e] != none {
                        return (cache[e], positions[e]);
                    }
                    let axis = e / 4;
                    let base = corner(EDGE_BASE[e]);
                    let (bx, by, bz) = (px + base[0], py + base[1], base[2]);
                    let k = by * w + bx;
                    let slot = match (axis, bz) {
                        (0, 0) => &mut ex_lo[k],
                        (0, _) => &mut ex_hi[k],
                        (1, 0) => &mut ey_lo[k],
                        (1, _) => &mut ey_hi[k],
                        _ => &mut ez[k],
                    };
                    let t = if F::SCALAR {
                        let (a, b) = (value(EDGE_BASE[e]), value(EDGE_BASE[e] | 1 << axis));
                        let t = a / (a - b);
                        if t.is_finite() { t.clamp(1e-3, 1.0 - 1e-3) } else { 0.5 }
                    } else {
                        0.5
                    };
                    let mut p = [bx as f64, by as f64, (pz + bz) as f64];
                    p[axis] += t as f64;
                    let pos = to_world(p);
                    positions[e] = pos;
                    if *slot == none {
                        match (axis, bz) {
                            (2, _) => touched_z.push(k as u32),
                            (_, 0) => touched_lo.push(k as u32),
                            _ => touched_hi.push(k as u32),
                        }
                        let key = (k as u64) << 1 | axis as u64;
                        if bottom_layer && axis < 2 && bz == 0 {
                            *slot = BOTTOM | out.bottom.len() as u32;
                            out.bottom.push((key, pos));
                        } else {
                            *slot = out.vertices.len() as u32;
                            out.vertices.push(pos);
                            if top_layer && axis < 2 && bz == 1 {
                                out.top.push((key, *slot));
                            }
                        }
                    }
                    cache[e] = *slot;
                    (*slot, pos)
                };
                let mut centre_ids = [none; 4];
                if let Some(cycles) = table.centres.get(&case) {
                    for (c, cycle) in cycles.iter().enumerate() {
                        let mut sum = [0f64; 3];
                        for &e in cycle {
                            let (_, p) = vertex(e as usize, &mut out);
                            for k in 0..3 {
                                sum[k] += p[k] as f64;
                            }
                        }
                        let n = cycle.len() as f64;
                        centre_ids[c] = out.vertices.len() as u32;
                        out.vertices.push(sum.map(|v| (v / n) as f32));
                    }
                }
                for t in tris {
                    let tri = t.map(|e| {
                        if e >= 12 { centre_ids[e as usize - 12] } else { vertex(e as usize, &mut out).0 }
                    });
                    out.triangles.push(tri);
                }
                px += 1;
            }
        }
        std::mem::swap(&mut in_lo, &mut in_hi);
        std::mem::swap(&mut val_lo, &mut val_hi);
        std::mem::swap(&mut ex_lo, &mut ex_hi);
        std::mem::swap(&mut ey_lo, &mut ey_hi);
        std::mem::swap(&mut touched_lo, &mut touched_hi);
        for &k in &touched_hi {
            ex_hi[k as usize] = none;
            ey_hi[k as usize] = none;
        }
        touched_hi.clear();
        for &k in &touched_z {
            ez[k as usize] = none;
        }
        touched_z.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn geometry(spacing: [f64; 3]) -> Geometry {
        Geometry::new(spacing, [-3.0, 2.0, 7.5], Geometry::IDENTITY).unwrap()
    }

    #[test]
    fn single_voxel_is_an_outward_octahedron() {
        let mut a = Array3::<u8>::zeros((3, 3, 3));
        a[[1, 1, 1]] = 1;
        let v = LabelVolume::new(a, geometry([1.0, 1.0, 1.0])).unwrap();
        let m = label_surface(&v, 1).unwrap();
        assert_eq!(m.triangles().len(), 8);
        assert_eq!(m.vertices().len(), 6);
        assert!((m.enclosed_volume() - 1.0 / 6.0).abs() < 1e-6, "{}", m.enclosed_volume());
        assert!(m.check().is_watertight());
    }

    #[test]
    fn border_voxels_close_and_every_config_pair_is_watertight() {
        // Two-voxel-thick random patterns exercise all 256 configurations and all face decisions.
        let mut state = 12345u64;
        let mut a = Array3::<u8>::zeros((6, 7, 8));
        for v in a.iter_mut() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *v = (state >> 62) as u8 % 2;
        }
        let vol = LabelVolume::new(a.clone(), geometry([0.5, 0.7, 2.0])).unwrap();
        let m = label_surface(&vol, 1).unwrap();
        let c = m.check();
        assert!(c.is_watertight() && c.is_edge_manifold(), "{c:?}");
        assert_eq!(c.degenerate_triangles, 0);
        let f = Volume::new(a.map(|&v| v as f32 * 2.0 - 0.3 + 0.1 * (v as f32)), geometry([1.0; 3])).unwrap();
        let c = marching_cubes(&f, 0.5).unwrap().check();
        assert!(c.is_watertight() && c.is_edge_manifold(), "{c:?}");
    }
}
