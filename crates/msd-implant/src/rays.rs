//! Bone look-ups in world millimetres and rays cast from the skull's centre.
use msd_io::LabelVolume;

pub(crate) type V3 = [f64; 3];

pub(crate) fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}
pub(crate) fn normalize(a: V3) -> V3 {
    let n = norm(a);
    if n > 0.0 { scale(a, 1.0 / n) } else { a }
}
pub(crate) fn cross(a: V3, b: V3) -> V3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Two unit vectors completing `a` (unit) to a right-handed orthonormal basis.
pub(crate) fn basis(a: V3) -> (V3, V3) {
    let helper = if a[2].abs() < 0.9 { [0.0, 0.0, 1.0] } else { [1.0, 0.0, 0.0] };
    let e1 = normalize(cross(helper, a));
    let e2 = cross(a, e1);
    (e1, e2)
}

/// Whether a world point is bone, by the nearest voxel; outside the grid is not bone.
pub(crate) struct Sampler<'a> {
    data: &'a [u8],
    shape: [usize; 3],
    origin: V3,
    /// World offset → continuous index (x, y, z): the inverse of direction · diag(spacing).
    inv: [[f64; 3]; 3],
}

impl<'a> Sampler<'a> {
    pub(crate) fn new(labels: &'a LabelVolume, data: &'a [u8]) -> Self {
        let g = labels.geometry();
        let (d, s) = (g.direction(), g.spacing());
        let mut m = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] = d[r][c] * s[c];
            }
        }
        Sampler { data, shape: labels.shape(), origin: g.origin(), inv: invert3(&m) }
    }

    /// Continuous index (x, y, z) of a world point.
    pub(crate) fn index(&self, p: V3) -> V3 {
        let d = sub(p, self.origin);
        [0, 1, 2].map(|r| dot(self.inv[r], d))
    }

    pub(crate) fn bone(&self, p: V3) -> bool {
        let i = self.index(p);
        let [nz, ny, nx] = self.shape;
        let (x, y, z) = (i[0].round(), i[1].round(), i[2].round());
        if x < 0.0 || y < 0.0 || z < 0.0 || x >= nx as f64 || y >= ny as f64 || z >= nz as f64 {
            return false;
        }
        self.data[((z as usize) * ny + y as usize) * nx + x as usize] != 0
    }
}

pub(crate) fn invert3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
        }
    }
    inv
}

/// Where a ray from the centre crosses the shell: the first run of bone, from the inner table
/// (`r_in`) to the outer table (`r_out`), gaps up to `gap` mm bridged (diploë, noise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Crossing {
    pub(crate) r_in: f64,
    pub(crate) r_out: f64,
}

/// Ray-casting parameters: step and bridged gap in mm, largest distance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RayCaster {
    pub(crate) step: f64,
    pub(crate) gap: f64,
    pub(crate) t_max: f64,
}

impl RayCaster {
    pub(crate) fn cast(&self, s: &Sampler<'_>, origin: V3, dir: V3) -> Option<Crossing> {
        let n = (self.t_max / self.step).ceil() as usize;
        let mut first = None;
        let mut last = 0.0;
        for k in 1..=n {
            let t = k as f64 * self.step;
            let bone = s.bone(add(origin, scale(dir, t)));
            match (first, bone) {
                (None, true) => {
                    first = Some(t);
                    last = t;
                }
                (Some(_), true) => last = t,
                (Some(_), false) if t - last > self.gap => break,
                _ => {}
            }
        }
        // Half a step either side: the crossing lies between the samples.
        first.map(|f| Crossing { r_in: f - 0.5 * self.step, r_out: last + 0.5 * self.step })
    }
}
