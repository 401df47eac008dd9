//! From sorted slices to a regular grid: slice order along the normal, spacing from the positions,
//! detection of gantry tilt and uneven spacing, and the resampling that makes such series regular.
use std::path::Path;

use ndarray::Array3;

use super::scan::{Frame, Instance};
use super::{ReadOptions, Resampling};
use crate::{Error, Geometry, Result, Volume};

/// Orientation cosines may differ by this much between slices of one series.
const ORIENTATION_TOLERANCE: f64 = 1e-3;
/// A mean slice step more than this far (degrees) from the normal is a gantry tilt (as the manifest
/// of the conformance data and dcm2niix define it).
const TILT_ANGLE_DEG: f64 = 0.1;
/// In-plane offset (fraction of a pixel) of any slice that counts as shear even without a mean tilt.
const SHEAR_PIXELS: f64 = 0.05;

/// The slices of one series, sorted along the normal, with what the grid needs.
pub(crate) struct Plan<'a> {
    /// (instance, frame index into `Instance::frames`) in sorted order.
    pub slices: Vec<(&'a Instance, usize)>,
    pub rows: usize,
    pub columns: usize,
    /// Spacing along x (between columns) and y (between rows), in mm.
    pub pixel: [f64; 2],
    pub row_dir: [f64; 3],
    pub col_dir: [f64; 3],
    pub normal: [f64; 3],
}

/// What the grid check found and did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GridReport {
    pub tilt_deg: f64,
    pub resampled_tilt: bool,
    pub resampled_spacing: bool,
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn add_scaled(a: [f64; 3], b: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
fn unit(a: [f64; 3]) -> [f64; 3] {
    let n = norm(a);
    [a[0] / n, a[1] / n, a[2] / n]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Checks that the frames form one stack (same size, orientation and pixel spacing, distinct
/// positions) and sorts them by position along the slice normal.
pub(crate) fn plan<'a>(path: &Path, uid: &str, frames: Vec<(&'a Instance, usize)>) -> Result<Plan<'a>> {
    let err = |what: String| Error::Dicom { path: path.to_path_buf(), what: format!("series {uid}: {what}") };
    let (first, f0) = frames[0];
    let frame0: &Frame = &first.frames[f0];
    let o = frame0.orientation;
    let (row_dir, col_dir) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let (rn, cn) = (norm(row_dir), norm(col_dir));
    if (rn - 1.0).abs() > 1e-2 || (cn - 1.0).abs() > 1e-2 || dot(row_dir, col_dir).abs() > 1e-2 {
        return Err(err(format!("ImageOrientationPatient {o:?} is not two orthogonal unit vectors")));
    }
    let row_dir = unit(row_dir);
    let col_dir = unit(sub(
        col_dir,
        [
            row_dir[0] * dot(row_dir, col_dir),
            row_dir[1] * dot(row_dir, col_dir),
            row_dir[2] * dot(row_dir, col_dir),
        ],
    ));
    let normal = unit(cross(row_dir, col_dir));
    for &(inst, f) in &frames {
        let fr = &inst.frames[f];
        if inst.rows != first.rows || inst.columns != first.columns {
            return Err(err(format!(
                "mixed image sizes: {} is {}×{} (rows×columns), {} is {}×{}",
                first.path.display(),
                first.rows,
                first.columns,
                inst.path.display(),
                inst.rows,
                inst.columns
            )));
        }
        if fr.orientation.iter().zip(o.iter()).any(|(a, b)| (a - b).abs() > ORIENTATION_TOLERANCE) {
            return Err(err(format!(
                "mixed orientations: {} has ImageOrientationPatient {:?}, {} has {:?}",
                first.path.display(),
                o,
                inst.path.display(),
                fr.orientation
            )));
        }
        let ps = frame0.pixel_spacing;
        if fr.pixel_spacing.iter().zip(ps.iter()).any(|(a, b)| (a - b).abs() > 1e-4 * b.max(1.0)) {
            return Err(err(format!(
                "mixed pixel spacings: {:?} mm in {}, {:?} mm in {}",
                ps,
                first.path.display(),
                fr.pixel_spacing,
                inst.path.display()
            )));
        }
        if inst.bits_allocated != first.bits_allocated {
            return Err(err(format!(
                "mixed BitsAllocated: {} and {}",
                first.bits_allocated, inst.bits_allocated
            )));
        }
    }
    let mut frames = frames;
    frames.sort_by(|a, b| {
        let pa = dot(a.0.frames[a.1].position, normal);
        let pb = dot(b.0.frames[b.1].position, normal);
        pa.total_cmp(&pb)
    });
    let pixel = [frame0.pixel_spacing[1], frame0.pixel_spacing[0]];
    let min_gap = 1e-3 * pixel[0].min(pixel[1]);
    for w in frames.windows(2) {
        let (a, b) = (&w[0].0.frames[w[0].1], &w[1].0.frames[w[1].1]);
        if (dot(b.position, normal) - dot(a.position, normal)).abs() < min_gap {
            return Err(err(format!(
                "two slices at the same position {:?} ({} and {}): the series holds more than one volume \
                 (echoes, phases, time points or diffusion directions)",
                a.position,
                w[0].0.path.display(),
                w[1].0.path.display()
            )));
        }
    }
    Ok(Plan {
        slices: frames,
        rows: first.rows as usize,
        columns: first.columns as usize,
        pixel,
        row_dir,
        col_dir,
        normal,
    })
}

