//! The solid primitives the head is built from, as approximate signed distances.
//!
//! Exact distances are not needed: a distance only sets how much of a voxel a surface covers
//! (partial volume over about one voxel), and which side the voxel centre is on, which the sign gets
//! exactly. Each part carries a bounding box so that a voxel far from it costs six comparisons.

/// The distance from a point to a surface (mm in the part's frame, negative inside) and the
/// surface's outward unit normal there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    /// Signed distance, negative inside.
    pub d: f64,
    /// Outward unit normal.
    pub n: [f64; 3],
}

/// What a point far outside a part's bounding box gets: far away, any normal.
pub(crate) const MISS: Hit = Hit { d: 1e9, n: [0.0, 0.0, 1.0] };

/// A solid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// An ellipsoid with centre `c` and semi-axes `a`.
    Ellipsoid { c: [f64; 3], a: [f64; 3] },
    /// The points within `r` of the segment `p`–`q`, with offsets from the segment scaled by `k`
    /// first (so `k = [1, 1, 0.3]` gives a cross-section 3.3 times taller than wide).
    Capsule { p: [f64; 3], q: [f64; 3], r: f64, k: [f64; 3] },
    /// A horizontal elliptical ring (a vertebral arch): the points within `r` of the ellipse with
    /// centre `c` and semi-axes `rx`, `ry` in the plane `z = c[2]`.
    Ring { c: [f64; 3], rx: f64, ry: f64, r: f64 },
}

/// A shape with its bounding box.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    shape: Shape,
    lo: [f64; 3],
    hi: [f64; 3],
}

/// How far beyond a part its bounding box reaches: more than half the widest partial-volume ramp.
const MARGIN: f64 = 8.0;

impl Part {
    pub(crate) fn new(shape: Shape) -> Part {
        let (lo, hi) = match &shape {
            Shape::Ellipsoid { c, a } => (sub(*c, *a), add(*c, *a)),
            Shape::Capsule { p, q, r, k } => {
                // The cross-section reaches r / k along each axis.
                let reach = [r / k[0], r / k[1], r / k[2]];
                let lo = [0, 1, 2].map(|i| p[i].min(q[i]) - reach[i]);
                let hi = [0, 1, 2].map(|i| p[i].max(q[i]) + reach[i]);
                (lo, hi)
            }
            Shape::Ring { c, rx, ry, r } => {
                ([c[0] - rx - r, c[1] - ry - r, c[2] - r], [c[0] + rx + r, c[1] + ry + r, c[2] + r])
            }
        };
        Part { shape, lo: lo.map(|v| v - MARGIN), hi: hi.map(|v| v + MARGIN) }
    }

    /// Whether `x` is inside the bounding box, where [`Part::hit`] is worth computing.
    pub(crate) fn near(&self, x: [f64; 3]) -> bool {
        (0..3).all(|i| x[i] >= self.lo[i] && x[i] <= self.hi[i])
    }

    /// The signed distance and normal at `x`, or [`MISS`] outside the bounding box.
    pub(crate) fn hit(&self, x: [f64; 3]) -> Hit {
        if !self.near(x) {
            return MISS;
        }
        match &self.shape {
            Shape::Ellipsoid { c, a } => ellipsoid(sub(x, *c), *a),
            Shape::Capsule { p, q, r, k } => {
                let pq = sub(*q, *p);
                let len2 = dot(pq, pq).max(1e-12);
                let h = (dot(sub(x, *p), pq) / len2).clamp(0.0, 1.0);
                let v = sub(x, [p[0] + h * pq[0], p[1] + h * pq[1], p[2] + h * pq[2]]);
                let vk = [v[0] * k[0], v[1] * k[1], v[2] * k[2]];
                let len = norm(vk);
                Hit { d: len - r, n: unit([vk[0] * k[0], vk[1] * k[1], vk[2] * k[2]]) }
            }
            Shape::Ring { c, rx, ry, r } => {
                let d = sub(x, *c);
                let theta = (d[1] / ry).atan2(d[0] / rx);
                let v = [d[0] - rx * theta.cos(), d[1] - ry * theta.sin(), d[2]];
                Hit { d: norm(v) - r, n: unit(v) }
            }
        }
    }
}

/// Distance bound for an ellipsoid (the first-order estimate `k0 (k0 − 1) / k1`, good near the
/// surface, which is where it matters).
fn ellipsoid(p: [f64; 3], a: [f64; 3]) -> Hit {
    let pa = [p[0] / a[0], p[1] / a[1], p[2] / a[2]];
    let pa2 = [pa[0] / a[0], pa[1] / a[1], pa[2] / a[2]];
    let k0 = norm(pa);
    let k1 = norm(pa2);
    if k1 < 1e-12 {
        return Hit { d: -a[0].min(a[1]).min(a[2]), n: [0.0, 0.0, 1.0] };
    }
    Hit { d: k0 * (k0 - 1.0) / k1, n: unit(pa2) }
}

/// The union of hits: the nearest surface.
pub(crate) fn union(parts: &[Part], x: [f64; 3]) -> Hit {
    parts.iter().map(|p| p.hit(x)).fold(MISS, |best, h| if h.d < best.d { h } else { best })
}

pub(crate) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

pub(crate) fn unit(a: [f64; 3]) -> [f64; 3] {
    let n = norm(a);
    if n < 1e-12 { [0.0, 0.0, 1.0] } else { [a[0] / n, a[1] / n, a[2] / n] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_have_the_right_sign_and_size_near_the_surface() {
        let e = Part::new(Shape::Ellipsoid { c: [0.0; 3], a: [10.0, 20.0, 30.0] });
        assert!((e.hit([11.0, 0.0, 0.0]).d - 1.0).abs() < 0.2);
        assert!(e.hit([0.0, 19.0, 0.0]).d < 0.0);
        let c = Part::new(Shape::Capsule { p: [0.0; 3], q: [0.0, 0.0, 10.0], r: 2.0, k: [1.0; 3] });
        assert!((c.hit([3.0, 0.0, 5.0]).d - 1.0).abs() < 1e-9);
        assert_eq!(c.hit([100.0, 0.0, 0.0]), MISS);
        let r = Part::new(Shape::Ring { c: [0.0; 3], rx: 10.0, ry: 10.0, r: 2.0 });
        assert!((r.hit([10.0, 0.0, 1.0]).d + 1.0).abs() < 1e-9);
        assert!(r.hit([0.0, 0.0, 0.0]).d > 0.0);
    }
}
