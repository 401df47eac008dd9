//! STL, binary and ASCII. Facets are welded into shared vertices on read.
use std::path::Path;

use rayon::prelude::*;

use super::{weld, write_atomic};
use crate::{Error, Mesh, Result};

const HEADER: usize = 80;
const FACET: usize = 50;
/// Triangles encoded per block when writing (about 13 MB of facets).
const WRITE_BLOCK: usize = 1 << 18;

/// Whether `bytes` is a binary STL: 84 bytes of header and count, then exactly `count` 50-byte facets.
/// Files that begin with `solid` but have this exact size are binary (some exporters write `solid` in
/// the header).
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER + 4 {
        return false;
    }
    let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as u64;
    (HEADER + 4) as u64 + n * FACET as u64 == bytes.len() as u64
}

/// Reads an STL file (binary or ASCII, recognised by content) and welds its facets into shared
/// vertices (exactly equal positions become one vertex).
pub fn read_stl(path: impl AsRef<Path>) -> Result<Mesh> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_stl(&bytes, path)
}

pub(crate) fn parse_stl(bytes: &[u8], path: &Path) -> Result<Mesh> {
    let text = super::trim_start(bytes);
    let starts_solid = text.len() >= 5 && text[..5].eq_ignore_ascii_case(b"solid");
    if looks_binary(bytes) || !starts_solid { parse_binary(bytes, path) } else { parse_ascii(bytes, path) }
}

fn parse_binary(bytes: &[u8], path: &Path) -> Result<Mesh> {
    if bytes.len() < HEADER + 4 {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            what: format!("binary STL needs an 84-byte header, the file has {} bytes", bytes.len()),
        });
    }
    let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as u64;
    let available = (bytes.len() - HEADER - 4) as u64;
    let max = available / FACET as u64;
    if n > max {
        return Err(Error::CountTooLarge {
            path: path.to_path_buf(),
            element: "triangles",
            declared: n,
            max,
            available_bytes: available,
        });
    }
    if n > u64::from(u32::MAX / 3) {
        return Err(Error::CountTooLarge {
            path: path.to_path_buf(),
            element: "triangles",
            declared: n,
            max: u64::from(u32::MAX / 3),
            available_bytes: available,
        });
    }
    let n = n as usize;
    let records = &bytes[HEADER + 4..HEADER + 4 + n * FACET];
    let corner = |j: usize| -> [f32; 3] {
        let at = (j / 3) * FACET + 12 + 12 * (j % 3);
        let f = |k: usize| f32::from_le_bytes([records[k], records[k + 1], records[k + 2], records[k + 3]]);
        [f(at), f(at + 4), f(at + 8)]
    };
    // The first facet with a NaN or infinite corner, as a one-thread scan would find it.
    let bad = (0..n * 3)
        .into_par_iter()
        .with_min_len(1 << 14)
        .position_first(|j| corner(j).iter().any(|c| !c.is_finite()));
    if let Some(j) = bad {
        return Err(Error::NotFinite {
            path: path.to_path_buf(),
            element: "facet",
            index: j / 3,
            value: corner(j),
        });
    }
    Ok(super::weld::weld_corners(n * 3, corner))
}

fn parse_ascii(bytes: &[u8], path: &Path) -> Result<Mesh> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        format: "STL",
        location: format!("byte {}", e.valid_up_to()),
        what: "ASCII STL is not valid UTF-8".into(),
    })?;
    let parse_err = |line: usize, what: String| Error::Parse {
        path: path.to_path_buf(),
        format: "STL",
        location: format!("line {}", line + 1),
        what,
    };
    let mut soup: Vec<[[f32; 3]; 3]> = Vec::new();
    let mut current: Vec<[f32; 3]> = Vec::with_capacity(3);
    let mut in_loop = false;
    let mut in_facet = false;
    let mut last_line = 0;
    for (ln, line) in text.lines().enumerate() {
        last_line = ln;
        let mut tok = line.split_ascii_whitespace();
        let Some(word) = tok.next() else { continue };
        match word.to_ascii_lowercase().as_str() {
            "solid" | "endsolid" => {}
            "facet" => {
                if in_facet {
                    return Err(parse_err(ln, "facet inside a facet".into()));
                }
                in_facet = true;
            }
            "outer" => {
                if !in_facet || in_loop {
                    return Err(parse_err(ln, "'outer loop' outside a facet".into()));
                }
                in_loop = true;
                current.clear();
            }
            "vertex" => {
                if !in_loop {
                    return Err(parse_err(ln, "vertex outside 'outer loop'".into()));
                }
                let mut p = [0.0f32; 3];
                for c in p.iter_mut() {
                    let t = tok.next().ok_or_else(|| parse_err(ln, "vertex needs 3 coordinates".into()))?;
                    *c = t.parse().map_err(|_| parse_err(ln, format!("'{t}' is not a number")))?;
                }
                if p.iter().any(|c| !c.is_finite()) {
                    return Err(Error::NotFinite {
                        path: path.to_path_buf(),
                        element: "facet",
                        index: soup.len(),
                        value: p,
                    });
                }
                current.push(p);
            }
            "endloop" => {
                if current.len() != 3 {
                    return Err(Error::NonTriangleFace {
                        path: path.to_path_buf(),
                        face: soup.len(),
                        vertices: current.len(),
                    });
                }
                soup.push([current[0], current[1], current[2]]);
                in_loop = false;
            }
            "endfacet" => {
                if in_loop {
                    return Err(parse_err(ln, "'endfacet' before 'endloop'".into()));
                }
                in_facet = false;
            }
            other => return Err(parse_err(ln, format!("unexpected keyword '{other}'"))),
        }
    }
    if in_facet || in_loop {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            what: format!("ASCII STL ends inside facet {} (line {})", soup.len(), last_line + 1),
        });
    }
    Ok(weld(&soup))
}

