//! The skull's frame and its openings: a centre inside the cranial cavity (a sphere fitted to the
//! vault), rays cast from it in every direction, and the directions where no ray meets bone
//! grouped into openings, each classified as a defect or a natural opening.
use msd_io::LabelVolume;
use rayon::prelude::*;

use crate::rays::{Crossing, RayCaster, Sampler, V3, add, dot, normalize, scale};
use crate::{Error, Result};

/// Depth below the skull's top used to fit the vault sphere (mm).
const VAULT_DEPTH_MM: f64 = 70.0;
/// Openings narrower than this (mm, equivalent diameter) are ignored: emissary foramina, noise.
const MIN_OPENING_MM: f64 = 10.0;
/// Openings narrower than this (mm) are not taken for defects unless pointed at: on the real
/// `cthead` skull the complete vault shows a 10 mm gap of thin frontal bone at the 300 HU threshold;
/// cranioplasty defects are larger (AutoImplant's are 30 mm and up).
const MIN_DEFECT_MM: f64 = 15.0;
/// Openings whose mean direction points lower than this (z component of the unit vector from the
/// centre) are natural: foramen magnum, orbits, the skull base.
const MIN_DEFECT_Z: f64 = -0.35;

/// The skull's frame: the centre rays are cast from and the ray-casting parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) centre: V3,
    pub(crate) vault_radius: f64,
    pub(crate) caster: RayCaster,
}

/// A direction grid over the whole sphere: polar angle θ from superior (+z), azimuth φ.
pub(crate) struct GlobalMap {
    pub(crate) nt: usize,
    pub(crate) np: usize,
    pub(crate) crossings: Vec<Option<Crossing>>,
}

impl GlobalMap {
    pub(crate) fn dir(&self, cell: usize) -> V3 {
        let (i, j) = (cell / self.np, cell % self.np);
        let t = (i as f64 + 0.5) * std::f64::consts::PI / self.nt as f64;
        let p = (j as f64 + 0.5) * 2.0 * std::f64::consts::PI / self.np as f64;
        [t.sin() * p.cos(), t.sin() * p.sin(), t.cos()]
    }

    pub(crate) fn cell_of(&self, d: V3) -> usize {
        let d = normalize(d);
        let t = d[2].clamp(-1.0, 1.0).acos();
        let mut p = d[1].atan2(d[0]);
        if p < 0.0 {
            p += 2.0 * std::f64::consts::PI;
        }
        let i = ((t / std::f64::consts::PI * self.nt as f64) as usize).min(self.nt - 1);
        let j = ((p / (2.0 * std::f64::consts::PI) * self.np as f64) as usize).min(self.np - 1);
        i * self.np + j
    }

    pub(crate) fn solid_angle(&self, cell: usize) -> f64 {
        let i = cell / self.np;
        let dt = std::f64::consts::PI / self.nt as f64;
        let t = (i as f64 + 0.5) * dt;
        t.sin() * dt * 2.0 * std::f64::consts::PI / self.np as f64
    }

    fn neighbours(&self, cell: usize) -> impl Iterator<Item = usize> + '_ {
        let (i, j) = (cell / self.np, cell % self.np);
        let np = self.np;
        let left = i * np + (j + np - 1) % np;
        let right = i * np + (j + 1) % np;
        // Across a pole: the cell on the other side of it.
        let up = if i > 0 { (i - 1) * np + j } else { (j + np / 2) % np };
        let down = if i + 1 < self.nt { (i + 1) * np + j } else { i * np + (j + np / 2) % np };
        [left, right, up, down].into_iter()
    }
}

/// An opening in the skull's shell as seen from its centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// Centre on the shell's outer surface, LPS mm.
    pub centre_mm: [f64; 3],
    /// Unit direction from the skull's centre to the opening.
    pub direction: [f64; 3],
    /// Diameter of the circle of the same area on the shell (mm).
    pub diameter_mm: f64,
    /// Whether it was classified as a natural opening (skull base, orbits, foramen magnum).
    pub natural: bool,
    pub(crate) cells: Vec<usize>,
}