/// Builds the volume from the decoded slices (in plan order), detecting gantry tilt and uneven spacing
/// and resampling them away or refusing, as `options` say.
pub(crate) fn assemble(
    path: &Path,
    uid: &str,
    plan: &Plan<'_>,
    slices: Vec<Vec<f32>>,
    options: &ReadOptions,
) -> Result<(Volume<f32>, GridReport)> {
    let n = plan.slices.len();
    let (rows, cols) = (plan.rows, plan.columns);
    let positions: Vec<[f64; 3]> = plan.slices.iter().map(|(i, f)| i.frames[*f].position).collect();
    let p0 = positions[0];
    let mut report = GridReport { tilt_deg: 0.0, resampled_tilt: false, resampled_spacing: false };
    let direction = [
        [plan.row_dir[0], plan.col_dir[0], plan.normal[0]],
        [plan.row_dir[1], plan.col_dir[1], plan.normal[1]],
        [plan.row_dir[2], plan.col_dir[2], plan.normal[2]],
    ];
    let to_array = |slices: Vec<Vec<f32>>, r: usize, c: usize| {
        let nz = slices.len();
        let mut flat: Vec<f32> = Vec::with_capacity(slices.iter().map(Vec::len).sum());
        for s in slices {
            flat.extend_from_slice(&s);
        }
        Array3::from_shape_vec((nz, r, c), flat).map_err(|e| Error::Dicom {
            path: path.to_path_buf(),
            what: format!("series {uid}: slice data does not fill {nz}×{r}×{c}: {e}"),
        })
    };
    if n == 1 {
        let dz = plan.slices[0].0.slice_spacing_tag.filter(|v| *v > 0.0).unwrap_or(1.0);
        let g = Geometry::new([plan.pixel[0], plan.pixel[1], dz], p0, direction)?;
        return Ok((Volume::new(to_array(slices, rows, cols)?, g)?, report));
    }
    // Position of every slice along the normal and its in-plane offset (pixels) from slice 0's grid.
    let along: Vec<f64> = positions.iter().map(|p| dot(sub(*p, p0), plan.normal)).collect();
    let offsets: Vec<[f64; 2]> = positions
        .iter()
        .zip(&along)
        .map(|(p, a)| {
            let d = add_scaled(sub(*p, p0), plan.normal, -a);
            [dot(d, plan.row_dir) / plan.pixel[0], dot(d, plan.col_dir) / plan.pixel[1]]
        })
        .collect();
    let total = sub(positions[n - 1], p0);
    report.tilt_deg = (along[n - 1] / norm(total)).clamp(-1.0, 1.0).acos().to_degrees();
    let max_offset = offsets.iter().map(|o| o[0].abs().max(o[1].abs())).fold(0.0, f64::max);
    let sheared = report.tilt_deg > TILT_ANGLE_DEG || max_offset > SHEAR_PIXELS;

    let mut slices = slices;
    let (mut out_rows, mut out_cols, mut origin) = (rows, cols, p0);
    if sheared {
        if options.gantry_tilt == Resampling::Refuse {
            return Err(Error::GantryTilt {
                path: path.to_path_buf(),
                series_uid: uid.into(),
                angle_deg: report.tilt_deg,
            });
        }
        // Shift each slice in its plane so all slices stack along the normal (as dcm2niix's tilt
        // correction does), growing the grid so no voxel is cut off; the new area is filled with
        // the series' minimum (air for CT).
        let fill = slices.iter().flatten().copied().fold(f32::INFINITY, f32::min);
        let (min_x, max_x) = offsets.iter().fold((0f64, 0f64), |(lo, hi), o| (lo.min(o[0]), hi.max(o[0])));
        let (min_y, max_y) = offsets.iter().fold((0f64, 0f64), |(lo, hi), o| (lo.min(o[1]), hi.max(o[1])));
        out_cols = cols + (max_x - min_x - 1e-6).ceil().max(0.0) as usize;
        out_rows = rows + (max_y - min_y - 1e-6).ceil().max(0.0) as usize;
        origin = add_scaled(
            add_scaled(p0, plan.row_dir, min_x * plan.pixel[0]),
            plan.col_dir,
            min_y * plan.pixel[1],
        );
        slices = slices
            .iter()
            .zip(&offsets)
            .map(|(s, o)| shift_slice(s, rows, cols, out_rows, out_cols, min_x - o[0], min_y - o[1], fill))
            .collect();
        report.resampled_tilt = true;
    }
    let steps: Vec<f64> = along.windows(2).map(|w| w[1] - w[0]).collect();
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (min_step, max_step) = (sorted[0], sorted[sorted.len() - 1]);
    let tolerance = options.spacing_tolerance * median;
    let uneven = max_step - median > tolerance || median - min_step > tolerance;
    let dz;
    if uneven {
        if options.uneven_spacing == Resampling::Refuse {
            return Err(Error::UnevenSpacing {
                path: path.to_path_buf(),
                series_uid: uid.into(),
                min_mm: min_step,
                max_mm: max_step,
            });
        }
        // Linear interpolation along the normal onto the median step, spanning the same extent.
        let extent = along[n - 1];
        let nz = ((extent / median).round() as usize + 1).max(2);
        dz = extent / (nz - 1) as f64;
        let mut out = Vec::with_capacity(nz);
        let mut k = 0;
        for j in 0..nz {
            let z = j as f64 * dz;
            while k + 2 < n && along[k + 1] < z {
                k += 1;
            }
            let t = ((z - along[k]) / (along[k + 1] - along[k])).clamp(0.0, 1.0) as f32;
            out.push(slices[k].iter().zip(&slices[k + 1]).map(|(a, b)| a + t * (b - a)).collect());
        }
        slices = out;
        report.resampled_spacing = true;
    } else if sheared {
        dz = along[n - 1] / (n - 1) as f64;
    } else {
        // As DICOM readers define it: |last − first| / (n − 1).
        dz = norm(total) / (n - 1) as f64;
    }
    let g = Geometry::new([plan.pixel[0], plan.pixel[1], dz], origin, direction)?;
    Ok((Volume::new(to_array(slices, out_rows, out_cols)?, g)?, report))
}

