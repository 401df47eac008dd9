//! The implant design pipeline: find the defect, model the missing bone's inner and outer table over
//! it (mirrored healthy side fitted to the rim, or a thin-plate patch spanning the rim), fill the
//! voxels between the tables where bone is missing, clean up, mesh.
use msd_geom::{Mesh, label_surface};
use msd_io::{Geometry, LabelVolume};
use ndarray::Array3;
use rayon::prelude::*;

use crate::rays::{Crossing, Sampler, V3, add, basis, dot, norm, normalize, scale, sub};
use crate::shape::VaultShape;
use crate::skull::{Frame, GlobalMap, Opening};
use crate::symmetry::{SymmetryPlane, find_plane};
use crate::tps::Tps;
use crate::{Error, Result};

/// Side of a chart cell on the shell (mm).
const CELL_MM: f64 = 1.0;
/// The defect's opening is widened by this much (mm along the shell) before its tables are
/// modelled: rays at the rim of a slanted cut meet part of the bone, and the rim's tables there are
/// re-modelled from further out.
const RIM_WIDEN_MM: f64 = 3.0;
/// Width of the ring of healthy bone around the widened opening whose tables the surfaces are
/// fitted to (mm).
const RING_MM: f64 = 10.0;
/// Most control points of a thin-plate fit (a dense solve: O(n³)).
const MAX_CONTROL_POINTS: usize = 600;
/// Thin-plate smoothing λ (added to the kernel's diagonal). The ring's table radii carry the voxel
/// staircase (±half a voxel); an interpolating spline (λ = 0) follows that noise and swings inside
/// the opening. Chosen on the synthetic skulls of the tests (λ = 0, 1, 200, 2000, 20 000 tried:
/// 2000 best overall), not on the real data.
const TPS_SMOOTHING: f64 = 2000.0;
/// Ring rays meeting a table whose normal is tilted more than this from the ray are left out of the
/// fits (see [`grazing`]): 60°, where the surface is seen twice as wide along the ray as across.
const MAX_TILT_DEG: f64 = 60.0;
/// Half the baseline (cells, 1 mm each) over which a table's tilt is measured.
const TILT_BASELINE_CELLS: isize = 3;
/// Largest angular radius of a defect plus its ring, seen from the skull's centre (degrees).
const MAX_CHART_DEG: f64 = 72.0;
/// A defect reaching further than this (mm) to both sides of the symmetry plane crosses the midline.
const MIDLINE_MM: f64 = 5.0;
/// The mirror method is chosen automatically only when the mirrored defect finds bone in at least
/// this fraction of its directions …
const MIN_MIRROR_COVERAGE: f64 = 0.97;
/// … the mirrored skull has bone in at least this fraction of the ring's directions …
const MIN_MIRROR_COVERAGE_RING: f64 = 0.9;
/// … the mirrored tables meet the real ones on the ring within this RMS distance (mm, before the
/// rim fit) …
const MAX_RING_RMS_MM: f64 = 3.0;
/// … and within this RMS distance once an affine correction over the ring is taken out (mm): what
/// the smooth rim fit cannot absorb. (The registration's own RMS is no test: the defect's mirror
/// image pairs healthy bone with the hole, so it grows with the defect, 2 mm at 30 mm to 7 mm at
/// 90 mm on `cthead`, whatever the symmetry.)
const MAX_RING_ROUGH_MM: f64 = 2.0;

/// How the missing bone was modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The healthy side mirrored across the mid-sagittal plane, fitted to the rim.
    Mirror,
    /// A thin-plate patch of the inner and outer tables spanning the rim.
    Patch,
}

impl Method {
    /// `"mirror"` or `"patch"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Mirror => "mirror",
            Method::Patch => "patch",
        }
    }
}

/// Which method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodChoice {
    /// Mirror for a one-sided defect on a symmetric skull, patch otherwise.
    #[default]
    Auto,
    /// Always mirror (fails when the mirrored side is missing too).
    Mirror,
    /// Always patch.
    Patch,
}

/// Options of [`design_implant`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImplantOptions {
    /// Which method.
    pub method: MethodChoice,
    /// A point (LPS mm) near the defect, to pick one when the skull has several openings.
    pub point_mm: Option<[f64; 3]>,
    /// Gap left between the implant and the remaining bone (mm, ≥ 0): implant voxels are removed
    /// until the gap between implant and bone voxels (box to box, along the grid) is at least this.
    pub clearance_mm: f64,
}

impl Default for ImplantOptions {
    /// Automatic method, no point, no clearance.
    fn default() -> Self {
        ImplantOptions { method: MethodChoice::Auto, point_mm: None, clearance_mm: 0.0 }
    }
}

/// The designed implant.
#[derive(Debug, Clone)]
pub struct Implant {
    /// The implant (label 1) on the input's grid; it shares no voxel with the input skull.
    pub labels: LabelVolume,
    /// Its surface in LPS mm: watertight, outward-oriented, one component.
    pub mesh: Mesh,
    /// The method used.
    pub method: Method,
    /// Why that method was used.
    pub reason: String,
    /// The defect closed.
    pub defect: Opening,
    /// The symmetry plane, when it was computed.
    pub symmetry: Option<SymmetryPlane>,
    /// Implant voxels.
    pub voxels: usize,
    /// Implant volume (ml).
    pub volume_ml: f64,
    /// Mean thickness of the modelled bone over the defect (mm).
    pub mean_thickness_mm: f64,
    /// RMS distance (mm) between the mirrored outer table and the rim's before the fit, when the
    /// mirror was computed.
    pub rim_mismatch_mm: Option<f64>,
}

