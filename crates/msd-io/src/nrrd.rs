//! NRRD (`.nrrd`, detached `.nhdr`): the "nearly raw raster data" format of Teem, as 3D Slicer and the
//! SkullBreak / MUG500+ data sets use it.
//!
//! Read: magic `NRRD0001`–`NRRD0005`; `type` (every scalar spelling of the spec); `dimension: 3`;
//! `sizes`; `encoding` `raw`, `gzip`/`gz` or `ascii`/`text`/`txt`; `endian`; `space`
//! (`left-posterior-superior`/`LPS`, `right-anterior-superior`/`RAS`, `left-anterior-superior`/`LAS`)
//! or `space dimension: 3`; `space directions` and `space origin`, or else `spacings`; `line skip`,
//! `byte skip` (including `-1` for raw data at the end of the file); `data file` (a single detached
//! file, relative to the header's folder). Comments and `key:=value` pairs are skipped. Everything
//! else that would change the meaning of the data (bzip2 or hex encodings, lists of data files,
//! non-millimetre space units, non-3-D images) is refused with [`Error::Unsupported`].
//!
//! Write: `NRRD0004`, space `left-posterior-superior`, little endian, gzip (default) or raw, attached
//! or detached. Numbers are written as the shortest decimal that reads back to the same `f64`, so
//! geometry round-trips exactly.
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use ndarray::Array3;

use crate::error::{malformed, unsupported};
use crate::payload::{self, MAX_DEFLATE_RATIO};
use crate::voxel::{ByteOrder, NativeVoxel, ScalarType, VoxelType, for_each_le_chunk};
use crate::{Error, Geometry, Result, Volume};

/// Longest header accepted, in bytes: real headers are a few hundred bytes.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// How voxel data is encoded in a NRRD file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Raw bytes.
    Raw,
    /// gzip-compressed bytes.
    Gzip,
    /// Whitespace-separated decimal numbers (read only).
    Ascii,
}

/// What a NRRD header says about its volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Shape `[z, y, x]`.
    pub shape: [usize; 3],
    /// The `type` field as written in the file.
    pub type_name: String,
    /// The voxel placement in LPS millimetres (converted from the file's space).
    pub geometry: Geometry,
    /// The data encoding.
    pub encoding: Encoding,
    /// The detached data file, if the data is not in the header's file.
    pub data_file: Option<PathBuf>,
    scalar: ScalarType,
    order: ByteOrder,
    line_skip: u64,
    byte_skip: i64,
}

/// Options for [`write()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Data encoding: [`Encoding::Gzip`] (default) or [`Encoding::Raw`].
    pub encoding: Encoding,
    /// gzip level 0–9 (default 1, as nibabel: several times faster than 6 for files about 10 % larger).
    pub gzip_level: u32,
    /// Write the data to a separate file beside the header (`<stem>.raw` or `<stem>.raw.gz`) and
    /// refer to it with `data file:`. Default: false for `.nrrd`; [`crate::write_volume`] sets it for
    /// `.nhdr` names.
    pub detached: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { encoding: Encoding::Gzip, gzip_level: 1, detached: false }
    }
}

/// Reads a NRRD file (attached `.nrrd` or detached `.nhdr` header) as `f32` values.
pub fn read(path: impl AsRef<Path>) -> Result<Volume<f32>> {
    let path = path.as_ref();
    let (header, data_start) = parse(path)?;
    read_data(path, &header, data_start)
}

/// Reads only the header of a NRRD file.
pub fn read_header(path: impl AsRef<Path>) -> Result<Header> {
    Ok(parse(path.as_ref())?.0)
}

