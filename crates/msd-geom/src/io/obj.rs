//! Wavefront OBJ: positions (`v`) and triangular faces (`f`), as every modelling tool reads them.
use std::path::Path;

use super::write_atomic;
use crate::{Error, Mesh, Result};

/// Whether the content looks like an OBJ file: its first meaningful line is a comment or an OBJ
/// statement.
pub(crate) fn looks_like_obj(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(&bytes[..bytes.len().min(4096)]) else {
        return false;
    };
    text.lines().map(str::trim).find(|l| !l.is_empty()).is_some_and(|l| {
        let w = l.split_ascii_whitespace().next().unwrap_or("");
        l.starts_with('#') || ["v", "vn", "vt", "f", "o", "g", "s", "mtllib", "usemtl"].contains(&w)
    })
}

/// Reads an OBJ file's vertices and triangles (`f a b c`, with optional `/vt/vn` parts and negative
/// relative indices). Faces with other than three vertices are refused.
pub fn read_obj(path: impl AsRef<Path>) -> Result<Mesh> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_obj(&bytes, path)
}

pub(crate) fn parse_obj(bytes: &[u8], path: &Path) -> Result<Mesh> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        format: "OBJ",
        location: format!("byte {}", e.valid_up_to()),
        what: "not valid UTF-8".into(),
    })?;
    let err = |ln: usize, what: String| Error::Parse {
        path: path.to_path_buf(),
        format: "OBJ",
        location: format!("line {}", ln + 1),
        what,
    };
    let mut vertices: Vec<[f32; 3]> = Vec::new();
    let mut triangles: Vec<[u32; 3]> = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let mut tok = line.split_ascii_whitespace();
        match tok.next() {
            Some("v") => {
                let mut p = [0.0f32; 3];
                for c in p.iter_mut() {
                    let t = tok.next().ok_or_else(|| err(ln, "vertex needs 3 coordinates".into()))?;
                    *c = t.parse().map_err(|_| err(ln, format!("'{t}' is not a number")))?;
                }
                if p.iter().any(|c| !c.is_finite()) {
                    return Err(Error::NotFinite {
                        path: path.to_path_buf(),
                        element: "vertex",
                        index: vertices.len(),
                        value: p,
                    });
                }
                vertices.push(p);
            }
            Some("f") => {
                let refs: Vec<&str> = tok.collect();
                if refs.len() != 3 {
                    return Err(Error::NonTriangleFace {
                        path: path.to_path_buf(),
                        face: triangles.len(),
                        vertices: refs.len(),
                    });
                }
                let mut t = [0u32; 3];
                for (slot, r) in t.iter_mut().zip(refs) {
                    let first = r.split('/').next().unwrap_or("");
                    let i: i64 = first.parse().map_err(|_| err(ln, format!("bad vertex reference '{r}'")))?;
                    let n = vertices.len() as i64;
                    let idx = if i > 0 { i - 1 } else { n + i };
                    if i == 0 || idx < 0 || idx >= n {
                        return Err(err(ln, format!("vertex reference {i} outside the {n} vertices so far")));
                    }
                    *slot = idx as u32;
                }
                triangles.push(t);
            }
            _ => {}
        }
    }
    Mesh::new(vertices, triangles)
}

/// Writes an OBJ file (vertices and 1-based triangle indices), atomically.
pub fn write_obj(path: impl AsRef<Path>, mesh: &Mesh) -> Result<()> {
    write_atomic(path.as_ref(), |w| {
        writeln!(w, "# written by msd-geom; LPS millimetres")?;
        for p in mesh.vertices() {
            writeln!(w, "v {} {} {}", p[0], p[1], p[2])?;
        }
        for t in mesh.triangles() {
            writeln!(w, "f {} {} {}", t[0] + 1, t[1] + 1, t[2] + 1)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quads_and_bad_references_are_refused() {
        let quad = b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n";
        assert!(matches!(
            parse_obj(quad, Path::new("q.obj")),
            Err(Error::NonTriangleFace { vertices: 4, .. })
        ));
        let bad = b"v 0 0 0\nf 1 2 3\n";
        assert!(matches!(parse_obj(bad, Path::new("b.obj")), Err(Error::Parse { .. })));
        let rel = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3/1/1 -2 -1\n";
        assert_eq!(parse_obj(rel, Path::new("r.obj")).unwrap().triangles(), &[[0, 1, 2]]);
    }
}