/// Resamples a `rows × cols` slice onto an `out_rows × out_cols` grid whose pixel (i, j) samples the
/// input at (i + dx, j + dy) (x = column, y = row), bilinearly; outside the input gives `fill`.
#[allow(clippy::too_many_arguments)]
fn shift_slice(
    s: &[f32],
    rows: usize,
    cols: usize,
    out_rows: usize,
    out_cols: usize,
    dx: f64,
    dy: f64,
    fill: f32,
) -> Vec<f32> {
    let mut out = vec![fill; out_rows * out_cols];
    let (fx, fy) = (dx - dx.floor(), dy - dy.floor());
    let (ix, iy) = (dx.floor() as i64, dy.floor() as i64);
    let at = |r: i64, c: i64| -> Option<f32> {
        if r >= 0 && c >= 0 && (r as usize) < rows && (c as usize) < cols {
            Some(s[r as usize * cols + c as usize])
        } else {
            None
        }
    };
    for r in 0..out_rows {
        for c in 0..out_cols {
            let (r0, c0) = (r as i64 + iy, c as i64 + ix);
            let corners = [
                (at(r0, c0), (1.0 - fx) * (1.0 - fy)),
                (at(r0, c0 + 1), fx * (1.0 - fy)),
                (at(r0 + 1, c0), (1.0 - fx) * fy),
                (at(r0 + 1, c0 + 1), fx * fy),
            ];
            let mut acc = 0.0;
            let mut weight = 0.0;
            for (v, w) in corners {
                if w > 1e-9 {
                    match v {
                        Some(v) => {
                            acc += f64::from(v) * w;
                            weight += w;
                        }
                        None => {
                            acc += f64::from(fill) * w;
                            weight += w;
                        }
                    }
                }
            }
            if weight > 0.0 {
                out[r * out_cols + c] = (acc / weight) as f32;
            }
        }
    }
    out
}
