//! NIfTI-1 (`.nii`, `.nii.gz`): read and write single-file NIfTI-1 volumes with their geometry.
//!
//! NIfTI stores world coordinates in RAS (+x right, +y anterior); [`Geometry`] is LPS, so the first
//! two rows of the NIfTI affine are negated on the way in and out. On reading, the sform is used when
//! `sform_code > 0`, else the qform when `qform_code > 0` (both as `nibabel` does), else the plain
//! `pixdim` scaling of the NIfTI "method 1". `scl_slope` / `scl_inter` are applied (a slope of 0 or a
//! non-finite slope means "no scaling", as the standard says).
//!
//! On writing, the sform holds the exact affine and the qform the same transform as a quaternion
//! (when the direction is a rotation, possibly with a reflection), both with code 1 (scanner
//! anatomical), `pixdim` the spacing, units millimetres, `scl_slope` 1 and `scl_inter` 0. Header
//! floats are 32-bit, so geometry round-trips to `f32` precision (about 1e-7 relative).
//!
//! The reader never allocates from an unchecked header field: the voxel count must not overflow and
//! must fit in the file (for `.nii.gz`, in what the compressed size can expand to).
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use ndarray::Array3;

use crate::error::{malformed, unsupported};
use crate::payload::{self, MAX_DEFLATE_RATIO};
use crate::voxel::{ByteOrder, NativeVoxel, ScalarType, VoxelType, for_each_le_chunk};
use crate::{Error, Geometry, Result, Volume};

/// Size of a NIfTI-1 header in bytes.
const HEADER_SIZE: usize = 348;
/// Where the voxel data of a file written here starts: the header plus the 4-byte extension flag.
const WRITE_VOX_OFFSET: usize = 352;

/// Which transform of a NIfTI-1 header placed the voxels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformSource {
    /// The sform (`srow_x`, `srow_y`, `srow_z`), with its `sform_code`.
    Sform(i16),
    /// The qform (quaternion, `qoffset` and `pixdim`), with its `qform_code`.
    Qform(i16),
    /// Neither transform is set: `pixdim` scaling only (NIfTI "method 1"), origin at zero.
    PixdimOnly,
}

/// What a NIfTI-1 header says about its volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Shape `[z, y, x]`.
    pub shape: [usize; 3],
    /// The `datatype` code (2 = uint8, 4 = int16, 8 = int32, 16 = float32, 64 = float64,
    /// 256 = int8, 512 = uint16, 768 = uint32, 1024 = int64, 1280 = uint64).
    pub datatype: i16,
    /// The voxel placement in LPS millimetres.
    pub geometry: Geometry,
    /// Where the geometry came from.
    pub transform: TransformSource,
    /// Scaling slope applied to stored values (1 when the file has none).
    pub scl_slope: f64,
    /// Scaling intercept applied to stored values (0 when the file has none).
    pub scl_inter: f64,
    /// Byte offset of the voxel data in the (uncompressed) file.
    pub vox_offset: u64,
    /// Byte order of the file.
    pub big_endian: bool,
    scalar: ScalarType,
}

/// Options for [`write()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// gzip level 0–9 for `.nii.gz` files (default 1, as nibabel: several times faster than 6 for
    /// files about 10 % larger); ignored for `.nii`.
    pub gzip_level: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { gzip_level: 1 }
    }
}

/// Reads a NIfTI-1 file (`.nii` or gzip-compressed `.nii.gz`, detected by content) as `f32` values
/// after `scl_slope` / `scl_inter`.
pub fn read(path: impl AsRef<Path>) -> Result<Volume<f32>> {
    let path = path.as_ref();
    let (mut reader, bound) = open(path)?;
    let header = parse_header(&mut reader, path)?;
    read_data(&mut reader, path, &header, bound)
}

/// Reads a NIfTI-1 label file: every value (after `scl_slope` / `scl_inter`) must be an integer in
/// 0..=255, else [`Error::NotLabels`] names the first voxel that is not. The values go from the file
/// to the `u8` array without an intermediate `f32` copy.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Volume<u8>> {
    let path = path.as_ref();
    let (mut reader, bound) = open(path)?;
    let header = parse_header(&mut reader, path)?;
    let count = seek_payload(&mut reader, path, &header, bound)?;
    let (values, bad) = payload::read_labels(
        &mut reader,
        path,
        header.scalar,
        header.order(),
        count,
        header.scl_slope,
        header.scl_inter,
    )?;
    if let Some((i, v)) = bad {
        return Err(crate::error::not_labels(path, header.shape, i, f64::from(v)));
    }
    into_volume(path, &header, values)
}

