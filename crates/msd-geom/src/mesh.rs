//! An indexed triangle mesh in world LPS millimetres.
use crate::{Error, Result};

/// An indexed triangle mesh: shared vertices in world LPS millimetres (DICOM patient coordinates:
/// +x left, +y posterior, +z superior) and triangles as vertex-index triples. Triangles of a closed
/// surface are wound counter-clockwise seen from outside, so normals point outward.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mesh {
    vertices: Vec<[f32; 3]>,
    triangles: Vec<[u32; 3]>,
}

impl Mesh {
    /// Builds a mesh, checking that every vertex is finite and every index refers to a vertex.
    pub fn new(vertices: Vec<[f32; 3]>, triangles: Vec<[u32; 3]>) -> Result<Self> {
        if let Some((i, v)) = vertices.iter().enumerate().find(|(_, v)| v.iter().any(|c| !c.is_finite())) {
            return Err(Error::InvalidMesh { what: format!("vertex {i} is not finite: {v:?}") });
        }
        let n = vertices.len();
        if let Some((t, tri)) = triangles.iter().enumerate().find(|(_, t)| t.iter().any(|&i| i as usize >= n))
        {
            return Err(Error::InvalidMesh {
                what: format!("triangle {t} {tri:?} refers to a vertex beyond the {n} vertices"),
            });
        }
        Ok(Mesh { vertices, triangles })
    }

    /// Vertex positions in LPS millimetres.
    pub fn vertices(&self) -> &[[f32; 3]] {
        &self.vertices
    }

    /// Triangles as indices into [`Mesh::vertices`].
    pub fn triangles(&self) -> &[[u32; 3]] {
        &self.triangles
    }

    /// Takes the mesh apart into vertices and triangles.
    pub fn into_parts(self) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
        (self.vertices, self.triangles)
    }

    /// Whether the mesh has no triangles.
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }
}
