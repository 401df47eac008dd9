//! Decoding an instance's pixel data (any transfer syntax the build supports) into rescaled `f32`
//! slices: stored bits masked, the sign taken from the high bit, then slope and intercept applied.
use dicom::core::DicomValue;
use dicom::dictionary_std::tags;
use dicom::object::OpenFileOptions;
use dicom_pixeldata::PixelDecoder;

use super::scan::Instance;
use crate::{Error, Result};

/// A readable name for the transfer syntaxes a CT archive holds.
pub(crate) fn transfer_syntax_name(uid: &str) -> &'static str {
    match uid {
        "1.2.840.10008.1.2" => "Implicit VR Little Endian",
        "1.2.840.10008.1.2.1" => "Explicit VR Little Endian",
        "1.2.840.10008.1.2.1.99" => "Deflated Explicit VR Little Endian",
        "1.2.840.10008.1.2.2" => "Explicit VR Big Endian",
        "1.2.840.10008.1.2.4.50" => "JPEG Baseline",
        "1.2.840.10008.1.2.4.51" => "JPEG Extended",
        "1.2.840.10008.1.2.4.57" => "JPEG Lossless",
        "1.2.840.10008.1.2.4.70" => "JPEG Lossless SV1",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Near-Lossless",
        "1.2.840.10008.1.2.4.90" => "JPEG 2000 Lossless",
        "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.5" => "RLE Lossless",
        _ => "unknown transfer syntax",
    }
}

/// Decodes the frames `frames` (indices into the instance's frames) of `inst`, each as a
/// `rows × columns` slice in row-major order.
pub(crate) fn decode(inst: &Instance, frames: &[usize]) -> Result<Vec<Vec<f32>>> {
    let path = &inst.path;
    super::guard::check_lengths(path)?;
    let obj = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| Error::Dicom { path: path.clone(), what: format!("cannot read: {e}") })?;
    let ts = &inst.transfer_syntax;
    let pixels = inst.rows as usize * inst.columns as usize;
    let bytes_per = usize::from(inst.bits_allocated).div_ceil(8);
    // Native (unencapsulated) pixel data is used as stored: no decoder, no extra copy.
    let native = obj.get(tags::PIXEL_DATA).and_then(|e| match e.value() {
        DicomValue::Primitive(p) => Some(p.to_bytes()),
        _ => None,
    });
    let decoded;
    let data: &[u8] = match &native {
        Some(bytes) if bytes.len() >= pixels * bytes_per * inst.frames.len() => bytes,
        _ => {
            decoded = obj.decode_pixel_data().map_err(|e| Error::Dicom {
                path: path.clone(),
                what: format!(
                    "cannot decode pixel data in transfer syntax {ts} ({}): {e}",
                    transfer_syntax_name(ts)
                ),
            })?;
            if decoded.bits_allocated() != inst.bits_allocated || decoded.samples_per_pixel() != 1 {
                return Err(Error::Dicom {
                    path: path.clone(),
                    what: format!(
                        "decoder returned {} bits × {} samples, header says {} bits × 1",
                        decoded.bits_allocated(),
                        decoded.samples_per_pixel(),
                        inst.bits_allocated
                    ),
                });
            }
            decoded.data()
        }
    };
    let mut out = Vec::with_capacity(frames.len());
    for &f in frames {
        let frame = &inst.frames[f];
        let start = frame.index as usize * pixels * bytes_per;
        let bytes = data.get(start..start + pixels * bytes_per).ok_or_else(|| Error::Truncated {
            path: path.clone(),
            expected: ((frame.index as usize + 1) * pixels * bytes_per) as u64,
            found: data.len() as u64,
        })?;
        out.push(to_values(inst, bytes, frame.slope, frame.intercept));
    }
    Ok(out)
}

/// Stored values → rescaled `f32`. Only the `BitsStored` bits ending at `HighBit` carry the value: the
/// bits above are masked off (some scanners leave overlay bits or garbage there), and for signed data
/// the top stored bit is the sign.
fn to_values(inst: &Instance, bytes: &[u8], slope: f64, intercept: f64) -> Vec<f32> {
    let stored = u32::from(inst.bits_stored);
    let shift = u32::from(inst.high_bit) + 1 - stored;
    let mask: u64 = if stored >= 64 { u64::MAX } else { (1u64 << stored) - 1 };
    let signed = inst.signed;
    let value = move |raw: u64| -> f64 {
        let v = (raw >> shift) & mask;
        if signed && stored < 64 && v & (1 << (stored - 1)) != 0 {
            (v as i64 - (1i64 << stored)) as f64
        } else {
            v as f64
        }
    };
    let rescale = move |v: f64| (v * slope + intercept) as f32;
    match inst.bits_allocated {
        8 => bytes.iter().map(|&b| rescale(value(u64::from(b)))).collect(),
        16 => bytes
            .chunks_exact(2)
            .map(|c| rescale(value(u64::from(u16::from_le_bytes([c[0], c[1]])))))
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|c| rescale(value(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))))
            .collect(),
    }
}