/// Reads a NIfTI-1 file in its stored type when that is `u8`, `i16` or `u16` without scaling
/// (`scl_slope` 1 or unset, `scl_inter` 0), else as `f32` like [`read()`].
pub fn read_native(path: impl AsRef<Path>) -> Result<crate::NativeVolume> {
    use crate::NativeVolume;
    let path = path.as_ref();
    let (mut reader, bound) = open(path)?;
    let header = parse_header(&mut reader, path)?;
    let identity = header.scl_slope == 1.0 && header.scl_inter == 0.0;
    Ok(match header.scalar {
        ScalarType::U8 if identity => NativeVolume::U8(read_typed(&mut reader, path, &header, bound)?),
        ScalarType::I16 if identity => NativeVolume::I16(read_typed(&mut reader, path, &header, bound)?),
        ScalarType::U16 if identity => NativeVolume::U16(read_typed(&mut reader, path, &header, bound)?),
        _ => NativeVolume::F32(read_data(&mut reader, path, &header, bound)?),
    })
}

fn read_typed<T: NativeVoxel>(
    reader: &mut (dyn Read + Send),
    path: &Path,
    header: &Header,
    bound: u64,
) -> Result<Volume<T>> {
    debug_assert_eq!(header.scalar, T::SCALAR);
    let count = seek_payload(reader, path, header, bound)?;
    let order = header.order();
    let (values, _) = payload::read_decoded(reader, path, T::SCALAR.size(), count, |b, out: &mut [T]| {
        T::decode_into(b, order, out);
        None
    })?;
    into_volume(path, header, values)
}

/// Reads only the header of a NIfTI-1 file.
pub fn read_header(path: impl AsRef<Path>) -> Result<Header> {
    let path = path.as_ref();
    let (mut reader, _) = open(path)?;
    parse_header(&mut reader, path)
}

/// Writes a volume as NIfTI-1, gzip-compressed when the file name ends in `.gz`. The file appears
/// atomically (temporary file in the same folder, then rename).
pub fn write<T: VoxelType>(path: impl AsRef<Path>, volume: &Volume<T>, options: &WriteOptions) -> Result<()> {
    let path = path.as_ref();
    let header = encode_header::<T>(path, volume)?;
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    crate::atomic_file::write_atomic(path, |w| {
        if gz {
            let mut enc = GzEncoder::new(w, Compression::new(options.gzip_level.min(9)));
            write_body(&mut enc, path, &header, volume)?;
            enc.finish().map_err(|e| Error::io(path, e))?;
            Ok(())
        } else {
            write_body(w, path, &header, volume)
        }
    })
}

fn write_body<T: VoxelType>(w: &mut dyn Write, path: &Path, header: &[u8], volume: &Volume<T>) -> Result<()> {
    w.write_all(header).map_err(|e| Error::io(path, e))?;
    for_each_le_chunk(volume.data(), 1 << 18, |bytes| w.write_all(bytes)).map_err(|e| Error::io(path, e))
}

/// Opens a NIfTI file, transparently decompressing gzip; returns the reader and the largest number
/// of bytes its content can have.
fn open(path: &Path) -> Result<(Box<dyn Read + Send>, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let magic = {
        use std::io::BufRead;
        let buf = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b
    };
    if magic {
        let bound = len.saturating_mul(MAX_DEFLATE_RATIO);
        Ok((Box::new(MultiGzDecoder::new(reader)), bound))
    } else {
        Ok((Box::new(reader), len))
    }
}

struct Fields<'a> {
    b: &'a [u8; HEADER_SIZE],
    order: ByteOrder,
}

impl Fields<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[at..at + N]);
        if self.order == ByteOrder::Big {
            a.reverse();
        }
        a
    }
    fn i16(&self, at: usize) -> i16 {
        i16::from_le_bytes(self.bytes(at))
    }
    fn f32(&self, at: usize) -> f64 {
        f64::from(f32::from_le_bytes(self.bytes(at)))
    }
}