/// Parses the header; returns it with the byte offset where attached data begins.
fn parse(path: &Path) -> Result<(Header, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file).take(MAX_HEADER_BYTES);
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| Error::io(path, e))?;
        offset += n as u64;
        if n == 0 {
            if first {
                return Err(malformed(path, "magic", "empty file"));
            }
            // End of file without the blank line: valid for a detached header.
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        if first {
            first = false;
            if !(text.len() == 8
                && text.starts_with("NRRD000")
                && matches!(&text[7..], "1" | "2" | "3" | "4" | "5"))
            {
                return Err(malformed(
                    path,
                    "magic",
                    format!("{:?}, expected NRRD0001..NRRD0005", truncate(&text)),
                ));
            }
            continue;
        }
        if text.is_empty() {
            break;
        }
        if text.starts_with('#') {
            continue;
        }
        if text.contains(":=") {
            continue;
        }
        let Some((key, value)) = text.split_once(": ") else {
            return Err(malformed(
                path,
                "header line",
                format!("{:?} is not \"field: value\"", truncate(&text)),
            ));
        };
        lines.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        if offset >= MAX_HEADER_BYTES {
            return Err(malformed(path, "header", "longer than 1 MiB without the blank line that ends it"));
        }
    }
    let get = |k: &str| lines.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let require = |k: &str| get(k).ok_or_else(|| malformed(path, k, "required field is missing"));

    let dimension: usize = require("dimension")?
        .parse()
        .map_err(|_| malformed(path, "dimension", format!("{:?} is not a number", get("dimension"))))?;
    if dimension != 3 {
        return Err(unsupported(path, format!("dimension {dimension}: only 3-D volumes are read")));
    }
    let type_name = require("type")?.to_string();
    let scalar = scalar_for(&type_name).ok_or_else(|| {
        if type_name == "block" {
            unsupported(path, "type \"block\"")
        } else {
            malformed(path, "type", format!("{:?} is not a NRRD type", truncate(&type_name)))
        }
    })?;
    let sizes_text = require("sizes")?;
    let sizes: Vec<usize> = sizes_text
        .split_whitespace()
        .map(|s| s.parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            malformed(path, "sizes", format!("{:?}: expected positive integers", truncate(sizes_text)))
        })?;
    if sizes.len() != 3 {
        return Err(malformed(path, "sizes", format!("{} values for dimension 3", sizes.len())));
    }
    let encoding = match require("encoding")?.to_ascii_lowercase().as_str() {
        "raw" => Encoding::Raw,
        "gzip" | "gz" => Encoding::Gzip,
        "ascii" | "text" | "txt" => Encoding::Ascii,
        "bzip2" | "bz2" | "hex" | "zrl" => {
            return Err(unsupported(path, format!("encoding {:?}", get("encoding").unwrap_or_default())));
        }
        other => {
            return Err(malformed(path, "encoding", format!("{:?} is not a NRRD encoding", truncate(other))));
        }
    };
    let order = match get("endian").map(|s| s.to_ascii_lowercase()) {
        Some(e) if e == "little" => ByteOrder::Little,
        Some(e) if e == "big" => ByteOrder::Big,
        Some(e) => {
            return Err(malformed(path, "endian", format!("{:?}, expected little or big", truncate(&e))));
        }
        None if scalar.size() == 1 || encoding == Encoding::Ascii => ByteOrder::Little,
        None => return Err(malformed(path, "endian", "required for multi-byte types and is missing")),
    };
    // Sign flips from the file's space to LPS.
    let flip = match get("space").map(|s| s.to_ascii_lowercase()) {
        Some(s) if s == "left-posterior-superior" || s == "lps" => [1.0, 1.0, 1.0],
        Some(s) if s == "right-anterior-superior" || s == "ras" => [-1.0, -1.0, 1.0],
        Some(s) if s == "left-anterior-superior" || s == "las" => [1.0, -1.0, 1.0],
        Some(s) => return Err(unsupported(path, format!("space {:?}", truncate(&s)))),
        None => match get("space dimension") {
            Some("3") | None => [1.0, 1.0, 1.0],
            Some(d) => return Err(unsupported(path, format!("space dimension {:?}", truncate(d)))),
        },
    };
    if let Some(units) = get("space units") {
        let ok = units.split_whitespace().all(|u| u.trim_matches('"').eq_ignore_ascii_case("mm"));
        if !ok {
            return Err(unsupported(path, format!("space units {:?}: only millimetres", truncate(units))));
        }
    }
    let geometry = if let Some(dirs) = get("space directions") {
        let vectors = parse_vectors(dirs).map_err(|what| malformed(path, "space directions", what))?;
        if vectors.len() != 3 || vectors.iter().any(Option::is_none) {
            return Err(malformed(path, "space directions", format!("{:?}: need 3 vectors", truncate(dirs))));
        }
        let origin = match get("space origin") {
            Some(o) => {
                match parse_vectors(o).map_err(|what| malformed(path, "space origin", what))?.as_slice() {
                    [Some(v)] => *v,
                    _ => {
                        return Err(malformed(
                            path,
                            "space origin",
                            format!("{:?}: need one vector", truncate(o)),
                        ));
                    }
                }
            }
            None => [0.0; 3],
        };
        let mut affine = [[0.0; 4]; 3];
        for r in 0..3 {
            for (c, v) in vectors.iter().enumerate() {
                affine[r][c] = flip[r] * v.expect("checked above")[r];
            }
            affine[r][3] = flip[r] * origin[r];
        }
        Geometry::from_affine(&affine)
            .map_err(|e| malformed(path, "space directions/space origin", e.to_string()))?
    } else {
        let spacing = match get("spacings") {
            Some(s) => {
                let v: Vec<f64> =
                    s.split_whitespace().map(|t| t.parse::<f64>().ok()).collect::<Option<_>>().ok_or_else(
                        || malformed(path, "spacings", format!("{:?} is not numbers", truncate(s))),
                    )?;
                if v.len() != 3 {
                    return Err(malformed(path, "spacings", format!("{} values for dimension 3", v.len())));
                }
                [v[0], v[1], v[2]]
            }
            None => [1.0; 3],
        };
        Geometry::new(spacing, [0.0; 3], Geometry::IDENTITY)
            .map_err(|e| malformed(path, "spacings", e.to_string()))?
    };
    let line_skip = match get("line skip").or(get("lineskip")) {
        Some(s) => s.parse().map_err(|_| malformed(path, "line skip", format!("{:?}", truncate(s))))?,
        None => 0,
    };
    let byte_skip: i64 = match get("byte skip").or(get("byteskip")) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|&v: &i64| v >= -1)
            .ok_or_else(|| malformed(path, "byte skip", format!("{:?}", truncate(s))))?,
        None => 0,
    };
    if byte_skip == -1 && encoding != Encoding::Raw {
        return Err(malformed(path, "byte skip", "-1 is only allowed with raw encoding"));
    }
    let data_file = match get("data file").or(get("datafile")) {
        None => None,
        Some(name) => {
            if name.starts_with("LIST") || name.contains('%') || name.split_whitespace().count() > 1 {
                return Err(unsupported(
                    path,
                    format!("data file {:?}: only a single data file", truncate(name)),
                ));
            }
            let base = path.parent().unwrap_or(Path::new("."));
            Some(base.join(name))
        }
    };
    let header = Header {
        shape: [sizes[2], sizes[1], sizes[0]],
        type_name,
        geometry,
        encoding,
        data_file,
        scalar,
        order,
        line_skip,
        byte_skip,
    };
    Ok((header, offset))
}

