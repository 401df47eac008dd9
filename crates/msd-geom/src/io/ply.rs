//! PLY, ASCII and binary (either byte order) on read; ASCII or binary little-endian on write, with
//! optional per-vertex colour (`red green blue`, uchar) and one per-vertex scalar (float), as
//! ParaView, MeshLab and 3D Slicer read them (e.g. surface distance painted on a skull).
use std::path::Path;

use super::write_atomic;
use crate::{Error, Mesh, Result};

/// How a PLY file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlyEncoding {
    /// Human-readable text.
    Ascii,
    /// Little-endian binary (compact and fast; the default).
    #[default]
    BinaryLittleEndian,
}

/// What to write besides positions and faces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlyOptions {
    /// Text or binary.
    pub encoding: PlyEncoding,
    /// One RGB colour per vertex, written as `red green blue` uchar properties.
    pub vertex_colors: Option<Vec<[u8; 3]>>,
    /// One scalar per vertex under the given property name (letters, digits and `_` only), e.g.
    /// `("distance_mm".into(), distances)`.
    pub vertex_scalars: Option<(String, Vec<f32>)>,
}

/// Reads a PLY file (ASCII, binary little- or big-endian) with `x y z` vertex properties and a
/// `vertex_indices` (or `vertex_index`) face list. Other elements and properties are skipped.
pub fn read_ply(path: impl AsRef<Path>) -> Result<Mesh> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_ply(&bytes, path)
}

/// Writes a binary little-endian PLY with positions and faces only, atomically.
pub fn write_ply(path: impl AsRef<Path>, mesh: &Mesh) -> Result<()> {
    write_ply_with(path, mesh, &PlyOptions::default())
}