fn scalar_for(datatype: i16) -> Option<ScalarType> {
    Some(match datatype {
        2 => ScalarType::U8,
        4 => ScalarType::I16,
        8 => ScalarType::I32,
        16 => ScalarType::F32,
        64 => ScalarType::F64,
        256 => ScalarType::I8,
        512 => ScalarType::U16,
        768 => ScalarType::U32,
        1024 => ScalarType::I64,
        1280 => ScalarType::U64,
        _ => return None,
    })
}

fn parse_header(reader: &mut (dyn Read + Send), path: &Path) -> Result<Header> {
    let mut b = [0u8; HEADER_SIZE];
    let got = payload::read_full(reader, &mut b).map_err(|e| Error::io(path, e))?;
    if got < HEADER_SIZE {
        return Err(malformed(path, "header", format!("file holds {got} bytes, a NIfTI-1 header needs 348")));
    }
    let order =
        match (i32::from_le_bytes([b[0], b[1], b[2], b[3]]), i32::from_be_bytes([b[0], b[1], b[2], b[3]])) {
            (348, _) => ByteOrder::Little,
            (_, 348) => ByteOrder::Big,
            (540, _) | (_, 540) => {
                return Err(unsupported(path, "NIfTI-2 (sizeof_hdr 540); only NIfTI-1 is read"));
            }
            (v, _) => return Err(malformed(path, "sizeof_hdr", format!("{v}, expected 348"))),
        };
    let f = Fields { b: &b, order };
    let magic = &b[344..348];
    match magic {
        b"n+1\0" => {}
        b"ni1\0" => {
            return Err(unsupported(
                path,
                "two-file NIfTI-1 (.hdr/.img pair, magic \"ni1\"); convert to .nii",
            ));
        }
        _ => return Err(malformed(path, "magic", format!("{magic:?}, expected \"n+1\\0\""))),
    }
    let mut dim = [0i16; 8];
    for (i, d) in dim.iter_mut().enumerate() {
        *d = f.i16(40 + 2 * i);
    }
    if !(1..=7).contains(&dim[0]) {
        return Err(malformed(path, "dim[0]", format!("{} dimensions, expected 1..=7", dim[0])));
    }
    let ndim = dim[0] as usize;
    let mut shape_xyz = [1usize; 3];
    for i in 1..=ndim {
        let d = dim[i];
        if d < 1 {
            return Err(malformed(
                path,
                format!("dim[{i}]"),
                format!("{d}: every dimension must be at least 1"),
            ));
        }
        if i <= 3 {
            shape_xyz[i - 1] = d as usize;
        } else if d != 1 {
            return Err(unsupported(
                path,
                format!("{ndim}-D image (dim = {:?}): only 3-D volumes are read", dim),
            ));
        }
    }
    let datatype = f.i16(70);
    let scalar = scalar_for(datatype)
        .ok_or_else(|| unsupported(path, format!("datatype {datatype} (complex, RGB or unknown)")))?;
    let bitpix = f.i16(72);
    if bitpix as usize != scalar.size() * 8 {
        return Err(malformed(path, "bitpix", format!("{bitpix} does not match datatype {datatype}")));
    }
    let vox_offset = f.f32(108);
    if !(vox_offset.is_finite() && vox_offset >= HEADER_SIZE as f64 && vox_offset.fract() == 0.0) {
        return Err(malformed(path, "vox_offset", format!("{vox_offset}: must be a whole number ≥ 348")));
    }
    let (mut slope, mut inter) = (f.f32(112), f.f32(116));
    if !slope.is_finite() || slope == 0.0 {
        (slope, inter) = (1.0, 0.0);
    }
    if !inter.is_finite() {
        return Err(malformed(path, "scl_inter", format!("{inter} is not finite")));
    }
    let mut pixdim = [0f64; 8];
    for (i, p) in pixdim.iter_mut().enumerate() {
        *p = f.f32(76 + 4 * i);
    }
    let (qform_code, sform_code) = (f.i16(252), f.i16(254));
    let (ras, transform) = if sform_code > 0 {
        let mut m = [[0f64; 4]; 3];
        for (r, row) in m.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f.f32(280 + 16 * r + 4 * c);
            }
        }
        (m, TransformSource::Sform(sform_code))
    } else if qform_code > 0 {
        let q = [f.f32(256), f.f32(260), f.f32(264)];
        let offset = [f.f32(268), f.f32(272), f.f32(276)];
        (quaternion_to_affine(q, offset, &pixdim), TransformSource::Qform(qform_code))
    } else {
        let mut m = [[0f64; 4]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = pixdim[i + 1];
        }
        (m, TransformSource::PixdimOnly)
    };
    // RAS → LPS: negate the x and y rows.
    let mut lps = [[0f64; 4]; 3];
    for r in 0..3 {
        let sign = if r < 2 { -1.0 } else { 1.0 };
        for c in 0..4 {
            lps[r][c] = sign * ras[r][c];
        }
    }
    let geometry = Geometry::from_affine(&lps).map_err(|e| {
        let field = match transform {
            TransformSource::Sform(_) => "srow_x/srow_y/srow_z",
            TransformSource::Qform(_) => "quatern/qoffset/pixdim",
            TransformSource::PixdimOnly => "pixdim",
        };
        malformed(path, field, e.to_string())
    })?;
    Ok(Header {
        shape: [shape_xyz[2], shape_xyz[1], shape_xyz[0]],
        datatype,
        geometry,
        transform,
        scl_slope: slope,
        scl_inter: inter,
        vox_offset: vox_offset as u64,
        big_endian: order == ByteOrder::Big,
        scalar,
    })
}