/// A shortened copy of a header value for error messages (headers can hold megabytes of junk).
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn scalar_for(name: &str) -> Option<ScalarType> {
    Some(match name {
        "signed char" | "int8" | "int8_t" => ScalarType::I8,
        "uchar" | "unsigned char" | "uint8" | "uint8_t" => ScalarType::U8,
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => ScalarType::I16,
        "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => ScalarType::U16,
        "int" | "signed int" | "int32" | "int32_t" => ScalarType::I32,
        "uint" | "unsigned int" | "uint32" | "uint32_t" => ScalarType::U32,
        "longlong"
        | "long long"
        | "long long int"
        | "signed long long"
        | "signed long long int"
        | "int64"
        | "int64_t" => ScalarType::I64,
        "ulonglong" | "unsigned long long" | "unsigned long long int" | "uint64" | "uint64_t" => {
            ScalarType::U64
        }
        "float" => ScalarType::F32,
        "double" => ScalarType::F64,
        _ => return None,
    })
}

/// Parses `(a,b,c) none (d,e,f)`: one entry per vector, `None` for `none`.
fn parse_vectors(text: &str) -> std::result::Result<Vec<Option<[f64; 3]>>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("none") {
            out.push(None);
            rest = after.trim_start();
            continue;
        }
        let Some(inner) = rest.strip_prefix('(') else {
            return Err(format!("{:?}: expected \"(x,y,z)\" or \"none\"", truncate(rest)));
        };
        let Some(end) = inner.find(')') else {
            return Err(format!("{:?}: missing \")\"", truncate(rest)));
        };
        let parts: Vec<f64> = inner[..end]
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("{:?} is not a vector of numbers", truncate(&inner[..end])))?;
        let [x, y, z] = parts[..] else {
            return Err(format!("({}) has {} components, expected 3", truncate(&inner[..end]), parts.len()));
        };
        out.push(Some([x, y, z]));
        rest = inner[end + 1..].trim_start();
        if out.len() > 16 {
            return Err("more than 16 vectors".into());
        }
    }
    Ok(out)
}