/// The skull's openings (defects and natural ones), largest first: what [`design_implant`] chooses
/// from.
pub fn find_openings(skull: &LabelVolume) -> Result<Vec<Opening>> {
    let data = skull.data().as_standard_layout();
    let data = data.as_slice().expect("standard layout");
    check_not_empty(skull, data)?;
    let frame = Frame::estimate(skull, data)?;
    let map = frame.global_map(&Sampler::new(skull, data));
    frame.check_shell(&map)?;
    Ok(frame.openings(&map))
}

/// The skull's mid-sagittal symmetry plane (registration of the skull to its mirror image).
pub fn symmetry_plane(skull: &LabelVolume) -> Result<SymmetryPlane> {
    let data = skull.data().as_standard_layout();
    let data = data.as_slice().expect("standard layout");
    check_not_empty(skull, data)?;
    let frame = Frame::estimate(skull, data)?;
    let map = frame.global_map(&Sampler::new(skull, data));
    frame.check_shell(&map)?;
    find_plane(&frame, &map)
}

/// The union of a skull and an implant on the same grid (the restored skull).
pub fn restore(skull: &LabelVolume, implant: &LabelVolume) -> Result<LabelVolume> {
    skull
        .check_same_grid(implant, 1e-3)
        .map_err(|e| Error::GridMismatch { what: "skull and implant", detail: e.to_string() })?;
    let data =
        ndarray::Zip::from(skull.data()).and(implant.data()).map_collect(|&a, &b| u8::from(a != 0 || b != 0));
    Ok(skull.with_data(data)?)
}

fn check_not_empty(skull: &LabelVolume, data: &[u8]) -> Result<()> {
    if data.iter().all(|&v| v == 0) {
        return Err(Error::EmptySkull { shape: skull.shape() });
    }
    Ok(())
}

/// A gnomonic chart of directions around the defect's axis: cell (row, col) looks along
/// normalize(a + u e₁ + v e₂), u = (col − n) h, v = (row − n) h.
struct Chart {
    a: V3,
    e1: V3,
    e2: V3,
    h: f64,
    n: usize,
    radius: f64,
}

impl Chart {
    fn size(&self) -> usize {
        2 * self.n + 1
    }
    fn uv(&self, cell: usize) -> [f64; 2] {
        let s = self.size();
        [(cell % s) as f64 - self.n as f64, (cell / s) as f64 - self.n as f64].map(|k| k * self.h)
    }
    fn dir(&self, cell: usize) -> V3 {
        let [u, v] = self.uv(cell);
        normalize(add(self.a, add(scale(self.e1, u), scale(self.e2, v))))
    }
    /// Tangent-plane coordinates in mm (for the thin-plate fits).
    fn mm(&self, cell: usize) -> [f64; 2] {
        self.uv(cell).map(|k| k * self.radius)
    }
    fn neighbours(&self, cell: usize) -> impl Iterator<Item = usize> {
        let s = self.size();
        let (r, c) = (cell / s, cell % s);
        let mut out = [usize::MAX; 4];
        if r > 0 {
            out[0] = cell - s;
        }
        if r + 1 < s {
            out[1] = cell + s;
        }
        if c > 0 {
            out[2] = cell - 1;
        }
        if c + 1 < s {
            out[3] = cell + 1;
        }
        out.into_iter().filter(|&v| v != usize::MAX)
    }
}

/// The tables modelled over the widened defect.
struct Tables {
    r_in: Vec<f64>,
    r_out: Vec<f64>,
}

/// Designs the implant that closes the skull's defect.
///
/// `skull` is the defective skull (non-zero = bone) on any grid: any spacing, any direction
/// matrix. The implant comes back on the same grid with its mesh in LPS mm. Errors:
/// [`Error::EmptySkull`], [`Error::NotASkull`], [`Error::NoDefect`], [`Error::SeveralDefects`],
/// [`Error::PointNotNearDefect`], [`Error::DefectTooLarge`], [`Error::MirrorUnavailable`] (mirror
/// forced), [`Error::InvalidOption`], [`Error::EmptyImplant`].
pub fn design_implant(skull: &LabelVolume, options: &ImplantOptions) -> Result<Implant> {
    if !(options.clearance_mm.is_finite() && options.clearance_mm >= 0.0) {
        return Err(Error::InvalidOption {
            name: "clearance",
            what: format!("{} mm; it must be finite and ≥ 0", options.clearance_mm),
        });
    }
    if let Some(p) = options.point_mm
        && p.iter().any(|v| !v.is_finite())
    {
        return Err(Error::InvalidOption { name: "point", what: format!("{p:?} is not finite") });
    }
    let standard = skull.data().as_standard_layout();
    let data = standard.as_slice().expect("standard layout");
    check_not_empty(skull, data)?;
    let frame = Frame::estimate(skull, data)?;
    let sampler = Sampler::new(skull, data);
    let map = frame.global_map(&sampler);
    frame.check_shell(&map)?;
    let openings = frame.openings(&map);
    let opening = pick_opening(&frame, &map, &openings, options.point_mm)?;

    let chart = make_chart(&frame, &map, &opening)?;
    let cells = chart.size() * chart.size();
    let crossings: Vec<Option<Crossing>> =
        (0..cells).into_par_iter().map(|c| frame.caster.cast(&sampler, frame.centre, chart.dir(c))).collect();
    let hole = hole_cells(&chart, &map, &opening, &crossings);
    if !hole.iter().any(|&h| h) {
        return Err(Error::EmptyImplant { stage: "locating the opening in the defect's chart" });
    }
    let dist = cell_distance(&chart, &hole);
    let widen = (RIM_WIDEN_MM / CELL_MM).ceil() as u32;
    let ring_w = widen + (RING_MM / CELL_MM).ceil() as u32;
    let fill: Vec<bool> = dist.iter().map(|&d| d <= widen).collect();
    let ring: Vec<usize> = (0..cells)
        .filter(|&c| dist[c] > widen && dist[c] <= ring_w && !grazing(&chart, &crossings, c))
        .collect();
    if ring.len() < 20 {
        return Err(Error::NotASkull {
            what: format!(
                "the defect at {} mm has almost no bone around it",
                crate::error::fmt_point(&opening.centre_mm)
            ),
        });
    }
    let fill_cells: Vec<usize> = (0..cells).filter(|&c| fill[c]).collect();
    let shape = VaultShape::fit(&map);
    let patch = patch_tables(&chart, &crossings, &ring, &fill_cells, shape.as_ref())?;
    // The mirror, when it may be used.
    let mut symmetry = None;
    let mut mirror = None;
    let mut plane_error = None;
    if options.method != MethodChoice::Patch {
        match find_plane(&frame, &map) {
            Ok(plane) => {
                symmetry = Some(plane);
                mirror = Some(mirror_tables(
                    &frame,
                    &sampler,
                    &chart,
                    &plane,
                    &crossings,
                    &ring,
                    &fill_cells,
                    &patch,
                )?);
            }
            Err(e) => plane_error = Some(e.to_string()),
        }
    }
    let (method, reason, tables) =
        choose(options.method, &frame, &chart, &hole, &patch, symmetry.as_ref(), mirror, plane_error)?;
    let rim_mismatch_mm = match (&symmetry, method) {
        (Some(_), _) => mirror_mismatch(&frame, &sampler, &chart, symmetry.as_ref(), &crossings, &ring),
        _ => None,
    };
    let mean_thickness_mm =
        tables.r_out.iter().zip(&tables.r_in).map(|(o, i)| o - i).sum::<f64>() / tables.r_out.len() as f64;

    // Fields over the whole chart (NaN outside the widened opening) for the voxel fill.
    let mut r_in = vec![f64::NAN; cells];
    let mut r_out = vec![f64::NAN; cells];
    for (k, &c) in fill_cells.iter().enumerate() {
        r_in[c] = tables.r_in[k];
        r_out[c] = tables.r_out[k];
    }
    let labels = rasterise(skull, data, &frame, &chart, &hole, &r_in, &r_out, options.clearance_mm)?;
    let voxels = labels.data().iter().filter(|&&v| v != 0).count();
    let volume_ml = voxels as f64 * skull.geometry().voxel_volume_mm3() / 1000.0;
    let mesh = implant_mesh(&labels)?;
    Ok(Implant {
        labels,
        mesh,
        method,
        reason,
        defect: opening,
        symmetry,
        voxels,
        volume_ml,
        mean_thickness_mm,
        rim_mismatch_mm,
    })
}

