//! Deviation maps: a surface coloured by its signed distance to a reference, and its histogram.
//!
//! The PLY carries per-vertex colours (blue inside the reference, white on it, red outside) and the
//! signed distance itself as the vertex `quality` property, so MeshLab or ParaView can recolour it
//! with their own scales. The PNG histogram uses the same colours; it has no text (the range is in
//! [`DeviationMap::range_mm`]): ticks mark every millimetre (or a finer/coarser round step) and a
//! grey line marks zero.
use std::path::Path;

use msd_geom::Mesh;

use crate::atomic_write::write_atomically;
use crate::distance_summary::percentile_sorted;
use crate::surface_distance::signed_vertex_distances;
use crate::{Error, Result};

/// A mesh with the signed distance (mm) of each vertex to a reference surface: positive outside the
/// reference, negative inside.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviationMap {
    mesh: Mesh,
    signed_mm: Vec<f32>,
}

impl DeviationMap {
    /// Signed distances of every vertex of `mesh` to the closed surface `reference`.
    pub fn new(mesh: &Mesh, reference: &Mesh) -> Result<Self> {
        Ok(DeviationMap { mesh: mesh.clone(), signed_mm: signed_vertex_distances(mesh, reference)? })
    }

    /// A map from values computed elsewhere (one finite value per vertex).
    pub fn from_values(mesh: Mesh, signed_mm: Vec<f32>) -> Result<Self> {
        if signed_mm.len() != mesh.vertices().len() {
            return Err(Error::invalid(
                "signed_mm",
                format!("{} values for {} vertices", signed_mm.len(), mesh.vertices().len()),
            ));
        }
        if let Some(i) = signed_mm.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid("signed_mm", format!("value {i} is {}", signed_mm[i])));
        }
        Ok(DeviationMap { mesh, signed_mm })
    }

    /// The mesh.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// Signed distance per vertex, mm.
    pub fn signed_mm(&self) -> &[f32] {
        &self.signed_mm
    }

    /// The default colour range ±r: the 99th percentile of |distance| (at least 0.01 mm), so a few
    /// outliers do not wash out the map.
    pub fn range_mm(&self) -> f64 {
        let mut abs: Vec<f32> = self.signed_mm.iter().map(|v| v.abs()).collect();
        abs.sort_unstable_by(f32::total_cmp);
        f64::from(percentile_sorted(&abs, 99.0)).max(0.01)
    }

    /// Writes the coloured mesh as binary little-endian PLY (atomically). Colours saturate at
    /// ±`range_mm` (default [`DeviationMap::range_mm`]).
    pub fn write_ply(&self, path: impl AsRef<Path>, range_mm: Option<f64>) -> Result<()> {
        let path = path.as_ref();
        let range = self.checked_range(range_mm)?;
        let (v, t) = (self.mesh.vertices(), self.mesh.triangles());
        if v.len() > i32::MAX as usize {
            return Err(Error::invalid("mesh", format!("{} vertices exceed PLY's int indices", v.len())));
        }
        let header = format!(
            "ply\nformat binary_little_endian 1.0\n\
             comment msd-metrics deviation map: quality = signed distance to the reference in mm, \
             positive outside; colours saturate at +-{range} mm\n\
             element vertex {}\nproperty float x\nproperty float y\nproperty float z\n\
             property uchar red\nproperty uchar green\nproperty uchar blue\nproperty float quality\n\
             element face {}\nproperty list uchar int vertex_indices\nend_header\n",
            v.len(),
            t.len()
        );
        write_atomically(path, |w| {
            let io = |e| Error::io(path, e);
            w.write_all(header.as_bytes()).map_err(io)?;
            let mut buf = Vec::with_capacity(19 * v.len().min(1 << 16));
            for (p, &d) in v.iter().zip(&self.signed_mm) {
                for c in p {
                    buf.extend_from_slice(&c.to_le_bytes());
                }
                buf.extend_from_slice(&deviation_colour(f64::from(d), range));
                buf.extend_from_slice(&d.to_le_bytes());
                if buf.len() >= 1 << 20 {
                    w.write_all(&buf).map_err(io)?;
                    buf.clear();
                }
            }
            for tri in t {
                buf.push(3);
                for &i in tri {
                    // Mesh::new keeps indices below the vertex count, checked above to fit i32.
                    buf.extend_from_slice(&(i as i32).to_le_bytes());
                }
                if buf.len() >= 1 << 20 {
                    w.write_all(&buf).map_err(io)?;
                    buf.clear();
                }
            }
            w.write_all(&buf).map_err(io)
        })
    }

    /// Writes a histogram of the signed distances as an RGB PNG (atomically): `bins` bars over
    /// ±`range_mm` (default [`DeviationMap::range_mm`]); values beyond the range fall in the end
    /// bars.
    pub fn write_histogram_png(
        &self,
        path: impl AsRef<Path>,
        bins: usize,
        range_mm: Option<f64>,
    ) -> Result<()> {
        let path = path.as_ref();
        let range = self.checked_range(range_mm)?;
        if !(1..=2000).contains(&bins) {
            return Err(Error::invalid("bins", format!("{bins}; use 1 to 2000")));
        }
        let image = histogram_image(&self.signed_mm, bins, range);
        write_atomically(path, |w| {
            let mut enc = png::Encoder::new(w, image.width as u32, image.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let png_err = |source| Error::Png { path: path.to_path_buf(), source };
            let mut writer = enc.write_header().map_err(png_err)?;
            writer.write_image_data(&image.rgb).map_err(png_err)?;
            writer.finish().map_err(png_err)
        })
    }

    fn checked_range(&self, range_mm: Option<f64>) -> Result<f64> {
        let range = range_mm.unwrap_or_else(|| self.range_mm());
        if !(range.is_finite() && range > 0.0) {
            return Err(Error::invalid("range_mm", format!("{range}; it must be finite and positive")));
        }
        Ok(range)
    }
}

