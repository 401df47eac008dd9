//! Recognising a file's format from its name and, failing that, its first bytes.
use std::path::Path;

/// The formats `msd-io` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Nifti,
    Nrrd,
    Dicom,
}

/// The format a path names by its extension (`.nii`, `.nii.gz`, `.nrrd`, `.nhdr`, `.dcm`, `DICOMDIR`),
/// or `None`.
pub(crate) fn by_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        Some(Format::Nifti)
    } else if name.ends_with(".nrrd") || name.ends_with(".nhdr") {
        Some(Format::Nrrd)
    } else if name.ends_with(".dcm") || name == "dicomdir" {
        Some(Format::Dicom)
    } else {
        None
    }
}

/// The format a file's first bytes show, or `None`.
pub(crate) fn by_content(path: &Path) -> Option<Format> {
    let mut head = [0u8; 352];
    let mut file = std::fs::File::open(path).ok()?;
    let n = crate::payload::read_full(&mut file, &mut head).ok()?;
    let head = &head[..n];
    if head.starts_with(b"NRRD000") {
        return Some(Format::Nrrd);
    }
    if n >= 132 && &head[128..132] == b"DICM" {
        return Some(Format::Dicom);
    }
    let is_nifti = |h: &[u8]| h.len() >= 348 && (&h[344..347] == b"n+1" || &h[344..347] == b"ni1");
    if is_nifti(head) {
        return Some(Format::Nifti);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let file = std::fs::File::open(path).ok()?;
        let mut dec = flate2::read::MultiGzDecoder::new(file);
        let mut inner = [0u8; 348];
        let m = crate::payload::read_full(&mut dec, &mut inner).ok()?;
        if is_nifti(&inner[..m]) {
            return Some(Format::Nifti);
        }
        return None;
    }
    // DICOM without the 128-byte preamble (old ACR-NEMA style files): group 0x0008 tags come first.
    if n >= 8 && head[0] == 0x08 && head[1] == 0x00 {
        return Some(Format::Dicom);
    }
    None
}