fn pick_opening(frame: &Frame, map: &GlobalMap, openings: &[Opening], point: Option<V3>) -> Result<Opening> {
    if let Some(p) = point {
        let dir = sub(p, frame.centre);
        let best =
            openings.iter().map(|o| (o, frame.angle_to(map, o, dir))).min_by(|a, b| a.1.total_cmp(&b.1));
        return match best {
            Some((o, angle)) if angle * frame.vault_radius <= 20.0 && shell_distance(frame, o, p) <= 30.0 => {
                Ok(o.clone())
            }
            _ => Err(Error::PointNotNearDefect {
                point: p,
                centres: openings.iter().map(|o| o.centre_mm).collect(),
            }),
        };
    }
    let defects: Vec<&Opening> = openings.iter().filter(|o| !o.natural).collect();
    match defects.as_slice() {
        [] => Err(Error::NoDefect { natural: openings.len() }),
        [one] => Ok((*one).clone()),
        many => Err(Error::SeveralDefects { centres: many.iter().map(|o| o.centre_mm).collect() }),
    }
}

/// Distance (mm) from a point to the opening's centre's sphere around the skull's centre.
fn shell_distance(frame: &Frame, o: &Opening, p: V3) -> f64 {
    (norm(sub(p, frame.centre)) - norm(sub(o.centre_mm, frame.centre))).abs()
}

fn make_chart(frame: &Frame, map: &GlobalMap, opening: &Opening) -> Result<Chart> {
    let a = opening.direction;
    let radius = norm(sub(opening.centre_mm, frame.centre));
    let hole_angle =
        opening.cells.iter().map(|&c| dot(map.dir(c), a).clamp(-1.0, 1.0).acos()).fold(0.0, f64::max)
            + 1f64.to_radians();
    let margin = (RIM_WIDEN_MM + RING_MM + 3.0) / radius;
    let total = hole_angle + margin;
    if total.to_degrees() > MAX_CHART_DEG {
        return Err(Error::DefectTooLarge {
            centre: opening.centre_mm,
            angle_deg: total.to_degrees(),
            max_deg: MAX_CHART_DEG,
        });
    }
    let (e1, e2) = basis(a);
    let h = CELL_MM / radius;
    let n = (total.tan() / h).ceil() as usize;
    Ok(Chart { a, e1, e2, h, n, radius })
}

/// The chart cells of the opening: rays that meet no bone, connected to the opening's directions.
fn hole_cells(
    chart: &Chart,
    map: &GlobalMap,
    opening: &Opening,
    crossings: &[Option<Crossing>],
) -> Vec<bool> {
    let mut in_opening = vec![false; map.nt * map.np];
    for &c in &opening.cells {
        in_opening[c] = true;
    }
    let cells = crossings.len();
    let mut hole = vec![false; cells];
    let mut stack: Vec<usize> =
        (0..cells).filter(|&c| crossings[c].is_none() && in_opening[map.cell_of(chart.dir(c))]).collect();
    for &c in &stack {
        hole[c] = true;
    }
    while let Some(c) = stack.pop() {
        for nb in chart.neighbours(c) {
            if !hole[nb] && crossings[nb].is_none() {
                hole[nb] = true;
                stack.push(nb);
            }
        }
    }
    hole
}