/// Where a file's voxel values come from, positioned at the first value.
enum Payload<'a> {
    /// Raw or gzip bytes, ready to decode.
    Binary { reader: Box<dyn Read + Send + 'a>, data_path: &'a Path, count: usize },
    /// Decimal text, `skip` bytes before the first value.
    Ascii { reader: BufReader<File>, data_path: &'a Path, count: usize, skip: u64 },
}

/// Opens the voxel data (the attached data after the header, or the detached data file), checks
/// that the file can hold what the header announces, and moves to the first value.
fn open_payload<'a>(path: &'a Path, header: &'a Header, data_start: u64) -> Result<Payload<'a>> {
    let (data_path, start) = match &header.data_file {
        Some(p) => (p.as_path(), 0),
        None => (path, data_start),
    };
    let mut file = File::open(data_path).map_err(|e| Error::io(data_path, e))?;
    let len = file.metadata().map_err(|e| Error::io(data_path, e))?.len();
    let (count, bytes) = payload::checked_sizes(data_path, "sizes", &header.shape, header.scalar)?;
    file.seek(SeekFrom::Start(start.min(len))).map_err(|e| Error::io(data_path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut consumed = start.min(len);
    // Line skip counts lines of the stored file (before decompression), as Teem does.
    for _ in 0..header.line_skip {
        let mut sink = Vec::new();
        let n = (&mut reader)
            .take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut sink)
            .map_err(|e| Error::io(data_path, e))?;
        if n == 0 {
            return Err(Error::Truncated { path: data_path.to_path_buf(), expected: bytes, found: 0 });
        }
        consumed += n as u64;
    }
    let remaining = len.saturating_sub(consumed);
    match header.encoding {
        Encoding::Raw => {
            let skip = if header.byte_skip == -1 {
                remaining.checked_sub(bytes).ok_or(Error::Truncated {
                    path: data_path.to_path_buf(),
                    expected: bytes,
                    found: remaining,
                })?
            } else {
                header.byte_skip as u64
            };
            if skip.saturating_add(bytes) > remaining {
                return Err(Error::Truncated {
                    path: data_path.to_path_buf(),
                    expected: bytes,
                    found: remaining.saturating_sub(skip),
                });
            }
            payload::skip(&mut reader, skip).map_err(|e| Error::io(data_path, e))?;
            Ok(Payload::Binary { reader: Box::new(reader), data_path, count })
        }
        Encoding::Gzip => {
            let skip = header.byte_skip as u64;
            if skip.saturating_add(bytes) > remaining.saturating_mul(MAX_DEFLATE_RATIO) {
                return Err(Error::Truncated {
                    path: data_path.to_path_buf(),
                    expected: bytes,
                    found: remaining.saturating_mul(MAX_DEFLATE_RATIO),
                });
            }
            let mut dec = MultiGzDecoder::new(reader);
            let skipped = payload::skip(&mut dec, skip).map_err(|e| Error::io(data_path, e))?;
            if skipped < skip {
                return Err(Error::Truncated { path: data_path.to_path_buf(), expected: bytes, found: 0 });
            }
            Ok(Payload::Binary { reader: Box::new(dec), data_path, count })
        }
        Encoding::Ascii => {
            // Every value takes at least two bytes ("0 "), which bounds the count before allocating.
            if (count as u64) > remaining.div_ceil(2) + 1 {
                return Err(Error::Truncated {
                    path: data_path.to_path_buf(),
                    expected: count as u64,
                    found: remaining,
                });
            }
            Ok(Payload::Ascii { reader, data_path, count, skip: header.byte_skip.max(0) as u64 })
        }
    }
}

/// Reads the voxel values as `f32`.
fn read_f32_values(header: &Header, payload: Payload<'_>) -> Result<Vec<f32>> {
    match payload {
        Payload::Binary { mut reader, data_path, count } => {
            payload::read_f32(&mut reader, data_path, header.scalar, header.order, count, 1.0, 0.0)
        }
        Payload::Ascii { mut reader, data_path, count, skip } => {
            read_ascii(&mut reader, data_path, header, count, skip)
        }
    }
}

fn read_data(path: &Path, header: &Header, data_start: u64) -> Result<Volume<f32>> {
    let values = read_f32_values(header, open_payload(path, header, data_start)?)?;
    into_volume(path, header, values)
}

fn into_volume<T>(path: &Path, header: &Header, values: Vec<T>) -> Result<Volume<T>> {
    let data = Array3::from_shape_vec(header.shape, values)
        .map_err(|e| malformed(path, "sizes", format!("{:?}: {e}", header.shape)))?;
    Volume::new(data, header.geometry)
}

/// Reads a NRRD label file: every value must be an integer in 0..=255, else [`Error::NotLabels`]
/// names the first voxel that is not. Raw and gzip data go from the file's type to the `u8` array
/// without an intermediate `f32` copy, decoded in parallel while the next part of the file is read
/// or decompressed.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Volume<u8>> {
    let path = path.as_ref();
    let (header, data_start) = parse(path)?;
    let (values, bad) = match open_payload(path, &header, data_start)? {
        Payload::Binary { mut reader, data_path, count } => {
            payload::read_labels(&mut reader, data_path, header.scalar, header.order, count, 1.0, 0.0)?
        }
        ascii @ Payload::Ascii { .. } => {
            // Text is parsed as numbers anyway; the labels are checked on the parsed values.
            let values = read_f32_values(&header, ascii)?;
            let bad = values.iter().position(|v| !(v.fract() == 0.0 && (0.0..=255.0).contains(v)));
            let bad = bad.map(|i| (i, values[i]));
            (values.into_iter().map(|v| v as u8).collect(), bad)
        }
    };
    if let Some((i, v)) = bad {
        return Err(crate::error::not_labels(path, header.shape, i, f64::from(v)));
    }
    into_volume(path, &header, values)
}

