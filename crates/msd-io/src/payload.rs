//! Reading voxel payloads: exactly the number of values a header announces, decoded chunk by chunk
//! into `f32`, with a typed error when the stream ends early.
use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::voxel::{ByteOrder, ScalarType};
use crate::{Error, Result};

/// The most a deflate stream can expand (1032:1), used to reject compressed files whose header
/// announces more data than their size could ever hold, before anything is allocated.
pub(crate) const MAX_DEFLATE_RATIO: u64 = 1032;

/// Number of values and bytes in a `dims` grid of `ty`, or a typed error when the product overflows.
pub(crate) fn checked_sizes(
    path: &Path,
    field: &str,
    dims: &[usize],
    ty: ScalarType,
) -> Result<(usize, u64)> {
    let mut count: usize = 1;
    for &d in dims {
        count = count.checked_mul(d).ok_or_else(|| {
            crate::error::malformed(path, field, format!("dimensions {dims:?} overflow the address space"))
        })?;
    }
    let bytes = (count as u64).checked_mul(ty.size() as u64).ok_or_else(|| {
        crate::error::malformed(path, field, format!("dimensions {dims:?} overflow the byte count"))
    })?;
    Ok((count, bytes))
}

/// Reads `count` values of `ty` from `reader`, applying `v * slope + inter`. The caller has already
/// checked that `count` values can be in the input (file size or compression bound).
pub(crate) fn read_f32(
    reader: &mut dyn Read,
    path: &Path,
    ty: ScalarType,
    order: ByteOrder,
    count: usize,
    slope: f64,
    inter: f64,
) -> Result<Vec<f32>> {
    const CHUNK_VALUES: usize = 1 << 18;
    let size = ty.size();
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; CHUNK_VALUES.min(count.max(1)) * size];
    let mut done = 0usize;
    while done < count {
        let n = (count - done).min(CHUNK_VALUES) * size;
        let got = read_full(reader, &mut buf[..n]).map_err(|e| Error::io(path, e))?;
        if got < n {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                expected: (count * size) as u64,
                found: (done * size + got) as u64,
            });
        }
        ty.decode_f32(&buf[..n], order, slope, inter, &mut out);
        done += n / size;
    }
    Ok(out)
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Skips `n` bytes of `reader`; returns how many were actually there.
pub(crate) fn skip(reader: &mut dyn Read, n: u64) -> std::io::Result<u64> {
    std::io::copy(&mut reader.take(n), &mut std::io::sink())
}
