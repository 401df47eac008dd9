//! Deviation maps: a surface coloured by its signed distance to a reference.
//!
//! The PLY carries per-vertex colours (blue inside the reference, white on it, red outside) and the
//! signed distance itself as the vertex `quality` property, so MeshLab or ParaView can recolour it
//! with their own scales. The histogram of the distances is a picture, drawn with the others by
//! `msd_report::histogram` in the same colours.
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
}