/// Whether the ray of `cell` meets no bone, or meets it at a grazing angle: the inner or outer
/// table's normal more than [`MAX_TILT_DEG`] from the ray. Rays from the vault's centre meet the
/// vault's tables nearly head-on; those that graze a surface lie on another one (the floor of the
/// anterior or middle cranial fossa, an orbit's roof, the zygomatic arch), whose radii would pull
/// the tables modelled over the defect towards the skull base. The tilt comes from the radii's
/// change over ±[`TILT_BASELINE_CELLS`] cells (so the voxel staircase does not count as slope).
fn grazing(chart: &Chart, crossings: &[Option<Crossing>], cell: usize) -> bool {
    let Some(here) = crossings[cell] else { return true };
    let s = chart.size() as isize;
    let (r, c) = ((cell as isize) / s, (cell as isize) % s);
    let k = TILT_BASELINE_CELLS;
    let max_slope = MAX_TILT_DEG.to_radians().tan();
    let at = |rr: isize, cc: isize| -> Option<(usize, Crossing)> {
        if rr < 0 || cc < 0 || rr >= s || cc >= s {
            return None;
        }
        let i = (rr * s + cc) as usize;
        crossings[i].map(|x| (i, x))
    };
    for (dr, dc) in [(1, 0), (0, 1)] {
        let (Some((a, xa)), Some((b, xb))) = (at(r - k * dr, c - k * dc), at(r + k * dr, c + k * dc)) else {
            continue;
        };
        let angle = dot(chart.dir(a), chart.dir(b)).clamp(-1.0, 1.0).acos();
        let arc_in = angle * here.r_in;
        let arc_out = angle * here.r_out;
        if arc_in <= 0.0 {
            continue;
        }
        if (xb.r_in - xa.r_in).abs() > max_slope * arc_in || (xb.r_out - xa.r_out).abs() > max_slope * arc_out
        {
            return true;
        }
    }
    false
}

/// City-block distance (cells) of every chart cell to the hole.
fn cell_distance(chart: &Chart, hole: &[bool]) -> Vec<u32> {
    let mut dist = vec![u32::MAX; hole.len()];
    let mut queue = std::collections::VecDeque::new();
    for (c, &h) in hole.iter().enumerate() {
        if h {
            dist[c] = 0;
            queue.push_back(c);
        }
    }
    while let Some(c) = queue.pop_front() {
        for nb in chart.neighbours(c) {
            if dist[nb] == u32::MAX {
                dist[nb] = dist[c] + 1;
                queue.push_back(nb);
            }
        }
    }
    dist
}

fn subsample(cells: &[usize]) -> Vec<usize> {
    let stride = cells.len().div_ceil(MAX_CONTROL_POINTS).max(1);
    cells.iter().step_by(stride).copied().collect()
}

/// Thin-plate fits of `values` (one vector per field, over `ctrl`) evaluated at `at`, with one pass
/// of outlier rejection (control values further than 3 mm + 3 × the median residual from the first
/// fit are dropped: stray fragments, sutures, the odd ray through a foramen).
fn fit_fields(chart: &Chart, ctrl: &[usize], values: &[Vec<f64>], at: &[usize]) -> Result<Vec<Vec<f64>>> {
    let fail = || Error::NotASkull {
        what: "the bone around the defect gives no surface to fit (degenerate rim)".into(),
    };
    let pts: Vec<[f64; 2]> = ctrl.iter().map(|&c| chart.mm(c)).collect();
    let tps = Tps::fit(&pts, values, TPS_SMOOTHING).ok_or_else(fail)?;
    let mut out = vec![0.0; values.len()];
    let mut residual: Vec<f64> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            tps.eval(*p, &mut out);
            out.iter().zip(values).map(|(o, v)| (o - v[i]).abs()).fold(0.0, f64::max)
        })
        .collect();
    let mut sorted = residual.clone();
    sorted.sort_by(f64::total_cmp);
    let limit = 3.0 + 3.0 * sorted[sorted.len() / 2];
    let keep: Vec<usize> = (0..pts.len()).filter(|&i| residual[i] <= limit).collect();
    residual.clear();
    let tps = if keep.len() < pts.len() && keep.len() >= 10 {
        let pts: Vec<[f64; 2]> = keep.iter().map(|&i| pts[i]).collect();
        let values: Vec<Vec<f64>> = values.iter().map(|v| keep.iter().map(|&i| v[i]).collect()).collect();
        Tps::fit(&pts, &values, TPS_SMOOTHING).ok_or_else(fail)?
    } else {
        tps
    };
    let evaluated: Vec<Vec<f64>> = at
        .par_iter()
        .map(|&c| {
            let mut o = vec![0.0; values.len()];
            tps.eval(chart.mm(c), &mut o);
            o
        })
        .collect();
    Ok((0..values.len()).map(|f| evaluated.iter().map(|o| o[f]).collect()).collect())
}