/// Writes a PLY with the given encoding and optional per-vertex colour and scalar, atomically.
pub fn write_ply_with(path: impl AsRef<Path>, mesh: &Mesh, options: &PlyOptions) -> Result<()> {
    let path = path.as_ref();
    let nv = mesh.vertices().len();
    if let Some(c) = &options.vertex_colors
        && c.len() != nv
    {
        return Err(Error::InvalidArgument { what: format!("{} vertex colours for {nv} vertices", c.len()) });
    }
    if let Some((name, s)) = &options.vertex_scalars {
        if s.len() != nv {
            return Err(Error::InvalidArgument {
                what: format!("{} vertex scalars for {nv} vertices", s.len()),
            });
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::InvalidArgument {
                what: format!("PLY property name '{name}' must be letters, digits and '_'"),
            });
        }
    }
    let ascii = options.encoding == PlyEncoding::Ascii;
    write_atomic(path, |w| {
        writeln!(w, "ply")?;
        writeln!(w, "format {} 1.0", if ascii { "ascii" } else { "binary_little_endian" })?;
        writeln!(w, "comment written by msd-geom; LPS millimetres")?;
        writeln!(w, "element vertex {nv}")?;
        for c in ["x", "y", "z"] {
            writeln!(w, "property float {c}")?;
        }
        if options.vertex_colors.is_some() {
            for c in ["red", "green", "blue"] {
                writeln!(w, "property uchar {c}")?;
            }
        }
        if let Some((name, _)) = &options.vertex_scalars {
            writeln!(w, "property float {name}")?;
        }
        writeln!(w, "element face {}", mesh.triangles().len())?;
        writeln!(w, "property list uchar int vertex_indices")?;
        writeln!(w, "end_header")?;
        for (i, p) in mesh.vertices().iter().enumerate() {
            let color = options.vertex_colors.as_ref().map(|c| c[i]);
            let scalar = options.vertex_scalars.as_ref().map(|(_, s)| s[i]);
            if ascii {
                write!(w, "{} {} {}", p[0], p[1], p[2])?;
                if let Some(c) = color {
                    write!(w, " {} {} {}", c[0], c[1], c[2])?;
                }
                if let Some(s) = scalar {
                    write!(w, " {s}")?;
                }
                writeln!(w)?;
            } else {
                for c in p {
                    w.write_all(&c.to_le_bytes())?;
                }
                if let Some(c) = color {
                    w.write_all(&c)?;
                }
                if let Some(s) = scalar {
                    w.write_all(&s.to_le_bytes())?;
                }
            }
        }
        for t in mesh.triangles() {
            if ascii {
                writeln!(w, "3 {} {} {}", t[0], t[1], t[2])?;
            } else {
                w.write_all(&[3u8])?;
                for i in t {
                    w.write_all(&(*i as i32).to_le_bytes())?;
                }
            }
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    fn parse(s: &str) -> Option<Scalar> {
        Some(match s {
            "char" | "int8" => Scalar::I8,
            "uchar" | "uint8" => Scalar::U8,
            "short" | "int16" => Scalar::I16,
            "ushort" | "uint16" => Scalar::U16,
            "int" | "int32" => Scalar::I32,
            "uint" | "uint32" => Scalar::U32,
            "float" | "float32" => Scalar::F32,
            "double" | "float64" => Scalar::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Scalar::I8 | Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    }

    fn read(self, b: &[u8], big: bool) -> f64 {
        macro_rules! rd {
            ($t:ty, $n:expr) => {{
                let mut a = [0u8; $n];
                a.copy_from_slice(&b[..$n]);
                (if big { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) }) as f64
            }};
        }
        match self {
            Scalar::I8 => b[0] as i8 as f64,
            Scalar::U8 => b[0] as f64,
            Scalar::I16 => rd!(i16, 2),
            Scalar::U16 => rd!(u16, 2),
            Scalar::I32 => rd!(i32, 4),
            Scalar::U32 => rd!(u32, 4),
            Scalar::F32 => rd!(f32, 4),
            Scalar::F64 => rd!(f64, 8),
        }
    }
}

#[derive(Debug, Clone)]
enum Property {
    Scalar(String, Scalar),
    List(String, Scalar, Scalar),
}

#[derive(Debug, Clone)]
struct Element {
    name: String,
    count: u64,
    properties: Vec<Property>,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Ascii,
    Binary { big: bool },
}

/// A cursor over a PLY body: text tokens or binary values.
struct Body<'a> {
    bytes: &'a [u8],
    pos: usize,
    encoding: Encoding,
    path: &'a Path,
}

impl Body<'_> {
    fn truncated(&self, what: String) -> Error {
        Error::Truncated { path: self.path.to_path_buf(), what }
    }

    fn token(&mut self) -> Option<&str> {
        let b = self.bytes;
        while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        while self.pos < b.len() && !b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        if start == self.pos { None } else { std::str::from_utf8(&b[start..self.pos]).ok() }
    }

    fn value(&mut self, ty: Scalar, what: &dyn Fn() -> String) -> Result<f64> {
        match self.encoding {
            Encoding::Ascii => {
                let at = self.pos;
                let path = self.path;
                let Some(t) = self.token() else {
                    return Err(Error::Truncated {
                        path: path.to_path_buf(),
                        what: format!("ends before {}", what()),
                    });
                };
                t.parse::<f64>().map_err(|_| Error::Parse {
                    path: path.to_path_buf(),
                    format: "PLY",
                    location: format!("byte {at}"),
                    what: format!("'{t}' is not a number ({})", what()),
                })
            }
            Encoding::Binary { big } => {
                let n = ty.size();
                if self.pos + n > self.bytes.len() {
                    return Err(self.truncated(format!("ends before {}", what())));
                }
                let v = ty.read(&self.bytes[self.pos..], big);
                self.pos += n;
                Ok(v)
            }
        }
    }
}

pub(crate) fn parse_ply(bytes: &[u8], path: &Path) -> Result<Mesh> {
    let perr = |what: String| Error::Parse {
        path: path.to_path_buf(),
        format: "PLY",
        location: "header".into(),
        what,
    };
    let end = find(bytes, b"end_header")
        .ok_or_else(|| Error::Truncated { path: path.to_path_buf(), what: "no 'end_header' line".into() })?;
    let mut body_start = end + b"end_header".len();
    if bytes.get(body_start) == Some(&b'\r') {
        body_start += 1;
    }
    if bytes.get(body_start) == Some(&b'\n') {
        body_start += 1;
    }
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| perr("header is not text".into()))?;
    let mut encoding = None;
    let mut elements: Vec<Element> = Vec::new();
    for line in header.lines().skip(1) {
        let tok: Vec<&str> = line.split_ascii_whitespace().collect();
        match tok.first().copied() {
            Some("format") => {
                encoding = Some(match tok.get(1).copied() {
                    Some("ascii") => Encoding::Ascii,
                    Some("binary_little_endian") => Encoding::Binary { big: false },
                    Some("binary_big_endian") => Encoding::Binary { big: true },
                    other => return Err(perr(format!("unknown format {other:?}"))),
                })
            }
            Some("element") => {
                let (Some(name), Some(count)) = (tok.get(1), tok.get(2)) else {
                    return Err(perr(format!("bad element line '{line}'")));
                };
                let count = count.parse().map_err(|_| perr(format!("bad element count in '{line}'")))?;
                elements.push(Element { name: name.to_string(), count, properties: Vec::new() });
            }
            Some("property") => {
                let el = elements.last_mut().ok_or_else(|| perr("property before any element".into()))?;
                let ty = |s: Option<&&str>| s.and_then(|s| Scalar::parse(s));
                let prop = if tok.get(1) == Some(&"list") {
                    match (ty(tok.get(2)), ty(tok.get(3)), tok.get(4)) {
                        (Some(c), Some(i), Some(n)) => Property::List(n.to_string(), c, i),
                        _ => return Err(perr(format!("bad list property '{line}'"))),
                    }
                } else {
                    match (ty(tok.get(1)), tok.get(2)) {
                        (Some(t), Some(n)) => Property::Scalar(n.to_string(), t),
                        _ => return Err(perr(format!("bad property '{line}'"))),
                    }
                };
                el.properties.push(prop);
            }
            Some("comment") | Some("obj_info") | None => {}
            Some(other) => return Err(perr(format!("unknown header keyword '{other}'"))),
        }
    }
    let encoding = encoding.ok_or_else(|| perr("no format line".into()))?;
    let available = (bytes.len() - body_start) as u64;
    // Each element needs at least one byte (binary) or two (a value and a separator in text):
    // refuse counts the file cannot hold before allocating anything.
    for el in &elements {
        let min = match encoding {
            Encoding::Ascii => 2 * el.properties.len().max(1) as u64,
            Encoding::Binary { .. } => el
                .properties
                .iter()
                .map(|p| match p {
                    Property::Scalar(_, t) => t.size() as u64,
                    Property::List(_, c, _) => c.size() as u64,
                })
                .sum::<u64>()
                .max(1),
        };
        if el.count > available / min {
            return Err(Error::CountTooLarge {
                path: path.to_path_buf(),
                element: if el.name == "face" { "faces" } else { "elements" },
                declared: el.count,
                max: available / min,
                available_bytes: available,
            });
        }
    }
    let mut body = Body { bytes, pos: body_start, encoding, path };
    let mut vertices: Vec<[f32; 3]> = Vec::new();
    let mut triangles: Vec<[u32; 3]> = Vec::new();
    let mut saw_vertex = false;
    for el in &elements {
        let is_vertex = el.name == "vertex";
        let is_face = el.name == "face";
        if is_vertex {
            saw_vertex = true;
            let axis =
                |n: &str| el.properties.iter().position(|p| matches!(p, Property::Scalar(m, _) if m == n));
            if axis("x").is_none() || axis("y").is_none() || axis("z").is_none() {
                return Err(perr("vertex element lacks x, y or z".into()));
            }
            vertices.reserve(el.count as usize);
        }
        if is_face {
            triangles.reserve(el.count as usize);
        }
        for i in 0..el.count as usize {
            let mut p = [0.0f32; 3];
            for prop in &el.properties {
                match prop {
                    Property::Scalar(name, t) => {
                        let v = body.value(*t, &|| format!("{} {i} property {name}", el.name))?;
                        if is_vertex {
                            match name.as_str() {
                                "x" => p[0] = v as f32,
                                "y" => p[1] = v as f32,
                                "z" => p[2] = v as f32,
                                _ => {}
                            }
                        }
                    }
                    Property::List(name, ct, it) => {
                        let what = || format!("{} {i} list {name}", el.name);
                        let n = body.value(*ct, &what)?;
                        if !(0.0..=1e6).contains(&n) {
                            return Err(perr(format!("{} {i} has a list of {n} items", el.name)));
                        }
                        let n = n as usize;
                        let is_indices = is_face && (name == "vertex_indices" || name == "vertex_index");
                        if is_indices && n != 3 {
                            return Err(Error::NonTriangleFace {
                                path: path.to_path_buf(),
                                face: i,
                                vertices: n,
                            });
                        }
                        let mut t = [0u32; 3];
                        for k in 0..n {
                            let v = body.value(*it, &what)?;
                            if is_indices {
                                if !(v >= 0.0 && v < u32::MAX as f64) {
                                    return Err(Error::InvalidMesh {
                                        what: format!("{}: face {i} has vertex index {v}", path.display()),
                                    });
                                }
                                t[k] = v as u32;
                            }
                        }
                        if is_indices {
                            triangles.push(t);
                        }
                    }
                }
            }
            if is_vertex {
                if p.iter().any(|c| !c.is_finite()) {
                    return Err(Error::NotFinite {
                        path: path.to_path_buf(),
                        element: "vertex",
                        index: i,
                        value: p,
                    });
                }
                vertices.push(p);
            }
        }
    }
    if !saw_vertex {
        return Err(perr("no vertex element".into()));
    }
    Mesh::new(vertices, triangles)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quad_face_is_refused() {
        let ply = b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n";
        let err = parse_ply(ply, Path::new("q.ply")).unwrap_err();
        assert!(matches!(err, Error::NonTriangleFace { face: 0, vertices: 4, .. }), "{err}");
    }

    #[test]
    fn huge_count_and_truncation_are_refused() {
        let ply = b"ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\nproperty float x\nproperty float y\nproperty float z\nend_header\n\0\0\0\0";
        assert!(matches!(parse_ply(ply, Path::new("h.ply")), Err(Error::CountTooLarge { .. })));
        let ply = b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n\0\0\0\0\0\0\0\0\0\0\0\0";
        assert_eq!(parse_ply(ply, Path::new("ok.ply")).unwrap().vertices().len(), 1);
        let ply = b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n\0\0\0\0\0\0\0\0\0\0\0\0\x03\0\0";
        assert!(matches!(parse_ply(ply, Path::new("t.ply")), Err(Error::Truncated { .. })));
    }

    #[test]
    fn big_endian_with_extra_properties_reads() {
        let mut b = b"ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty double x\nproperty double y\nproperty double z\nproperty uchar red\nelement face 1\nproperty list uchar uint vertex_indices\nend_header\n".to_vec();
        for p in [[0.0f64, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] {
            for c in p {
                b.extend_from_slice(&c.to_be_bytes());
            }
            b.push(7);
        }
        b.push(3);
        for i in [0u32, 1, 2] {
            b.extend_from_slice(&i.to_be_bytes());
        }
        let m = parse_ply(&b, Path::new("be.ply")).unwrap();
        assert_eq!(m.vertices()[1], [1.0, 0.0, 0.0]);
        assert_eq!(m.triangles(), &[[0, 1, 2]]);
    }

    #[test]
    fn nan_vertex_is_refused() {
        let ply = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 nan 0\n";
        assert!(matches!(parse_ply(ply, Path::new("n.ply")), Err(Error::NotFinite { .. })));
    }
}