impl Frame {
    pub(crate) fn estimate(skull: &LabelVolume, data: &[u8]) -> Result<Frame> {
        let g = skull.geometry();
        let [nz, ny, nx] = skull.shape();
        // World points of bone voxels (a sparse subsample keeps this fast on 512² × 250 volumes).
        let stride = ((skull.len() as f64 / 4.0e6).cbrt().ceil() as usize).max(1);
        let mut pts: Vec<V3> = Vec::new();
        for z in (0..nz).step_by(stride) {
            for y in (0..ny).step_by(stride) {
                for x in (0..nx).step_by(stride) {
                    if data[(z * ny + y) * nx + x] != 0 {
                        pts.push(g.index_to_world([x as f64, y as f64, z as f64]));
                    }
                }
            }
        }
        if pts.len() < 50 {
            return Err(Error::NotASkull { what: format!("only {} bone voxels in the sample", pts.len()) });
        }
        let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
        for p in &pts {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let extent = [0, 1, 2].map(|k| hi[k] - lo[k]);
        if extent[0] < 60.0 || extent[1] < 60.0 {
            return Err(Error::NotASkull {
                what: format!(
                    "the bone spans {:.0} × {:.0} × {:.0} mm (x, y, z); a skull spans more than 60 mm across",
                    extent[0], extent[1], extent[2]
                ),
            });
        }
        let vault: Vec<V3> = pts.iter().copied().filter(|p| p[2] >= hi[2] - VAULT_DEPTH_MM).collect();
        let (centre, radius) = fit_sphere(&vault).ok_or_else(|| Error::NotASkull {
            what: "no sphere fits the top of the bone (is the label a skull?)".into(),
        })?;
        if !(35.0..=160.0).contains(&radius) {
            return Err(Error::NotASkull {
                what: format!(
                    "the top of the bone fits a sphere of radius {radius:.0} mm; a vault has 50–110 mm"
                ),
            });
        }
        let corners = (0..8).map(|c| {
            [
                if c & 1 == 0 { lo[0] } else { hi[0] },
                if c & 2 == 0 { lo[1] } else { hi[1] },
                if c & 4 == 0 { lo[2] } else { hi[2] },
            ]
        });
        let t_max = corners.map(|p| crate::rays::norm(crate::rays::sub(p, centre))).fold(0.0, f64::max) + 2.0;
        let sp = g.spacing();
        let min_sp = sp.iter().copied().fold(f64::INFINITY, f64::min);
        let max_sp = sp.iter().copied().fold(0.0, f64::max);
        let caster = RayCaster { step: (0.5 * min_sp).min(0.5), gap: 1.6 * max_sp, t_max };
        Ok(Frame { centre, vault_radius: radius, caster })
    }

    pub(crate) fn global_map(&self, sampler: &Sampler<'_>) -> GlobalMap {
        let (nt, np) = (180, 360);
        let mut map = GlobalMap { nt, np, crossings: Vec::new() };
        let crossings: Vec<Option<Crossing>> = (0..nt * np)
            .into_par_iter()
            .map(|c| self.caster.cast(sampler, self.centre, map.dir(c)))
            .collect();
        map.crossings = crossings;
        map
    }

    /// Checks there is a shell around the centre: most directions above it meet bone.
    pub(crate) fn check_shell(&self, map: &GlobalMap) -> Result<()> {
        let upper: Vec<usize> = (0..map.nt / 2 * map.np).collect();
        let hit: f64 =
            upper.iter().filter(|&&c| map.crossings[c].is_some()).map(|&c| map.solid_angle(c)).sum();
        let all: f64 = upper.iter().map(|&c| map.solid_angle(c)).sum();
        if hit < 0.6 * all {
            return Err(Error::NotASkull {
                what: format!(
                    "only {:.0}% of the directions above the vault's centre {} mm meet bone; a skull's vault is a closed shell",
                    100.0 * hit / all,
                    crate::error::fmt_point(&self.centre)
                ),
            });
        }
        Ok(())
    }

    /// The openings of the shell, largest first.
    pub(crate) fn openings(&self, map: &GlobalMap) -> Vec<Opening> {
        let n = map.nt * map.np;
        let mut comp = vec![usize::MAX; n];
        let mut out = Vec::new();
        for seed in 0..n {
            if map.crossings[seed].is_some() || comp[seed] != usize::MAX {
                continue;
            }
            let id = out.len();
            let mut cells = vec![seed];
            comp[seed] = id;
            let mut k = 0;
            let mut rim_r = Vec::new();
            while k < cells.len() {
                let c = cells[k];
                k += 1;
                for nb in map.neighbours(c) {
                    match map.crossings[nb] {
                        Some(x) => rim_r.push(x.r_out),
                        None if comp[nb] == usize::MAX => {
                            comp[nb] = id;
                            cells.push(nb);
                        }
                        None => {}
                    }
                }
            }
            let touches_bottom = cells.iter().any(|&c| c / map.np == map.nt - 1);
            let omega: f64 = cells.iter().map(|&c| map.solid_angle(c)).sum();
            let mut mean = [0.0; 3];
            for &c in &cells {
                mean = add(mean, scale(map.dir(c), map.solid_angle(c)));
            }
            let direction = normalize(mean);
            rim_r.sort_by(f64::total_cmp);
            let r = rim_r.get(rim_r.len() / 2).copied().unwrap_or(self.vault_radius);
            let diameter_mm = 2.0 * (omega * r * r / std::f64::consts::PI).sqrt();
            let natural = touches_bottom || direction[2] < MIN_DEFECT_Z || diameter_mm < MIN_DEFECT_MM;
            out.push(Opening {
                centre_mm: add(self.centre, scale(direction, r)),
                direction,
                diameter_mm,
                natural,
                cells,
            });
        }
        out.retain(|o| o.diameter_mm >= MIN_OPENING_MM);
        out.sort_by(|a, b| b.diameter_mm.total_cmp(&a.diameter_mm));
        out
    }

    /// The angle (radians) from `dir` to the nearest direction of an opening.
    pub(crate) fn angle_to(&self, map: &GlobalMap, opening: &Opening, dir: V3) -> f64 {
        let d = normalize(dir);
        opening
            .cells
            .iter()
            .map(|&c| dot(map.dir(c), d).clamp(-1.0, 1.0).acos())
            .fold(f64::INFINITY, f64::min)
    }
}

/// Least-squares sphere through points: |p|² = 2 c·p + k, radius² = k + |c|².
pub(crate) fn fit_sphere(pts: &[V3]) -> Option<(V3, f64)> {
    if pts.len() < 10 {
        return None;
    }
    let mut a = [[0.0f64; 4]; 4];
    let mut b = [0.0f64; 4];
    for p in pts {
        let row = [2.0 * p[0], 2.0 * p[1], 2.0 * p[2], 1.0];
        let rhs = dot(*p, *p);
        for r in 0..4 {
            for c in 0..4 {
                a[r][c] += row[r] * row[c];
            }
            b[r] += row[r] * rhs;
        }
    }
    let x = crate::tps::solve_dense(a.iter().map(|r| r.to_vec()).collect(), vec![b.to_vec()])?;
    let x = &x[0];
    let c = [x[0], x[1], x[2]];
    let r2 = x[3] + dot(c, c);
    (r2 > 0.0).then(|| (c, r2.sqrt()))
}