/// The patch: thin-plate splines of the inner and outer table over the ring. With the vault's
/// global shape, the splines model only the ring's departure from it and the shape carries the
/// curvature across the opening; without it (or where a ray misses the shape), the raw radii.
fn patch_tables(
    chart: &Chart,
    crossings: &[Option<Crossing>],
    ring: &[usize],
    fill: &[usize],
    shape: Option<&VaultShape>,
) -> Result<Tables> {
    let ctrl = subsample(ring);
    let prior = |cells: &[usize]| -> Option<(Vec<f64>, Vec<f64>)> {
        let s = shape?;
        let mut p_in = Vec::with_capacity(cells.len());
        let mut p_out = Vec::with_capacity(cells.len());
        for &c in cells {
            let d = chart.dir(c);
            p_in.push(s.inner.radius(d)?);
            p_out.push(s.outer.radius(d)?);
        }
        Some((p_in, p_out))
    };
    let (ctrl_prior, fill_prior) = match (prior(&ctrl), prior(fill)) {
        (Some(a), Some(b)) => (a, b),
        _ => ((vec![0.0; ctrl.len()], vec![0.0; ctrl.len()]), (vec![0.0; fill.len()], vec![0.0; fill.len()])),
    };
    let r_in: Vec<f64> =
        ctrl.iter().zip(&ctrl_prior.0).map(|(&c, p)| crossings[c].map_or(f64::NAN, |x| x.r_in - p)).collect();
    let r_out: Vec<f64> = ctrl
        .iter()
        .zip(&ctrl_prior.1)
        .map(|(&c, p)| crossings[c].map_or(f64::NAN, |x| x.r_out - p))
        .collect();
    let mut f = fit_fields(chart, &ctrl, &[r_in, r_out], fill)?;
    let r_out: Vec<f64> =
        f.pop().expect("two fields").iter().zip(&fill_prior.1).map(|(v, p)| v + p).collect();
    let r_in: Vec<f64> = f.pop().expect("two fields").iter().zip(&fill_prior.0).map(|(v, p)| v + p).collect();
    Ok(Tables { r_in, r_out })
}

/// The mirrored tables over the widened opening and their coverage (fraction of its directions where
/// the mirror meets bone).
struct Mirrored {
    tables: Tables,
    coverage: f64,
    /// How the mirrored tables agree with the real ones on the healthy ring, before the rim fit.
    ring: RingAgreement,
}

/// Agreement of the mirrored tables with the real ones on the ring of healthy bone around the
/// defect, before the thin-plate rim correction: the evidence that the skull is symmetric here.
#[derive(Debug, Clone, Copy, Default)]
struct RingAgreement {
    /// Fraction of the ring's directions where the mirrored skull has bone too.
    coverage: f64,
    /// RMS (mm) of real minus mirrored radius, outer and inner table together.
    rms_mm: f64,
    /// RMS (mm) of what is left of that difference after its best affine fit over the chart: the
    /// part a smooth rim correction cannot absorb (local asymmetry, a mirrored hole or fragment).
    rough_mm: f64,
}

fn mirror_cast(frame: &Frame, sampler: &Sampler<'_>, plane: &SymmetryPlane, dir: V3) -> Option<Crossing> {
    frame.caster.cast(sampler, plane.reflect_point(frame.centre), plane.reflect_direction(dir))
}

#[allow(clippy::too_many_arguments)]
fn mirror_tables(
    frame: &Frame,
    sampler: &Sampler<'_>,
    chart: &Chart,
    plane: &SymmetryPlane,
    crossings: &[Option<Crossing>],
    ring: &[usize],
    fill: &[usize],
    patch: &Tables,
) -> Result<Mirrored> {
    let mirrored_fill: Vec<Option<Crossing>> =
        fill.par_iter().map(|&c| mirror_cast(frame, sampler, plane, chart.dir(c))).collect();
    let coverage = mirrored_fill.iter().filter(|m| m.is_some()).count() as f64 / fill.len() as f64;
    // The rim correction: actual minus mirrored tables on the ring, spread smoothly over the defect.
    let ring_pairs: Vec<(usize, Crossing, Crossing)> = ring
        .par_iter()
        .filter_map(|&c| Some((c, crossings[c]?, mirror_cast(frame, sampler, plane, chart.dir(c))?)))
        .collect();
    if ring_pairs.len() < 20 {
        return Ok(Mirrored {
            tables: Tables { r_in: patch.r_in.clone(), r_out: patch.r_out.clone() },
            coverage: 0.0,
            ring: RingAgreement::default(),
        });
    }
    let ring_agreement = ring_agreement(chart, &ring_pairs, ring.len());
    let ctrl_idx: Vec<usize> = subsample(&(0..ring_pairs.len()).collect::<Vec<_>>());
    let ctrl: Vec<usize> = ctrl_idx.iter().map(|&i| ring_pairs[i].0).collect();
    let d_in: Vec<f64> = ctrl_idx.iter().map(|&i| ring_pairs[i].1.r_in - ring_pairs[i].2.r_in).collect();
    let d_out: Vec<f64> = ctrl_idx.iter().map(|&i| ring_pairs[i].1.r_out - ring_pairs[i].2.r_out).collect();
    let delta = fit_fields(chart, &ctrl, &[d_in, d_out], fill)?;
    let mut r_in = Vec::with_capacity(fill.len());
    let mut r_out = Vec::with_capacity(fill.len());
    for (k, m) in mirrored_fill.iter().enumerate() {
        match m {
            Some(m) => {
                r_in.push(m.r_in + delta[0][k]);
                r_out.push(m.r_out + delta[1][k]);
            }
            None => {
                r_in.push(patch.r_in[k]);
                r_out.push(patch.r_out[k]);
            }
        }
    }
    Ok(Mirrored { tables: Tables { r_in, r_out }, coverage, ring: ring_agreement })
}

/// The [`RingAgreement`] of (cell, real, mirrored) crossings on a ring of `ring_len` directions.
fn ring_agreement(chart: &Chart, pairs: &[(usize, Crossing, Crossing)], ring_len: usize) -> RingAgreement {
    let mut rows = Vec::with_capacity(2 * pairs.len());
    for &(c, real, mirrored) in pairs {
        let [u, v] = chart.mm(c);
        rows.push(([1.0, u, v], real.r_out - mirrored.r_out));
        rows.push(([1.0, u, v], real.r_in - mirrored.r_in));
    }
    let n = rows.len().max(1) as f64;
    let rms_mm = (rows.iter().map(|(_, d)| d * d).sum::<f64>() / n).sqrt();
    // Least-squares affine fit d ≈ a + b u + c v (normal equations, 3 × 3).
    let mut a = vec![vec![0.0; 3]; 3];
    let mut b = vec![0.0; 3];
    for (x, d) in &rows {
        for r in 0..3 {
            for k in 0..3 {
                a[r][k] += x[r] * x[k];
            }
            b[r] += x[r] * d;
        }
    }
    let rough_mm = match crate::tps::solve_dense(a, vec![b]) {
        Some(coef) => {
            let coef = &coef[0];
            let ss: f64 = rows
                .iter()
                .map(|(x, d)| {
                    let e = d - (coef[0] * x[0] + coef[1] * x[1] + coef[2] * x[2]);
                    e * e
                })
                .sum();
            (ss / n).sqrt()
        }
        None => rms_mm,
    };
    RingAgreement { coverage: pairs.len() as f64 / ring_len.max(1) as f64, rms_mm, rough_mm }
}