impl Header {
    fn order(&self) -> ByteOrder {
        if self.big_endian { ByteOrder::Big } else { ByteOrder::Little }
    }
}

/// Checks that the payload the header announces fits in what the file can hold, and moves
/// `reader` to its start; returns the number of values.
fn seek_payload(reader: &mut (dyn Read + Send), path: &Path, header: &Header, bound: u64) -> Result<usize> {
    let (count, bytes) = payload::checked_sizes(path, "dim", &header.shape, header.scalar)?;
    let needed = header.vox_offset.saturating_add(bytes);
    if needed > bound {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: bytes,
            found: bound.saturating_sub(header.vox_offset),
        });
    }
    let skip = header.vox_offset - HEADER_SIZE as u64;
    let skipped = payload::skip(reader, skip).map_err(|e| Error::io(path, e))?;
    if skipped < skip {
        return Err(Error::Truncated { path: path.to_path_buf(), expected: bytes, found: 0 });
    }
    Ok(count)
}

fn into_volume<T>(path: &Path, header: &Header, values: Vec<T>) -> Result<Volume<T>> {
    let data = Array3::from_shape_vec(header.shape, values)
        .map_err(|e| malformed(path, "dim", format!("shape {:?}: {e}", header.shape)))?;
    Volume::new(data, header.geometry)
}

fn read_data(
    reader: &mut (dyn Read + Send),
    path: &Path,
    header: &Header,
    bound: u64,
) -> Result<Volume<f32>> {
    let count = seek_payload(reader, path, header, bound)?;
    let values = payload::read_f32(
        reader,
        path,
        header.scalar,
        header.order(),
        count,
        header.scl_slope,
        header.scl_inter,
    )?;
    into_volume(path, header, values)
}

/// The RAS affine (3×4) of a NIfTI qform, as `quatern_to_mat44` in the reference `nifti1_io.c`.
fn quaternion_to_affine(q: [f64; 3], offset: [f64; 3], pixdim: &[f64; 8]) -> [[f64; 4]; 3] {
    let [mut b, mut c, mut d] = q;
    let mut a = 1.0 - (b * b + c * c + d * d);
    if a < 1e-7 {
        // Numerically a 180° rotation: renormalise (b, c, d) and take a = 0.
        let n = 1.0 / (b * b + c * c + d * d).sqrt();
        b *= n;
        c *= n;
        d *= n;
        a = 0.0;
    } else {
        a = a.sqrt();
    }
    let pos = |v: f64| if v > 0.0 { v } else { 1.0 };
    let (xd, yd) = (pos(pixdim[1]), pos(pixdim[2]));
    let zd = pos(pixdim[3]) * if pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    [
        [
            (a * a + b * b - c * c - d * d) * xd,
            2.0 * (b * c - a * d) * yd,
            2.0 * (b * d + a * c) * zd,
            offset[0],
        ],
        [
            2.0 * (b * c + a * d) * xd,
            (a * a + c * c - b * b - d * d) * yd,
            2.0 * (c * d - a * b) * zd,
            offset[1],
        ],
        [
            2.0 * (b * d - a * c) * xd,
            2.0 * (c * d + a * b) * yd,
            (a * a + d * d - c * c - b * b) * zd,
            offset[2],
        ],
    ]
}

