//! Thin-plate splines in the plane (Duchon 1977; Bookstein 1989): the smoothest surface
//! f(x, y) = a₀ + a₁x + a₂y + Σ wᵢ φ(|p − pᵢ|), φ(r) = r² ln r, through (or, with smoothing λ,
//! near) values given at control points. It minimises the bending energy ∫ f_xx² + 2f_xy² + f_yy²,
//! the biharmonic interpolant of scattered data: the patch spanning a skull defect's rim.

/// Solves `a · x = b` for several right-hand sides by Gaussian elimination with partial pivoting;
/// `None` for a singular matrix.
pub(crate) fn solve_dense(mut a: Vec<Vec<f64>>, mut rhs: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for b in rhs.iter_mut() {
            b.swap(col, piv);
        }
        let pivot_row = a[col].clone();
        for r in col + 1..n {
            let f = a[r][col] / pivot_row[col];
            if f == 0.0 {
                continue;
            }
            for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            for b in rhs.iter_mut() {
                b[r] -= f * b[col];
            }
        }
    }
    for b in rhs.iter_mut() {
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|c| a[r][c] * b[c]).sum();
            b[r] = (b[r] - s) / a[r][r];
        }
    }
    rhs.iter().all(|b| b.iter().all(|v| v.is_finite())).then_some(rhs)
}

fn phi(r2: f64) -> f64 {
    if r2 <= 0.0 { 0.0 } else { 0.5 * r2 * r2.ln() }
}

/// A fitted thin-plate spline for several fields sharing control points.
pub(crate) struct Tps {
    ctrl: Vec<[f64; 2]>,
    centre: [f64; 2],
    /// Per field: n kernel weights then a₀, a₁, a₂.
    coef: Vec<Vec<f64>>,
}

impl Tps {
    /// Fits one spline per field (`values[f][i]` at `ctrl[i]`), with smoothing `lambda` (0:
    /// interpolation; larger: a smoother surface that passes near noisy control values).
    pub(crate) fn fit(ctrl: &[[f64; 2]], values: &[Vec<f64>], lambda: f64) -> Option<Tps> {
        let n = ctrl.len();
        if n < 3 {
            return None;
        }
        let mut centre = [0.0; 2];
        for p in ctrl {
            centre[0] += p[0] / n as f64;
            centre[1] += p[1] / n as f64;
        }
        let ctrl: Vec<[f64; 2]> = ctrl.iter().map(|p| [p[0] - centre[0], p[1] - centre[1]]).collect();
        let m = n + 3;
        let mut a = vec![vec![0.0; m]; m];
        for i in 0..n {
            for j in 0..n {
                let (dx, dy) = (ctrl[i][0] - ctrl[j][0], ctrl[i][1] - ctrl[j][1]);
                a[i][j] = phi(dx * dx + dy * dy);
            }
            a[i][i] += lambda;
            let p = [1.0, ctrl[i][0], ctrl[i][1]];
            for k in 0..3 {
                a[i][n + k] = p[k];
                a[n + k][i] = p[k];
            }
        }
        let rhs: Vec<Vec<f64>> = values
            .iter()
            .map(|v| {
                let mut b = v.clone();
                b.resize(m, 0.0);
                b
            })
            .collect();
        let coef = solve_dense(a, rhs)?;
        Some(Tps { ctrl, centre, coef })
    }

    /// The fields' values at `p`, written to `out` (one per field).
    pub(crate) fn eval(&self, p: [f64; 2], out: &mut [f64]) {
        let (x, y) = (p[0] - self.centre[0], p[1] - self.centre[1]);
        let n = self.ctrl.len();
        for (o, c) in out.iter_mut().zip(&self.coef) {
            *o = c[n] + c[n + 1] * x + c[n + 2] * y;
        }
        for (i, q) in self.ctrl.iter().enumerate() {
            let (dx, dy) = (x - q[0], y - q[1]);
            let k = phi(dx * dx + dy * dy);
            for (o, c) in out.iter_mut().zip(&self.coef) {
                *o += c[i] * k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_a_plane_and_interpolates_control_values() {
        let ctrl: Vec<[f64; 2]> =
            (0..30).map(|i| [(i % 6) as f64 * 3.0, (i / 6) as f64 * 4.0 + 0.3 * (i % 2) as f64]).collect();
        let plane: Vec<f64> = ctrl.iter().map(|p| 2.0 + 0.5 * p[0] - 0.25 * p[1]).collect();
        let bumpy: Vec<f64> = ctrl.iter().map(|p| (p[0] * 0.3).sin() + p[1] * p[1] * 0.01).collect();
        let tps = Tps::fit(&ctrl, &[plane, bumpy.clone()], 0.0).unwrap();
        let mut out = [0.0; 2];
        tps.eval([7.7, 5.1], &mut out);
        assert!((out[0] - (2.0 + 0.5 * 7.7 - 0.25 * 5.1)).abs() < 1e-8, "{out:?}");
        for (p, v) in ctrl.iter().zip(&bumpy) {
            tps.eval(*p, &mut out);
            assert!((out[1] - v).abs() < 1e-7);
        }
    }

    #[test]
    fn dense_solver_rejects_singular_systems() {
        let a = vec![vec![1.0, 2.0], vec![2.0, 4.0]];
        assert!(solve_dense(a, vec![vec![1.0, 2.0]]).is_none());
        let x = solve_dense(vec![vec![0.0, 1.0], vec![2.0, 0.0]], vec![vec![3.0, 4.0]]).unwrap();
        assert_eq!(x[0], vec![2.0, 3.0]);
    }
}