/// Reads a NRRD file in its stored type when that is `u8`, `i16` or `u16` with raw or gzip
/// encoding (NRRD has no rescaling), else as `f32` like [`read()`]. The values are the same as
/// [`read()`]'s; only their type differs.
pub fn read_native(path: impl AsRef<Path>) -> Result<crate::NativeVolume> {
    use crate::NativeVolume;
    let path = path.as_ref();
    let (header, data_start) = parse(path)?;
    let (mut reader, data_path, count) = match open_payload(path, &header, data_start)? {
        Payload::Binary { reader, data_path, count } => (reader, data_path, count),
        ascii @ Payload::Ascii { .. } => {
            return Ok(NativeVolume::F32(into_volume(path, &header, read_f32_values(&header, ascii)?)?));
        }
    };
    let r = &mut reader;
    Ok(match header.scalar {
        ScalarType::U8 => NativeVolume::U8(read_typed(r, path, data_path, &header, count)?),
        ScalarType::I16 => NativeVolume::I16(read_typed(r, path, data_path, &header, count)?),
        ScalarType::U16 => NativeVolume::U16(read_typed(r, path, data_path, &header, count)?),
        _ => {
            let values = payload::read_f32(r, data_path, header.scalar, header.order, count, 1.0, 0.0)?;
            NativeVolume::F32(into_volume(path, &header, values)?)
        }
    })
}

/// Reads `count` values stored as `T` straight into a `T` volume.
fn read_typed<T: NativeVoxel>(
    reader: &mut (dyn Read + Send + '_),
    path: &Path,
    data_path: &Path,
    header: &Header,
    count: usize,
) -> Result<Volume<T>> {
    debug_assert_eq!(header.scalar, T::SCALAR);
    let order = header.order;
    let (values, _) =
        payload::read_decoded(reader, data_path, T::SCALAR.size(), count, |b, out: &mut [T]| {
            T::decode_into(b, order, out);
            None
        })?;
    into_volume(path, header, values)
}

fn read_ascii(
    reader: &mut dyn Read,
    path: &Path,
    header: &Header,
    count: usize,
    skip: u64,
) -> Result<Vec<f32>> {
    payload::skip(reader, skip).map_err(|e| Error::io(path, e))?;
    let mut text = String::new();
    reader.read_to_string(&mut text).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::with_capacity(count);
    for token in text.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()).take(count) {
        let v: f64 = token.parse().map_err(|_| {
            malformed(path, "ascii data", format!("value {} is {:?}", out.len(), truncate(token)))
        })?;
        out.push(match header.scalar {
            ScalarType::F32 | ScalarType::F64 => v as f32,
            _ if v.fract() != 0.0 => {
                return Err(malformed(
                    path,
                    "ascii data",
                    format!("value {} is {v}, not an integer", out.len()),
                ));
            }
            _ => v as f32,
        });
    }
    if out.len() < count {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: count as u64,
            found: out.len() as u64,
        });
    }
    Ok(out)
}