/// The quaternion `(b, c, d)` and `qfac` of an orthonormal RAS rotation matrix, as
/// `nifti_mat44_to_quatern` in `nifti1_io.c`.
fn rotation_to_quaternion(r: [[f64; 3]; 3]) -> ([f64; 3], f64) {
    let mut r = r;
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (a, mut b, mut c, mut d);
    if trace > 0.5 {
        a = 0.5 * trace.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
        // (a, b, c, d) and its negation are the same rotation: keep a ≥ 0 as the standard does.
        if a < 0.0 {
            b = -b;
            c = -c;
            d = -d;
        }
    }
    ([b, c, d], qfac)
}

fn encode_header<T: VoxelType>(path: &Path, volume: &Volume<T>) -> Result<Vec<u8>> {
    let [nz, ny, nx] = volume.shape();
    for (axis, n) in [("x", nx), ("y", ny), ("z", nz)] {
        if n > i16::MAX as usize {
            return Err(unsupported(path, format!("{n} voxels along {axis}: NIfTI-1 holds at most 32767")));
        }
    }
    let g = volume.geometry();
    let (spacing, origin, dir) = (g.spacing(), g.origin(), g.direction());
    let mut b = vec![0u8; WRITE_VOX_OFFSET];
    let put = |b: &mut Vec<u8>, at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(&mut b, 0, &348i32.to_le_bytes());
    put(&mut b, 38, b"r");
    for (i, d) in [3i16, nx as i16, ny as i16, nz as i16, 1, 1, 1, 1].iter().enumerate() {
        put(&mut b, 40 + 2 * i, &d.to_le_bytes());
    }
    put(&mut b, 70, &T::NIFTI_DATATYPE.to_le_bytes());
    put(&mut b, 72, &((T::SIZE * 8) as i16).to_le_bytes());
    // RAS rotation: LPS direction with the x and y rows negated.
    let mut rot = dir;
    for row in rot.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    let orthogonal = g.is_orthogonal(1e-6);
    let (quat, qfac) = if orthogonal { rotation_to_quaternion(rot) } else { ([0.0; 3], 1.0) };
    let pixdim = [qfac, spacing[0], spacing[1], spacing[2], 1.0, 1.0, 1.0, 1.0];
    for (i, p) in pixdim.iter().enumerate() {
        put(&mut b, 76 + 4 * i, &(*p as f32).to_le_bytes());
    }
    put(&mut b, 108, &(WRITE_VOX_OFFSET as f32).to_le_bytes());
    put(&mut b, 112, &1f32.to_le_bytes());
    put(&mut b, 116, &0f32.to_le_bytes());
    put(&mut b, 123, &[2u8]); // xyzt_units: millimetres
    put(&mut b, 148, b"msd-io");
    let qform_code: i16 = if orthogonal { 1 } else { 0 };
    put(&mut b, 252, &qform_code.to_le_bytes());
    put(&mut b, 254, &1i16.to_le_bytes());
    let ras_origin = [-origin[0], -origin[1], origin[2]];
    for i in 0..3 {
        put(&mut b, 256 + 4 * i, &(quat[i] as f32).to_le_bytes());
        put(&mut b, 268 + 4 * i, &(ras_origin[i] as f32).to_le_bytes());
    }
    for r in 0..3 {
        for c in 0..3 {
            put(&mut b, 280 + 16 * r + 4 * c, &((rot[r][c] * spacing[c]) as f32).to_le_bytes());
        }
        put(&mut b, 280 + 16 * r + 12, &(ras_origin[r] as f32).to_le_bytes());
    }
    put(&mut b, 344, b"n+1\0");
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_round_trip_with_reflection() {
        let (s, c) = (0.3f64.sin(), 0.3f64.cos());
        // A rotation about z followed by a flip of the third axis (det −1).
        let r = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, -1.0]];
        let (q, qfac) = rotation_to_quaternion(r);
        assert_eq!(qfac, -1.0);
        let m = quaternion_to_affine(q, [0.0; 3], &[qfac, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        for i in 0..3 {
            for j in 0..3 {
                assert!((m[i][j] - r[i][j]).abs() < 1e-12, "{m:?} vs {r:?}");
            }
        }
    }
}
