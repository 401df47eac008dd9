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
    if text.len() >= 2 * CHUNK_BYTES
        && rayon::current_num_threads() > 1
        && let Some(mesh) = parse_parallel(text)
    {
        return Ok(mesh);
    }
    parse_lines(text, path)
}

/// Bytes of text per parallel task (cut at the next line end).
const CHUNK_BYTES: usize = 1 << 20;

/// What one chunk of lines holds: its vertices, and each face's three references as written with
/// the number of this chunk's vertices before it (relative references count back from there).
#[derive(Default)]
struct Chunk {
    vertices: Vec<[f32; 3]>,
    faces: Vec<([i64; 3], u32)>,
}

/// Reads `text` in chunks of whole lines on all threads. Returns `None` when any line is wrong
/// (the line-by-line reader then says exactly where); a mesh it returns is the one that reader
/// gives.
fn parse_parallel(text: &str) -> Option<Mesh> {
    use rayon::prelude::*;
    let bytes = text.as_bytes();
    let mut cuts = vec![0usize];
    while let Some(&last) = cuts.last() {
        if last >= bytes.len() {
            break;
        }
        let target = (last + CHUNK_BYTES).min(bytes.len());
        let end = bytes[target..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| target + i + 1);
        cuts.push(end);
    }
    let chunks: Vec<Chunk> =
        cuts.par_windows(2).map(|w| parse_chunk(&text[w[0]..w[1]])).collect::<Option<Vec<_>>>()?;
    // Vertices before each chunk, and the references resolved as the line-by-line reader does:
    // against the vertices read so far.
    let mut before = Vec::with_capacity(chunks.len());
    let mut total = 0usize;
    for c in &chunks {
        before.push(total);
        total += c.vertices.len();
    }
    u32::try_from(total).ok()?;
    let triangles: Vec<Vec<[u32; 3]>> = chunks
        .par_iter()
        .zip(&before)
        .map(|(c, &offset)| {
            c.faces
                .iter()
                .map(|&(refs, local)| {
                    let n = (offset + local as usize) as i64;
                    let mut t = [0u32; 3];
                    for (slot, i) in t.iter_mut().zip(refs) {
                        let idx = if i > 0 { i - 1 } else { n + i };
                        if i == 0 || idx < 0 || idx >= n {
                            return None;
                        }
                        *slot = idx as u32;
                    }
                    Some(t)
                })
                .collect::<Option<Vec<_>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    let mut vertices = Vec::with_capacity(total);
    for c in chunks {
        vertices.extend_from_slice(&c.vertices);
    }
    Some(Mesh::from_parts_unchecked(vertices, triangles.concat()))
}

/// One chunk's lines, with the line-by-line reader's tests; `None` at the first wrong line.
fn parse_chunk(text: &str) -> Option<Chunk> {
    let mut c = Chunk::default();
    for line in text.lines() {
        let mut tok = line.split_ascii_whitespace();
        match tok.next() {
            Some("v") => {
                let mut p = [0.0f32; 3];
                for v in p.iter_mut() {
                    *v = tok.next()?.parse().ok()?;
                }
                if p.iter().any(|v| !v.is_finite()) {
                    return None;
                }
                c.vertices.push(p);
            }
            Some("f") => {
                let mut refs = [0i64; 3];
                for r in refs.iter_mut() {
                    *r = tok.next()?.split('/').next().unwrap_or("").parse().ok()?;
                }
                if tok.next().is_some() {
                    return None;
                }
                c.faces.push((refs, u32::try_from(c.vertices.len()).ok()?));
            }
            _ => {}
        }
    }
    Some(c)
}

/// The line-by-line reader: every file, and the one that says where a file is wrong.
fn parse_lines(text: &str, path: &Path) -> Result<Mesh> {
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
    use proptest::prelude::*;

    /// Both readers agree: the same mesh, or the parallel one declines.
    fn check_parallel(text: &str) {
        let serial = parse_lines(text, Path::new("p.obj"));
        match parse_parallel(text) {
            Some(m) => assert_eq!(m, serial.unwrap()),
            None => assert!(serial.is_err(), "parallel declined a good file"),
        }
    }

    /// An OBJ of `n` vertices and faces mixing absolute, `/vt/vn` and relative references, with
    /// comments, blank lines, CRLF and other statements among them.
    fn obj_text(seed: u64, n: usize, damage: u8) -> String {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut out = String::from("# test\r\no skull\n");
        let mut nv = 0i64;
        for k in 0..n {
            let x = (next() % 1000) as f32 * 0.125 - 60.0;
            out += &format!("v {x} {} -{}.5\n", k % 7, k % 3);
            nv += 1;
            if k % 5 == 4 {
                out += "vn 0 0 1\r\n\n";
            }
            if nv >= 3 && next() % 3 != 0 {
                let a = 1 + (next() % nv as u64) as i64;
                let b = -1 - (next() % nv as u64) as i64;
                out += &format!("f {a} {b}/1 {}/2/3\n", 1 + (next() % nv as u64));
            }
        }
        match damage {
            1 => out += "f 1 2 3 4\n",
            2 => out += &format!("f 1 2 {}\n", nv + 1),
            3 => out += "v 0 nan 0\n",
            4 => out += "f 0 1 2\n",
            5 => out.insert_str(out.len() / 2, "\nv 1 2\n"),
            _ => {}
        }
        out
    }

    #[test]
    fn parallel_chunks_match_the_line_reader() {
        // Several chunks of 1 MiB each, so references cross chunk boundaries.
        let text = obj_text(3, 150_000, 0);
        assert!(text.len() > 3 * CHUNK_BYTES, "{}", text.len());
        check_parallel(&text);
        assert!(parse_parallel(&text).is_some());
        for damage in 1..=5 {
            check_parallel(&obj_text(4, 120_000, damage));
        }
        // A forward reference (to a vertex defined later) is refused by both, across chunks too.
        let mut fwd = String::from("v 0 0 0\nv 1 0 0\nf 1 2 3\nv 0 1 0\n");
        fwd += &obj_text(5, 100_000, 0);
        check_parallel(&fwd);
    }

    proptest! {
        #[test]
        fn parallel_reader_matches_on_small_files(seed in any::<u64>(), n in 0usize..200, damage in 0u8..6) {
            check_parallel(&obj_text(seed, n, damage));
        }
    }

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