/// RMS (mm) of actual minus mirrored outer table on the ring.
fn mirror_mismatch(
    frame: &Frame,
    sampler: &Sampler<'_>,
    chart: &Chart,
    plane: Option<&SymmetryPlane>,
    crossings: &[Option<Crossing>],
    ring: &[usize],
) -> Option<f64> {
    let plane = plane?;
    let d: Vec<f64> = ring
        .par_iter()
        .filter_map(|&c| Some(crossings[c]?.r_out - mirror_cast(frame, sampler, plane, chart.dir(c))?.r_out))
        .collect();
    (!d.is_empty()).then(|| (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt())
}

#[allow(clippy::too_many_arguments)]
fn choose(
    choice: MethodChoice,
    frame: &Frame,
    chart: &Chart,
    hole: &[bool],
    patch: &Tables,
    symmetry: Option<&SymmetryPlane>,
    mirror: Option<Mirrored>,
    plane_error: Option<String>,
) -> Result<(Method, String, Tables)> {
    let patch_copy = || Tables { r_in: patch.r_in.clone(), r_out: patch.r_out.clone() };
    if choice == MethodChoice::Patch {
        return Ok((Method::Patch, "patch forced".into(), patch_copy()));
    }
    let (Some(plane), Some(mirror)) = (symmetry, mirror) else {
        let why = plane_error.unwrap_or_else(|| "no symmetry plane".into());
        if choice == MethodChoice::Mirror {
            return Err(Error::MirrorUnavailable { why });
        }
        return Ok((Method::Patch, format!("no symmetry plane ({why})"), patch_copy()));
    };
    // Extent of the opening across the plane, on the vault sphere.
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (c, _) in hole.iter().enumerate().filter(|(_, h)| **h) {
        let p = add(frame.centre, scale(chart.dir(c), chart.radius));
        let s = plane.signed_distance(p);
        lo = lo.min(s);
        hi = hi.max(s);
    }
    let sagittal = SymmetryPlane::through(frame.centre, [1.0, 0.0, 0.0]);
    let plane_note = format!(
        "symmetry plane {:.1}° from the sagittal axis, mirror RMS {:.1} mm",
        plane.angle_deg(&sagittal),
        plane.rms_mm
    );
    if choice == MethodChoice::Mirror {
        if mirror.coverage < 0.5 {
            return Err(Error::MirrorUnavailable {
                why: format!(
                    "the mirrored defect meets bone in only {:.0}% of its directions",
                    100.0 * mirror.coverage
                ),
            });
        }
        return Ok((Method::Mirror, format!("mirror forced; {plane_note}"), mirror.tables));
    }
    if lo < -MIDLINE_MM && hi > MIDLINE_MM {
        return Ok((
            Method::Patch,
            format!("the defect crosses the mid-sagittal plane ({:.0} to {:.0} mm from it)", lo, hi),
            patch_copy(),
        ));
    }
    if mirror.coverage < MIN_MIRROR_COVERAGE {
        return Ok((
            Method::Patch,
            format!("the mirrored side lacks bone in {:.0}% of the defect", 100.0 * (1.0 - mirror.coverage)),
            patch_copy(),
        ));
    }
    // Whether the mirror is consistent with the healthy bone around the defect: the mirrored tables
    // must meet the real ones on the ring (before the rim fit), up to a smooth correction. The patch
    // is no reference here: over a large opening it is the weaker estimate of the two.
    let ring = mirror.ring;
    let ring_note = format!(
        "ring: {:.0}% mirrored, {:.1} mm RMS, {:.1} mm after an affine correction",
        100.0 * ring.coverage,
        ring.rms_mm,
        ring.rough_mm
    );
    if ring.coverage < MIN_MIRROR_COVERAGE_RING
        || ring.rms_mm > MAX_RING_RMS_MM
        || ring.rough_mm > MAX_RING_ROUGH_MM
    {
        return Ok((
            Method::Patch,
            format!(
                "the mirrored bone does not match the rim ({ring_note}): the skull is not symmetric here"
            ),
            patch_copy(),
        ));
    }
    Ok((Method::Mirror, format!("one-sided defect; {plane_note}; {ring_note}"), mirror.tables))
}

/// Fills the voxels between the modelled tables where the skull has no bone, then cleans up:
/// clearance, thin rim slivers (an opening), and all but the largest piece.
#[allow(clippy::too_many_arguments)]
fn rasterise(
    skull: &LabelVolume,
    data: &[u8],
    frame: &Frame,
    chart: &Chart,
    hole: &[bool],
    r_in: &[f64],
    r_out: &[f64],
    clearance_mm: f64,
) -> Result<LabelVolume> {
    let g = skull.geometry();
    let [nz, ny, nx] = skull.shape();
    // Index-space box of the modelled bone.
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    let sampler = Sampler::new(skull, data);
    for c in 0..r_in.len() {
        if r_in[c].is_nan() {
            continue;
        }
        for r in [r_in[c] - 2.0, r_out[c] + 2.0] {
            let i = sampler.index(add(frame.centre, scale(chart.dir(c), r)));
            for k in 0..3 {
                lo[k] = lo[k].min(i[k]);
                hi[k] = hi[k].max(i[k]);
            }
        }
    }
    let dims = [nx, ny, nz];
    let lo: [usize; 3] = [0, 1, 2].map(|k| (lo[k].floor() - 1.0).clamp(0.0, dims[k] as f64 - 1.0) as usize);
    let hi: [usize; 3] = [0, 1, 2].map(|k| (hi[k].ceil() + 1.0).clamp(0.0, dims[k] as f64 - 1.0) as usize);
    let bs = [hi[2] - lo[2] + 1, hi[1] - lo[1] + 1, hi[0] - lo[0] + 1]; // z, y, x
    let s = chart.size();
    // 0 none, 1 over the opening, 2 over the widened rim.
    let mut boxed = vec![0u8; bs[0] * bs[1] * bs[2]];
    boxed.par_chunks_mut(bs[1] * bs[2]).enumerate().for_each(|(bz, slab)| {
        let z = lo[2] + bz;
        for by in 0..bs[1] {
            let y = lo[1] + by;
            for bx in 0..bs[2] {
                let x = lo[0] + bx;
                if data[(z * ny + y) * nx + x] != 0 {
                    continue;
                }
                let v = sub(g.index_to_world([x as f64, y as f64, z as f64]), frame.centre);
                let along = dot(v, chart.a);
                if along <= 1e-6 {
                    continue;
                }
                let fc = dot(v, chart.e1) / along / chart.h + chart.n as f64;
                let fr = dot(v, chart.e2) / along / chart.h + chart.n as f64;
                if fc < 0.0 || fr < 0.0 || fc > (s - 1) as f64 || fr > (s - 1) as f64 {
                    continue;
                }
                let nearest = fr.round() as usize * s + fc.round() as usize;
                if r_in[nearest].is_nan() {
                    continue;
                }
                let (c0, r0) = ((fc.floor() as usize).min(s - 2), (fr.floor() as usize).min(s - 2));
                let (tc, tr) = (fc - c0 as f64, fr - r0 as f64);
                let (mut w_sum, mut a_in, mut a_out) = (0.0, 0.0, 0.0);
                for (dr, dc, w) in [
                    (0, 0, (1.0 - tr) * (1.0 - tc)),
                    (0, 1, (1.0 - tr) * tc),
                    (1, 0, tr * (1.0 - tc)),
                    (1, 1, tr * tc),
                ] {
                    let cell = (r0 + dr) * s + c0 + dc;
                    if !r_in[cell].is_nan() && w > 0.0 {
                        w_sum += w;
                        a_in += w * r_in[cell];
                        a_out += w * r_out[cell];
                    }
                }
                if w_sum <= 0.0 {
                    continue;
                }
                let r = norm(v);
                if r >= a_in / w_sum && r <= a_out / w_sum {
                    slab[by * bs[2] + bx] = if hole[nearest] { 1 } else { 2 };
                }
            }
        }
    });
    let idx = |z: usize, y: usize, x: usize| (z * bs[1] + y) * bs[2] + x;
    // Clearance: drop voxels nearer than clearance_mm to bone.
    if clearance_mm > 0.0 {
        let sp = g.spacing();
        // The gap between voxel boxes is the centre distance less a voxel: a voxel goes when its
        // centre is nearer to a bone voxel's than clearance + one (smallest) voxel side.
        let limit = clearance_mm + 0.999 * sp.iter().copied().fold(f64::INFINITY, f64::min);
        let reach = [0, 1, 2].map(|k| (limit / sp[k]).ceil() as isize);
        let mut offsets = Vec::new();
        for dz in -reach[2]..=reach[2] {
            for dy in -reach[1]..=reach[1] {
                for dx in -reach[0]..=reach[0] {
                    let d = ((dx as f64 * sp[0]).powi(2)
                        + (dy as f64 * sp[1]).powi(2)
                        + (dz as f64 * sp[2]).powi(2))
                    .sqrt();
                    if d < limit && (dx, dy, dz) != (0, 0, 0) {
                        offsets.push((dz, dy, dx));
                    }
                }
            }
        }
        let near_bone: Vec<bool> = (0..boxed.len())
            .into_par_iter()
            .map(|i| {
                if boxed[i] == 0 {
                    return false;
                }
                let (bz, by, bx) = (i / (bs[1] * bs[2]), i / bs[2] % bs[1], i % bs[2]);
                let (z, y, x) = ((lo[2] + bz) as isize, (lo[1] + by) as isize, (lo[0] + bx) as isize);
                offsets.iter().any(|&(dz, dy, dx)| {
                    let (zz, yy, xx) = (z + dz, y + dy, x + dx);
                    zz >= 0
                        && yy >= 0
                        && xx >= 0
                        && (zz as usize) < nz
                        && (yy as usize) < ny
                        && (xx as usize) < nx
                        && data[((zz as usize) * ny + yy as usize) * nx + xx as usize] != 0
                })
            })
            .collect();
        for (v, n) in boxed.iter_mut().zip(near_bone) {
            if n {
                *v = 0;
            }
        }
    }
    // Opening (6-neighbour erosion then dilation) of the rim zone: drops one-voxel slivers along the
    // remaining bone where the modelled tables run a hair outside the real ones.
    let inside = |v: &[u8], z: isize, y: isize, x: isize| {
        z >= 0
            && y >= 0
            && x >= 0
            && (z as usize) < bs[0]
            && (y as usize) < bs[1]
            && (x as usize) < bs[2]
            && v[idx(z as usize, y as usize, x as usize)] != 0
    };
    const SIX: [(isize, isize, isize); 6] =
        [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)];
    let eroded: Vec<bool> = (0..boxed.len())
        .map(|i| {
            let (z, y, x) =
                ((i / (bs[1] * bs[2])) as isize, (i / bs[2] % bs[1]) as isize, (i % bs[2]) as isize);
            boxed[i] != 0 && SIX.iter().all(|&(dz, dy, dx)| inside(&boxed, z + dz, y + dy, x + dx))
        })
        .collect();
    let mut cleaned = vec![0u8; boxed.len()];
    for i in 0..boxed.len() {
        if boxed[i] == 0 {
            continue;
        }
        let (z, y, x) = ((i / (bs[1] * bs[2])) as isize, (i / bs[2] % bs[1]) as isize, (i % bs[2]) as isize);
        let opened = eroded[i]
            || SIX.iter().any(|&(dz, dy, dx)| {
                let (zz, yy, xx) = (z + dz, y + dy, x + dx);
                inside(&boxed, zz, yy, xx) && eroded[idx(zz as usize, yy as usize, xx as usize)]
            });
        if boxed[i] == 1 || opened {
            cleaned[i] = 1;
        }
    }
    let cleaned = largest_component(&cleaned, bs);
    if !cleaned.iter().any(|&v| v != 0) {
        return Err(Error::EmptyImplant {
            stage: if clearance_mm > 0.0 { "the clearance" } else { "clean-up" },
        });
    }
    let mut out = Array3::<u8>::zeros((nz, ny, nx));
    for bz in 0..bs[0] {
        for by in 0..bs[1] {
            for bx in 0..bs[2] {
                if cleaned[idx(bz, by, bx)] != 0 {
                    out[[lo[2] + bz, lo[1] + by, lo[0] + bx]] = 1;
                }
            }
        }
    }
    Ok(skull.with_data(out)?)
}

