//! Mesh files: STL (binary and ASCII), PLY (binary and ASCII, with per-vertex colour or scalar) and
//! OBJ, read by content and written by extension, atomically.
//!
//! What readers check and how writers stay atomic is in the crate docs ("Mesh files").
mod obj;
mod ply;
mod stl;
mod weld;

use std::path::Path;

pub use obj::{read_obj, write_obj};
pub use ply::{PlyEncoding, PlyOptions, read_ply, write_ply, write_ply_with};
pub use stl::{read_stl, write_stl, write_stl_ascii};

use crate::{Error, Mesh, Result};

/// Reads a triangle mesh, recognising the format from the file's content: PLY (`ply` magic), binary
/// STL (size = 84 + 50 × triangle count), ASCII STL (`solid` keyword) or OBJ (`v` / `f` lines).
///
/// STL facets are welded into shared vertices (vertices at exactly the same position become one).
pub fn read_mesh(path: impl AsRef<Path>) -> Result<Mesh> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    match detect(&bytes) {
        Some(Format::Ply) => ply::parse_ply(&bytes, path),
        Some(Format::Stl) => stl::parse_stl(&bytes, path),
        Some(Format::Obj) => obj::parse_obj(&bytes, path),
        None => Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            what: "content is neither PLY, STL (binary or ASCII) nor OBJ".into(),
        }),
    }
}

/// Writes a mesh in the format its extension names: `.stl` (binary STL), `.ply` (binary
/// little-endian PLY) or `.obj`. The write is atomic (temporary file in the same folder, then
/// rename).
pub fn write_mesh(path: impl AsRef<Path>, mesh: &Mesh) -> Result<()> {
    let path = path.as_ref();
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("stl") => write_stl(path, mesh),
        Some("ply") => write_ply(path, mesh),
        Some("obj") => write_obj(path, mesh),
        other => Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            what: format!("extension {other:?}; use .stl, .ply or .obj"),
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ply,
    Stl,
    Obj,
}

fn detect(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"ply\n") || bytes.starts_with(b"ply\r\n") {
        return Some(Format::Ply);
    }
    if stl::looks_binary(bytes) {
        return Some(Format::Stl);
    }
    let text = trim_start(bytes);
    if text.len() >= 5 && text[..5].eq_ignore_ascii_case(b"solid") {
        return Some(Format::Stl);
    }
    if obj::looks_like_obj(bytes) {
        return Some(Format::Obj);
    }
    // Not ASCII-looking at all and not a consistent binary STL: treat as a (damaged) binary STL so the
    // error says what is wrong with it.
    if bytes.len() >= 84 {
        return Some(Format::Stl);
    }
    None
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

/// Writes through `fill` into a temporary file beside `path`, then renames it over `path`
/// (the workspace's one atomic writer, [`msd_io::write_atomic`]).
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    msd_io::write_atomic(path, |w| fill(w).map_err(|e| Error::io(path, e)))
}

/// Welds triangle soup (three positions per triangle) into shared vertices: positions that are
/// bit-for-bit equal (with −0 equal to +0) become one vertex.
pub(crate) fn weld(soup: &[[[f32; 3]; 3]]) -> Mesh {
    weld::weld_corners(soup.len() * 3, |j| soup[j / 3][j % 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tetra() -> Mesh {
        Mesh::new(
            vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
        )
        .unwrap()
    }

    #[test]
    fn round_trips_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let m = tetra();
        for name in ["a.stl", "a.ply", "a.obj"] {
            let p = dir.path().join(name);
            write_mesh(&p, &m).unwrap();
            let back = read_mesh(&p).unwrap();
            assert_eq!(back.triangles().len(), 4, "{name}");
            assert_eq!(back.vertices().len(), 4, "{name}");
            assert!((back.enclosed_volume() - m.enclosed_volume()).abs() < 1e-9, "{name}");
        }
        let p = dir.path().join("ascii.stl");
        write_stl_ascii(&p, &m).unwrap();
        assert_eq!(read_mesh(&p).unwrap().vertices().len(), 4);
        let p = dir.path().join("ascii.ply");
        let opts = PlyOptions {
            encoding: PlyEncoding::Ascii,
            vertex_colors: Some(vec![[255, 0, 0]; 4]),
            vertex_scalars: Some(("distance_mm".into(), vec![0.5; 4])),
        };
        write_ply_with(&p, &m, &opts).unwrap();
        let back = read_mesh(&p).unwrap();
        assert_eq!(back.triangles(), m.triangles());
    }

    #[test]
    fn unknown_extension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_mesh(dir.path().join("a.vtk"), &tetra()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err}");
        assert!(!dir.path().join("a.vtk").exists());
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_mesh(&p).is_err());
    }
}