/// The colour of a signed deviation: blue (−range and below) through white (0) to red (+range
/// and above).
pub fn deviation_colour(signed_mm: f64, range_mm: f64) -> [u8; 3] {
    let t = if range_mm > 0.0 { (signed_mm / range_mm).clamp(-1.0, 1.0) } else { 0.0 };
    let t = if t.is_nan() { 0.0 } else { t };
    let fade = |x: f64| (255.0 * (1.0 - x.abs())).round() as u8;
    if t >= 0.0 { [255, fade(t), fade(t)] } else { [fade(t), fade(t), 255] }
}

/// An RGB raster, row-major from the top.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]) {
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                self.rgb[(y * self.width + x) * 3..][..3].copy_from_slice(&c);
            }
        }
    }
}

fn histogram_image(values: &[f32], bins: usize, range: f64) -> Image {
    let (bar_w, plot_h, margin) = ((800 / bins).max(1), 300usize, 20usize);
    let plot_w = bar_w * bins;
    let (width, height) = (plot_w + 2 * margin, plot_h + 2 * margin + 8);
    let mut img = Image { width, height, rgb: vec![255; width * height * 3] };
    let mut counts = vec![0u64; bins];
    for &v in values {
        let u = (f64::from(v) + range) / (2.0 * range);
        counts[((u * bins as f64).floor().max(0.0) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let base = margin + plot_h;
    for (b, &c) in counts.iter().enumerate() {
        let h = (c as f64 / top * plot_h as f64).round() as usize;
        let centre = -range + (b as f64 + 0.5) * 2.0 * range / bins as f64;
        let x0 = margin + b * bar_w;
        let colour = deviation_colour(centre, range);
        // Pale bars would vanish on white: outline them in grey.
        img.fill(x0, base - h, x0 + bar_w, base, [160, 160, 160]);
        if bar_w > 2 && h > 1 {
            img.fill(x0 + 1, base - h + 1, x0 + bar_w - 1, base, colour);
        }
    }
    let x_of = |mm: f64| margin as f64 + (mm + range) / (2.0 * range) * plot_w as f64;
    let zero = x_of(0.0).round() as usize;
    img.fill(zero, margin, zero + 1, base, [128, 128, 128]);
    img.fill(margin, base, margin + plot_w, base + 1, [0, 0, 0]);
    let step = tick_step(range);
    let mut k = (-range / step).ceil() as i64;
    while (k as f64) * step <= range + 1e-9 {
        let x = x_of(k as f64 * step).round() as usize;
        let len = if k == 0 { 8 } else { 5 };
        img.fill(x.min(width - 1), base, x.min(width - 1) + 1, base + len, [0, 0, 0]);
        k += 1;
    }
    img
}

/// A round tick step (1, 2 or 5 × 10ⁿ mm) giving about 4 to 10 ticks on each side of zero.
fn tick_step(range: f64) -> f64 {
    let raw = range / 5.0;
    let exp = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * exp).find(|s| *s >= raw).unwrap_or(10.0 * exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_blue_white_red() {
        assert_eq!(deviation_colour(0.0, 1.0), [255, 255, 255]);
        assert_eq!(deviation_colour(5.0, 1.0), [255, 0, 0]);
        assert_eq!(deviation_colour(-1.0, 1.0), [0, 0, 255]);
        assert_eq!(deviation_colour(f64::NAN, 1.0), [255, 255, 255]);
    }

    #[test]
    fn histogram_counts_every_value_and_ticks_are_round() {
        let vals: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 100.0).collect();
        let img = histogram_image(&vals, 50, 2.0);
        assert_eq!(img.rgb.len(), img.width * img.height * 3);
        assert_eq!(tick_step(2.0), 0.5);
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(0.3), 0.1);
    }
}