/// Writes a volume as NRRD (space `left-posterior-superior`, little endian). The header (and the
/// data file, when detached) appear atomically.
pub fn write<T: VoxelType>(path: impl AsRef<Path>, volume: &Volume<T>, options: &WriteOptions) -> Result<()> {
    let path = path.as_ref();
    let gzip = match options.encoding {
        Encoding::Gzip => true,
        Encoding::Raw => false,
        Encoding::Ascii => return Err(unsupported(path, "writing ascii-encoded NRRD (use raw or gzip)")),
    };
    let data_name = if options.detached {
        let stem =
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "volume".into());
        Some(format!("{stem}.raw{}", if gzip { ".gz" } else { "" }))
    } else {
        None
    };
    let text = header_text::<T>(volume, gzip, data_name.as_deref());
    let write_data = |w: &mut dyn Write| -> Result<()> {
        if gzip {
            let mut enc = GzEncoder::new(w, Compression::new(options.gzip_level.min(9)));
            for_each_le_chunk(volume.data(), 1 << 18, |b| enc.write_all(b))
                .map_err(|e| Error::io(path, e))?;
            enc.finish().map_err(|e| Error::io(path, e))?;
            Ok(())
        } else {
            for_each_le_chunk(volume.data(), 1 << 18, |b| w.write_all(b)).map_err(|e| Error::io(path, e))
        }
    };
    match data_name {
        Some(name) => {
            let data_path = path.parent().unwrap_or(Path::new("")).join(name);
            crate::atomic_file::write_atomic(&data_path, write_data)?;
            crate::atomic_file::write_atomic(path, |w| {
                w.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
            })
        }
        None => crate::atomic_file::write_atomic(path, |w| {
            w.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))?;
            write_data(w)
        }),
    }
}

fn header_text<T: VoxelType>(volume: &Volume<T>, gzip: bool, data_file: Option<&str>) -> String {
    let [nz, ny, nx] = volume.shape();
    let g = volume.geometry();
    let (s, d, o) = (g.spacing(), g.direction(), g.origin());
    let col = |j: usize| format!("({},{},{})", d[0][j] * s[j], d[1][j] * s[j], d[2][j] * s[j]);
    let mut h = String::from("NRRD0004\n# Complete NRRD file format specification at:\n");
    h += "# http://teem.sourceforge.net/nrrd/format.html\n";
    h += &format!("type: {}\ndimension: 3\nspace: left-posterior-superior\n", T::NRRD_TYPE);
    h += &format!("sizes: {nx} {ny} {nz}\n");
    h += &format!("space directions: {} {} {}\n", col(0), col(1), col(2));
    h += "kinds: domain domain domain\n";
    if T::SIZE > 1 {
        h += "endian: little\n";
    }
    h += &format!("encoding: {}\n", if gzip { "gzip" } else { "raw" });
    h += &format!("space origin: ({},{},{})\n", o[0], o[1], o[2]);
    if let Some(name) = data_file {
        h += &format!("data file: {name}\n");
    }
    h += "\n";
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse_with_spaces_and_none() {
        let v = parse_vectors("none ( 1, 0,0) (0,1e-1,0)(0,0,-2.5)").unwrap();
        assert_eq!(v, vec![None, Some([1.0, 0.0, 0.0]), Some([0.0, 0.1, 0.0]), Some([0.0, 0.0, -2.5])]);
        assert!(parse_vectors("(1,0)").is_err());
        assert!(parse_vectors("(1,0,0").is_err());
        assert!(parse_vectors("[1,0,0]").is_err());
    }
}
