//! Reading voxel payloads: exactly the number of values a header announces, decoded into the
//! caller's element type, with a typed error when the stream ends early.
//!
//! Decompression (or disk reads) and decoding overlap: one thread fills byte buffers from the
//! stream while the calling thread decodes the previous buffer, in parallel pieces, straight into
//! the output array. Nothing is decoded twice and no intermediate `f32` copy of an integer volume
//! is made.
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::mpsc;

use rayon::prelude::*;

use crate::voxel::{ByteOrder, ScalarType};
use crate::{Error, Result};

/// The most a deflate stream can expand (1032:1), used to reject compressed files whose header
/// announces more data than their size could ever hold, before anything is allocated.
pub(crate) const MAX_DEFLATE_RATIO: u64 = 1032;

/// Values per buffer handed from the reading thread to the decoder.
const CHUNK_VALUES: usize = 1 << 18;
/// Values per parallel decoding task inside one buffer.
const PIECE_VALUES: usize = 1 << 15;

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
    reader: &mut (dyn Read + Send),
    path: &Path,
    ty: ScalarType,
    order: ByteOrder,
    count: usize,
    slope: f64,
    inter: f64,
) -> Result<Vec<f32>> {
    let (values, _) = read_decoded(reader, path, ty.size(), count, |bytes, out: &mut [f32]| {
        ty.decode_f32_into(bytes, order, slope, inter, out);
        None
    })?;
    Ok(values)
}

/// A value that is not a label (not an integer in 0..=255): its flat index and value.
pub(crate) type NotLabel = (usize, f32);

/// Reads `count` values of `ty` as labels (integers in 0..=255 after `v * slope + inter`). Returns
/// the labels and, when some value is not a label, the first such value and its flat index.
pub(crate) fn read_labels(
    reader: &mut (dyn Read + Send),
    path: &Path,
    ty: ScalarType,
    order: ByteOrder,
    count: usize,
    slope: f64,
    inter: f64,
) -> Result<(Vec<u8>, Option<NotLabel>)> {
    read_decoded(reader, path, ty.size(), count, |bytes, out: &mut [u8]| {
        ty.decode_labels_into(bytes, order, slope, inter, out)
    })
}

/// Reads `count` values of `size` bytes each, decoding every buffer with `decode` (bytes of whole
/// values → the same number of output values; it may report the first value it refuses, by its
/// index in the piece) while the next buffer is being read. Returns the values and the first refused
/// one (flat index, value), if any; the whole payload is read either way, so truncation is reported
/// before content errors.
pub(crate) fn read_decoded<T, D>(
    reader: &mut (dyn Read + Send),
    path: &Path,
    size: usize,
    count: usize,
    decode: D,
) -> Result<(Vec<T>, Option<NotLabel>)>
where
    T: Copy + Default + Send + Sync,
    D: Fn(&[u8], &mut [T]) -> Option<NotLabel> + Sync,
{
    let expected = count as u64 * size as u64;
    let mut out = Vec::new();
    out.try_reserve_exact(count).map_err(|_| {
        crate::error::unsupported(path, format!("{count} voxels do not fit in memory ({expected} bytes)"))
    })?;
    out.resize(count, T::default());
    let chunk_bytes = CHUNK_VALUES.min(count.max(1)) * size;
    let mut first_bad: Option<NotLabel> = None;
    let mut done = 0usize;
    let read_result = std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(2);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..3 {
            // Receivers are alive until the scope ends, so this send cannot fail.
            let _ = empty_tx.send(vec![0u8; chunk_bytes]);
        }
        let producer = scope.spawn(move || -> std::io::Result<u64> {
            let mut read = 0u64;
            while read < expected {
                let Ok(mut buf) = empty_rx.recv() else { break };
                let n = (expected - read).min(chunk_bytes as u64) as usize;
                let got = read_full(reader, &mut buf[..n])?;
                read += got as u64;
                if full_tx.send((buf, got)).is_err() || got < n {
                    break;
                }
            }
            Ok(read)
        });
        for (buf, got) in full_rx {
            let values = got / size;
            let piece_bytes = PIECE_VALUES * size;
            let target = &mut out[done..done + values];
            let bad = target
                .par_chunks_mut(PIECE_VALUES)
                .zip(buf[..values * size].par_chunks(piece_bytes))
                .enumerate()
                .filter_map(|(p, (o, b))| decode(b, o).map(|(i, v)| (p * PIECE_VALUES + i, v)))
                .min_by_key(|&(i, _)| i);
            if first_bad.is_none() {
                first_bad = bad.map(|(i, v)| (done + i, v));
            }
            done += values;
            // The producer may have finished already; the buffer is then simply dropped.
            let _ = empty_tx.send(buf);
        }
        producer.join().unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked")))
    });
    let read = read_result.map_err(|e| Error::io(path, e))?;
    if read < expected {
        return Err(Error::Truncated { path: path.to_path_buf(), expected, found: read });
    }
    Ok((out, first_bad))
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
pub(crate) fn read_full(reader: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
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
pub(crate) fn skip(reader: &mut (impl Read + ?Sized), n: u64) -> std::io::Result<u64> {
    std::io::copy(&mut reader.take(n), &mut std::io::sink())
}