/// Writes a binary STL (facet normals from the winding), atomically.
pub fn write_stl(path: impl AsRef<Path>, mesh: &Mesh) -> Result<()> {
    let path = path.as_ref();
    let n = u32::try_from(mesh.triangles().len()).map_err(|_| Error::InvalidArgument {
        what: format!("{} triangles do not fit a binary STL's 32-bit count", mesh.triangles().len()),
    })?;
    write_atomic(path, |w| {
        let mut header = [b' '; HEADER];
        let title = b"binary STL written by msd-geom; LPS millimetres";
        header[..title.len()].copy_from_slice(title);
        w.write_all(&header)?;
        w.write_all(&n.to_le_bytes())?;
        // Facets are encoded in parallel, a block at a time, so the buffer stays small next to
        // the mesh; the bytes are those of a facet-by-facet loop.
        let v = mesh.vertices();
        let mut block = vec![0u8; WRITE_BLOCK.min(mesh.triangles().len()) * FACET];
        for tris in mesh.triangles().chunks(WRITE_BLOCK) {
            let bytes = &mut block[..tris.len() * FACET];
            bytes.par_chunks_mut(FACET * 4096).zip(tris.par_chunks(4096)).for_each(|(out, tris)| {
                for (rec, t) in out.chunks_exact_mut(FACET).zip(tris) {
                    let p = t.map(|i| v[i as usize]);
                    let nrm = crate::mesh::triangle_normal(p);
                    for (k, c) in nrm.iter().chain(p.iter().flatten()).enumerate() {
                        rec[4 * k..4 * k + 4].copy_from_slice(&c.to_le_bytes());
                    }
                    rec[48..50].fill(0);
                }
            });
            w.write_all(bytes)?;
        }
        Ok(())
    })
}

/// Writes an ASCII STL, atomically (larger and slower than binary; for inspection and old tools).
pub fn write_stl_ascii(path: impl AsRef<Path>, mesh: &Mesh) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, |w| {
        writeln!(w, "solid msd")?;
        let v = mesh.vertices();
        for t in mesh.triangles() {
            let p = t.map(|i| v[i as usize]);
            let n = crate::mesh::triangle_normal(p);
            writeln!(w, "  facet normal {:e} {:e} {:e}", n[0], n[1], n[2])?;
            writeln!(w, "    outer loop")?;
            for q in p {
                writeln!(w, "      vertex {:e} {:e} {:e}", q[0], q[1], q[2])?;
            }
            writeln!(w, "    endloop")?;
            writeln!(w, "  endfacet")?;
        }
        writeln!(w, "endsolid msd")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_with(count: u32, facets: &[[f32; 12]]) -> Vec<u8> {
        let mut b = vec![0u8; 80];
        b.extend_from_slice(&count.to_le_bytes());
        for f in facets {
            for c in f {
                b.extend_from_slice(&c.to_le_bytes());
            }
            b.extend_from_slice(&[0, 0]);
        }
        b
    }

    const TRI: [f32; 12] = [0., 0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0.];

    #[test]
    fn count_larger_than_file_is_refused() {
        let b = binary_with(1000, &[TRI]);
        let err = parse_stl(&b, Path::new("x.stl")).unwrap_err();
        assert!(matches!(err, Error::CountTooLarge { declared: 1000, max: 1, .. }), "{err}");
    }

    #[test]
    fn truncated_header_is_refused() {
        let err = parse_stl(&[0u8; 40], Path::new("x.stl")).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
    }

    #[test]
    fn nan_is_refused() {
        let mut t = TRI;
        t[7] = f32::NAN;
        let err = parse_stl(&binary_with(1, &[t]), Path::new("x.stl")).unwrap_err();
        assert!(matches!(err, Error::NotFinite { index: 0, .. }), "{err}");
        let ascii = b"solid a\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex nan 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid\n";
        assert!(matches!(parse_stl(ascii, Path::new("a.stl")), Err(Error::NotFinite { .. })));
    }

    #[test]
    fn ascii_quad_and_truncation_are_refused() {
        let quad = b"solid a\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 1 1 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid\n";
        let err = parse_stl(quad, Path::new("a.stl")).unwrap_err();
        assert!(matches!(err, Error::NonTriangleFace { vertices: 4, .. }), "{err}");
        let cut = b"solid a\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n";
        assert!(matches!(parse_stl(cut, Path::new("a.stl")), Err(Error::Truncated { .. })));
    }

    #[test]
    fn welds_shared_corners_including_negative_zero() {
        let a = [0., 0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0.];
        let b = [0., 0., 1., -0.0, 0., 0., 1., 1., 0., 0., 1., 0.];
        let m = parse_stl(&binary_with(2, &[a, b]), Path::new("x.stl")).unwrap();
        assert_eq!(m.vertices().len(), 4);
        assert_eq!(m.triangles()[1][0], m.triangles()[0][0]);
    }

    #[test]
    fn binary_that_starts_with_solid_is_binary() {
        let mut b = binary_with(1, &[TRI]);
        b[..5].copy_from_slice(b"solid");
        assert_eq!(parse_stl(&b, Path::new("x.stl")).unwrap().triangles().len(), 1);
    }
}
