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

/// A header's parse error.
fn header_error(path: &Path, what: String) -> Error {
    Error::Parse { path: path.to_path_buf(), format: "PLY", location: "header".into(), what }
}

pub(crate) fn parse_ply(bytes: &[u8], path: &Path) -> Result<Mesh> {
    let (encoding, elements, body_start) = parse_header(bytes, path)?;
    if let Encoding::Binary { big } = encoding
        && let Some(mesh) = parse_fixed_binary(bytes, body_start, &elements, big)
    {
        return Ok(mesh);
    }
    parse_body(bytes, path, encoding, &elements, body_start)
}

/// Parses the header and checks every element count against the bytes after it; returns the
/// encoding, the elements and where the body starts.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Encoding, Vec<Element>, usize)> {
    let perr = |what: String| header_error(path, what);
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
    Ok((encoding, elements, body_start))
}

/// Reads the body element by element, value by value: every encoding and layout, and the reader
/// that says exactly where a file is wrong.
fn parse_body(
    bytes: &[u8],
    path: &Path,
    encoding: Encoding,
    elements: &[Element],
    body_start: usize,
) -> Result<Mesh> {
    let perr = |what: String| header_error(path, what);
    let mut body = Body { bytes, pos: body_start, encoding, path };
    let mut vertices: Vec<[f32; 3]> = Vec::new();
    let mut triangles: Vec<[u32; 3]> = Vec::new();
    let mut saw_vertex = false;
    for el in elements {
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
                        let is_indices = is_face && is_index_list(name);
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

/// Vertices decoded per parallel task on the fixed-layout path.
const FAST_VERTICES: usize = 1 << 14;
/// Faces decoded per parallel task on the fixed-layout path.
const FAST_FACES: usize = 1 << 14;

/// Whether `name` is the face list of vertex indices.
fn is_index_list(name: &str) -> bool {
    name == "vertex_indices" || name == "vertex_index"
}

/// Where an element's properties lie in a record of fixed size.
struct FixedLayout {
    /// Bytes per record.
    stride: usize,
    /// For the vertex element: the offset and type of `x`, `y` and `z` (the last of each name, as
    /// the general reader keeps the last value it sees).
    xyz: Option<[(usize, Scalar); 3]>,
    /// For the face element: the offset of the index list's count, and its count and index types.
    indices: Option<(usize, Scalar, Scalar)>,
}

/// The fixed-size record layout of `el`, when it has one: scalar properties only, except that a
/// face may hold one list of vertex indices, taken to hold 3 of them (every count is checked).
fn fixed_layout(el: &Element) -> Option<FixedLayout> {
    let is_face = el.name == "face";
    let mut stride = 0usize;
    let mut axes: [Option<(usize, Scalar)>; 3] = [None; 3];
    let mut indices = None;
    for prop in &el.properties {
        match prop {
            Property::Scalar(name, t) => {
                match name.as_str() {
                    "x" => axes[0] = Some((stride, *t)),
                    "y" => axes[1] = Some((stride, *t)),
                    "z" => axes[2] = Some((stride, *t)),
                    _ => {}
                }
                stride += t.size();
            }
            Property::List(name, c, i) if is_face && is_index_list(name) && indices.is_none() => {
                indices = Some((stride, *c, *i));
                stride += c.size() + 3 * i.size();
            }
            Property::List(..) => return None,
        }
    }
    let xyz = match axes {
        [Some(x), Some(y), Some(z)] => Some([x, y, z]),
        _ => None,
    };
    Some(FixedLayout { stride, xyz, indices })
}

/// The fast path for binary PLY whose elements all have fixed-size records (the layout every
/// mesh tool writes: scalar vertex properties, faces of one `list uchar int vertex_indices`
/// with 3 indices): vertices and faces decoded in parallel straight from the bytes.
///
/// Returns `None` whenever the file is anything else or anything in it is wrong (a face that is
/// not a triangle, a non-finite coordinate, an index out of range, a short file, an element the
/// layout cannot place): the general reader then reads it and reports the first problem exactly.
/// When it returns a mesh, that mesh is the one the general reader gives.
fn parse_fixed_binary(bytes: &[u8], body_start: usize, elements: &[Element], big: bool) -> Option<Mesh> {
    use rayon::prelude::*;
    let mut pos = body_start;
    // The records of the vertex and face elements, with their layouts.
    let mut vertex_records: Option<(&[u8], FixedLayout)> = None;
    let mut face_records: Option<(&[u8], FixedLayout)> = None;
    for el in elements {
        let layout = fixed_layout(el)?;
        let count = usize::try_from(el.count).ok()?;
        let len = count.checked_mul(layout.stride)?;
        let end = pos.checked_add(len)?;
        let records = bytes.get(pos..end)?;
        pos = end;
        match el.name.as_str() {
            // The general reader accepts several vertex or face elements; leave those to it.
            "vertex" if vertex_records.is_some() => return None,
            "face" if face_records.is_some() => return None,
            "vertex" => vertex_records = Some((records, layout)),
            "face" => face_records = Some((records, layout)),
            _ => {}
        }
    }
    let (records, layout) = vertex_records?;
    let (xyz, stride) = (layout.xyz?, layout.stride);
    // A zero-byte stride (no properties) cannot hold x, y and z, so `stride` > 0 here.
    let vertices: Vec<[f32; 3]> = records
        .par_chunks_exact(stride)
        .with_min_len(FAST_VERTICES)
        .map(|r| xyz.map(|(at, t)| t.read(&r[at..], big) as f32))
        .collect();
    if vertices.par_iter().any(|p| p.iter().any(|c| !c.is_finite())) {
        return None;
    }
    let nv = vertices.len();
    let triangles: Vec<[u32; 3]> = match face_records.and_then(|(r, l)| Some((r, l.indices?, l.stride))) {
        // No face element, or one without a list of vertex indices: no triangles.
        None => Vec::new(),
        Some((records, (at, ct, it), stride)) => records
            .par_chunks_exact(stride)
            .with_min_len(FAST_FACES)
            .map(|r| {
                let r = &r[at..];
                // The general reader's tests, in its order and with its conversions.
                let n = ct.read(r, big);
                if !((0.0..=1e6).contains(&n) && n as usize == 3) {
                    return None;
                }
                let mut t = [0u32; 3];
                for (k, slot) in t.iter_mut().enumerate() {
                    let v = it.read(&r[ct.size() + k * it.size()..], big);
                    if !(v >= 0.0 && v < u32::MAX as f64) || v as u32 as usize >= nv {
                        return None;
                    }
                    *slot = v as u32;
                }
                Some(t)
            })
            .collect::<Option<Vec<_>>>()?,
    };
    Some(Mesh::from_parts_unchecked(vertices, triangles))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use proptest::prelude::*;

    /// The general reader alone (value by value), the reference for the fixed-layout path.
    fn parse_general(bytes: &[u8], path: &Path) -> Result<Mesh> {
        let (encoding, elements, body_start) = parse_header(bytes, path)?;
        parse_body(bytes, path, encoding, &elements, body_start)
    }

    /// Both readers give the same mesh, or errors that say the same thing.
    fn assert_same(bytes: &[u8]) {
        let path = Path::new("p.ply");
        match (parse_ply(bytes, path), parse_general(bytes, path)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("fast {a:?} vs general {b:?}"),
        }
    }

    /// How a generated binary PLY lays out its records.
    #[derive(Debug, Clone)]
    struct Layout {
        big: bool,
        coord: Scalar,
        /// Extra scalar properties before `x` and after `z`.
        extra_before: Vec<Scalar>,
        extra_after: Vec<Scalar>,
        count: Scalar,
        index: Scalar,
        /// An element between vertices and faces.
        middle_element: bool,
    }

    fn name(t: Scalar) -> &'static str {
        match t {
            Scalar::I8 => "char",
            Scalar::U8 => "uchar",
            Scalar::I16 => "short",
            Scalar::U16 => "ushort",
            Scalar::I32 => "int",
            Scalar::U32 => "uint",
            Scalar::F32 => "float",
            Scalar::F64 => "double",
        }
    }

    fn put(out: &mut Vec<u8>, t: Scalar, v: f64, big: bool) {
        macro_rules! w {
            ($t:ty) => {{
                let x = v as $t;
                out.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
            }};
        }
        match t {
            Scalar::I8 => w!(i8),
            Scalar::U8 => w!(u8),
            Scalar::I16 => w!(i16),
            Scalar::U16 => w!(u16),
            Scalar::I32 => w!(i32),
            Scalar::U32 => w!(u32),
            Scalar::F32 => w!(f32),
            Scalar::F64 => w!(f64),
        }
    }

    /// A binary PLY of `vertices` and `faces` (lists of any length, indices as given) in `layout`.
    fn binary_ply(layout: &Layout, vertices: &[[f64; 3]], faces: &[Vec<f64>]) -> Vec<u8> {
        let big = layout.big;
        let mut h = format!(
            "ply\nformat binary_{}_endian 1.0\nelement vertex {}\n",
            if big { "big" } else { "little" },
            vertices.len()
        );
        for (k, t) in layout.extra_before.iter().enumerate() {
            h += &format!("property {} before{k}\n", name(*t));
        }
        for c in ["x", "y", "z"] {
            h += &format!("property {} {c}\n", name(layout.coord));
        }
        for (k, t) in layout.extra_after.iter().enumerate() {
            h += &format!("property {} after{k}\n", name(*t));
        }
        if layout.middle_element {
            h += "element material 2\nproperty uchar red\nproperty float shine\n";
        }
        h += &format!("element face {}\n", faces.len());
        h += &format!(
            "property list {} {} vertex_indices\nend_header\n",
            name(layout.count),
            name(layout.index)
        );
        let mut b = h.into_bytes();
        for (i, p) in vertices.iter().enumerate() {
            for t in &layout.extra_before {
                put(&mut b, *t, (i % 100) as f64, big);
            }
            for &c in p {
                put(&mut b, layout.coord, c, big);
            }
            for t in &layout.extra_after {
                put(&mut b, *t, 7.0, big);
            }
        }
        if layout.middle_element {
            for _ in 0..2 {
                put(&mut b, Scalar::U8, 9.0, big);
                put(&mut b, Scalar::F32, 0.5, big);
            }
        }
        for f in faces {
            put(&mut b, layout.count, f.len() as f64, big);
            for &i in f {
                put(&mut b, layout.index, i, big);
            }
        }
        b
    }

    fn any_scalar() -> impl Strategy<Value = Scalar> {
        prop_oneof![
            Just(Scalar::I8),
            Just(Scalar::U8),
            Just(Scalar::I16),
            Just(Scalar::U16),
            Just(Scalar::I32),
            Just(Scalar::U32),
            Just(Scalar::F32),
            Just(Scalar::F64),
        ]
    }

    fn any_layout() -> impl Strategy<Value = Layout> {
        (
            any::<bool>(),
            prop_oneof![Just(Scalar::F32), Just(Scalar::F64), Just(Scalar::I16)],
            proptest::collection::vec(any_scalar(), 0..3),
            proptest::collection::vec(any_scalar(), 0..3),
            prop_oneof![Just(Scalar::U8), Just(Scalar::I32), Just(Scalar::F32)],
            prop_oneof![Just(Scalar::I32), Just(Scalar::U32), Just(Scalar::U16)],
            any::<bool>(),
        )
            .prop_map(|(big, coord, extra_before, extra_after, count, index, middle_element)| {
                Layout { big, coord, extra_before, extra_after, count, index, middle_element }
            })
    }

    /// What to break in a generated file.
    #[derive(Debug, Clone, Copy)]
    enum Damage {
        None,
        /// Face `k` (mod the face count) becomes a quad.
        Quad(usize),
        /// Face `k` refers to a vertex past the end.
        IndexOutOfRange(usize),
        /// Vertex `k` gets an infinite coordinate (only where the coordinate type can hold one).
        Infinite(usize),
        /// The file loses its last `k` bytes.
        Truncate(usize),
    }

    fn any_damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            3 => Just(Damage::None),
            1 => any::<usize>().prop_map(Damage::Quad),
            1 => any::<usize>().prop_map(Damage::IndexOutOfRange),
            1 => any::<usize>().prop_map(Damage::Infinite),
            1 => (1usize..40).prop_map(Damage::Truncate),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn fixed_layout_path_matches_the_general_reader(
            layout in any_layout(),
            nv in 1usize..60,
            seed in any::<u64>(),
            nf in 0usize..80,
            damage in any_damage(),
        ) {
            let mut s = seed | 1;
            let mut next = move || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            let mut vertices: Vec<[f64; 3]> =
                (0..nv).map(|_| std::array::from_fn(|_| (next() % 200) as f64 * 0.25 - 25.0)).collect();
            if layout.coord == Scalar::I16 {
                vertices.iter_mut().flatten().for_each(|c| *c = c.round());
            }
            let mut faces: Vec<Vec<f64>> =
                (0..nf).map(|_| (0..3).map(|_| (next() % nv as u64) as f64).collect()).collect();
            match damage {
                Damage::Quad(k) if nf > 0 => faces[k % nf].push(0.0),
                Damage::IndexOutOfRange(k) if nf > 0 => faces[k % nf][1] = nv as f64,
                Damage::Infinite(k) if layout.coord != Scalar::I16 => vertices[k % nv][2] = f64::INFINITY,
                _ => {}
            }
            let mut bytes = binary_ply(&layout, &vertices, &faces);
            if let Damage::Truncate(k) = damage {
                bytes.truncate(bytes.len().saturating_sub(k));
            }
            assert_same(&bytes);
            if matches!(damage, Damage::None) {
                // Undamaged files take the fixed-layout path.
                let (enc, elements, start) = parse_header(&bytes, Path::new("p.ply")).unwrap();
                let Encoding::Binary { big } = enc else { unreachable!() };
                prop_assert!(parse_fixed_binary(&bytes, start, &elements, big).is_some());
            }
        }
    }

    #[test]
    fn layouts_the_fast_path_leaves_to_the_general_reader() {
        let tri = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let layout = Layout {
            big: false,
            coord: Scalar::F32,
            extra_before: vec![],
            extra_after: vec![],
            count: Scalar::U8,
            index: Scalar::I32,
            middle_element: false,
        };
        let plain = binary_ply(&layout, &tri, &[vec![0.0, 1.0, 2.0]]);
        assert_same(&plain);
        // A second list in the face element (texture coordinates): variable-size records.
        let text = String::from_utf8_lossy(&plain).into_owned();
        let header_end = text.find("end_header\n").unwrap();
        let mut b = text[..header_end]
            .replace("vertex_indices\n", "vertex_indices\nproperty list uchar float texcoord\n");
        b += "end_header\n";
        let mut bytes = b.into_bytes();
        bytes.extend_from_slice(&plain[header_end + "end_header\n".len()..]);
        bytes.push(2);
        bytes.extend_from_slice(&0.5f32.to_le_bytes());
        bytes.extend_from_slice(&0.25f32.to_le_bytes());
        let (_, elements, start) = parse_header(&bytes, Path::new("t.ply")).unwrap();
        assert!(parse_fixed_binary(&bytes, start, &elements, false).is_none());
        assert_same(&bytes);
        assert_eq!(parse_ply(&bytes, Path::new("t.ply")).unwrap().triangles(), &[[0, 1, 2]]);
    }

    /// The CThead reference skull (written by another tool as STL) through our binary PLY: the
    /// fixed-layout path, the general reader and the STL agree exactly.
    #[test]
    #[cfg_attr(not(msd_shared_data), ignore = "needs ../shared/data")]
    fn real_skull_reads_the_same_both_ways() {
        let stl = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cthead/skull_ref.stl");
        let mesh = crate::read_mesh(stl).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("skull.ply");
        write_ply(&p, &mesh).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let fast = parse_ply(&bytes, &p).unwrap();
        assert_eq!(fast, mesh);
        assert_eq!(fast, parse_general(&bytes, &p).unwrap());
    }

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