/// Keeps the largest 6-connected piece.
fn largest_component(v: &[u8], bs: [usize; 3]) -> Vec<u8> {
    let mut comp = vec![u32::MAX; v.len()];
    let mut best = (0usize, u32::MAX);
    let mut next = 0u32;
    let mut stack = Vec::new();
    for seed in 0..v.len() {
        if v[seed] == 0 || comp[seed] != u32::MAX {
            continue;
        }
        comp[seed] = next;
        stack.push(seed);
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (z, y, x) = (i / (bs[1] * bs[2]), i / bs[2] % bs[1], i % bs[2]);
            let mut visit = |j: usize| {
                if v[j] != 0 && comp[j] == u32::MAX {
                    comp[j] = next;
                    stack.push(j);
                }
            };
            if z > 0 {
                visit(i - bs[1] * bs[2]);
            }
            if z + 1 < bs[0] {
                visit(i + bs[1] * bs[2]);
            }
            if y > 0 {
                visit(i - bs[2]);
            }
            if y + 1 < bs[1] {
                visit(i + bs[2]);
            }
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < bs[2] {
                visit(i + 1);
            }
        }
        if size > best.0 {
            best = (size, next);
        }
        next += 1;
    }
    comp.iter().map(|&c| u8::from(c == best.1 && c != u32::MAX)).collect()
}

/// The implant's surface: marching cubes of its label on a crop of the grid (one voxel of margin).
fn implant_mesh(labels: &LabelVolume) -> Result<Mesh> {
    let [nz, ny, nx] = labels.shape();
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for ((z, y, x), &v) in labels.data().indexed_iter() {
        if v != 0 {
            for (k, i) in [x, y, z].into_iter().enumerate() {
                lo[k] = lo[k].min(i);
                hi[k] = hi[k].max(i);
            }
        }
    }
    let dims = [nx, ny, nz];
    let lo = lo.map(|v| v.saturating_sub(1));
    let hi: [usize; 3] = [0, 1, 2].map(|k| (hi[k] + 1).min(dims[k] - 1));
    let crop = labels.data().slice(ndarray::s![lo[2]..=hi[2], lo[1]..=hi[1], lo[0]..=hi[0]]).to_owned();
    let g = labels.geometry();
    let origin = g.index_to_world([lo[0] as f64, lo[1] as f64, lo[2] as f64]);
    let geometry = Geometry::new(g.spacing(), origin, g.direction())?;
    let mesh = label_surface(&LabelVolume::new(crop, geometry)?, 1)?;
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chart of 21 × 21 one-degree cells looking along +z from a centre at the origin, at 80 mm.
    fn chart() -> Chart {
        let (e1, e2) = basis([0.0, 0.0, 1.0]);
        Chart { a: [0.0, 0.0, 1.0], e1, e2, h: 1.0 / 80.0, n: 10, radius: 80.0 }
    }

    /// Tables at `r(u)` (mm, u the column offset in mm at 80 mm) and 6 mm thick.
    fn tables(chart: &Chart, r: impl Fn(f64) -> f64) -> Vec<Option<Crossing>> {
        (0..chart.size() * chart.size())
            .map(|c| {
                let r_in = r(chart.mm(c)[0]);
                Some(Crossing { r_in, r_out: r_in + 6.0 })
            })
            .collect()
    }

    #[test]
    fn grazing_rays_are_those_meeting_steep_tables() {
        let chart = chart();
        let centre = chart.size() * chart.size() / 2;
        // A sphere around the centre (rays meet it head-on), with the voxel staircase (±0.5 mm).
        let sphere = tables(&chart, |u| 75.0 + if (u as i64) % 2 == 0 { 0.5 } else { -0.5 });
        assert!(!grazing(&chart, &sphere, centre));
        // Tables tilted 45° (1 mm out per mm across) are still met well enough.
        assert!(!grazing(&chart, &tables(&chart, |u| 75.0 + u), centre));
        // A floor seen along the rays: 3 mm per mm (72°) grazes.
        assert!(grazing(&chart, &tables(&chart, |u| 75.0 + 3.0 * u), centre));
        // No bone at all counts as grazing (the ray is not usable).
        let mut hole = sphere.clone();
        hole[centre] = None;
        assert!(grazing(&chart, &hole, centre));
    }
}
