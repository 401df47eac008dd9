//! A length check run before a file reaches the DICOM parser: every element, item and fragment
//! length must fit in what is left of the file. The parser sizes its buffers from these lengths, so
//! a corrupt length (say 0xFFFFFFFE) would otherwise commit gigabytes before failing.
//!
//! The walk reads only element headers and skips values. It never rejects what it does not
//! understand (deflated data sets, UN elements of undefined length): it then stops and lets the
//! parser decide.
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use crate::{Error, Result};

const UNDEFINED: u32 = 0xFFFF_FFFF;

struct Walker<R> {
    r: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Walker<R> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).ok()?;
        self.pos += N as u64;
        Some(b)
    }
    fn skip(&mut self, n: u64) -> Option<()> {
        self.r.seek_relative(i64::try_from(n).ok()?).ok()?;
        self.pos += n;
        Some(())
    }
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
}

/// Checks `path`'s element lengths against its size; `Err` names the first impossible length.
pub(crate) fn check_lengths(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut w = Walker { r: BufReader::with_capacity(1 << 16, file), pos: 0, len };
    match walk(&mut w) {
        Some(Some((tag, claimed))) => Err(Error::Dicom {
            path: path.to_path_buf(),
            what: format!(
                "element ({:04X},{:04X}) at byte {} claims {claimed} bytes, only {} remain in the file",
                tag.0,
                tag.1,
                w.pos,
                w.left()
            ),
        }),
        // A clean end, or a structure this walk does not follow: leave it to the parser.
        _ => Ok(()),
    }
}

/// `Some(Some((tag, length)))` for an impossible length; `Some(None)` or `None` otherwise.
fn walk<R: Read + Seek>(w: &mut Walker<R>) -> Option<Option<((u16, u16), u64)>> {
    // Preamble and magic; files without them start directly with the data set.
    let mut ts = String::from("1.2.840.10008.1.2");
    if w.len >= 132 {
        w.skip(128)?;
        if &w.bytes::<4>()? == b"DICM" {
            // File meta group: always explicit VR little endian.
            loop {
                let start = w.pos;
                let head = w.bytes::<4>()?;
                let group = u16::from_le_bytes([head[0], head[1]]);
                if group != 0x0002 {
                    w.r.seek(std::io::SeekFrom::Start(start)).ok()?;
                    w.pos = start;
                    break;
                }
                let elem = u16::from_le_bytes([head[2], head[3]]);
                let vr = w.bytes::<2>()?;
                let l = if long_length(&vr) {
                    w.skip(2)?;
                    u32::from_le_bytes(w.bytes::<4>()?)
                } else {
                    u32::from(u16::from_le_bytes(w.bytes::<2>()?))
                };
                if l == UNDEFINED {
                    return Some(None);
                }
                if u64::from(l) > w.left() {
                    return Some(Some(((group, elem), u64::from(l))));
                }
                if elem == 0x0010 {
                    let mut v = vec![0u8; l as usize];
                    w.r.read_exact(&mut v).ok()?;
                    w.pos += u64::from(l);
                    ts = String::from_utf8_lossy(&v).trim_end_matches(['\0', ' ']).to_string();
                } else {
                    w.skip(u64::from(l))?;
                }
            }
        } else {
            w.r.rewind().ok()?;
            w.pos = 0;
        }
    }
    let (explicit, big) = match ts.as_str() {
        "1.2.840.10008.1.2" => (false, false),
        "1.2.840.10008.1.2.2" => (true, true),
        // The deflated data set cannot be walked without inflating it.
        "1.2.840.10008.1.2.1.99" => return Some(None),
        _ => (true, false),
    };
    let u16_of = |b: [u8; 2]| if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) };
    let u32_of = |b: [u8; 4]| if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
    let mut in_fragments = false;
    while w.left() >= 8 {
        let tag = (u16_of(w.bytes::<2>()?), u16_of(w.bytes::<2>()?));
        if tag.0 == 0xFFFE {
            // Item or delimiter: no VR, 4-byte length.
            let l = u32_of(w.bytes::<4>()?);
            match tag.1 {
                0xE0DD => in_fragments = false,
                0xE000 if l != UNDEFINED => {
                    if u64::from(l) > w.left() {
                        return Some(Some((tag, u64::from(l))));
                    }
                    // Fragments hold raw bytes; items of a sequence hold elements, walked in place.
                    if in_fragments {
                        w.skip(u64::from(l))?;
                    }
                }
                _ => {}
            }
            continue;
        }
        if in_fragments {
            return Some(None);
        }
        let (l, vr) = if explicit {
            let vr = w.bytes::<2>()?;
            if !vr.iter().all(|c| c.is_ascii_uppercase()) {
                return Some(None);
            }
            if long_length(&vr) {
                w.skip(2)?;
                (u32_of(w.bytes::<4>()?), Some(vr))
            } else {
                (u32::from(u16_of(w.bytes::<2>()?)), Some(vr))
            }
        } else {
            (u32_of(w.bytes::<4>()?), None)
        };
        if l == UNDEFINED {
            if tag == (0x7FE0, 0x0010) {
                in_fragments = true;
            } else if vr.is_some_and(|v| &v != b"SQ") {
                // UN of undefined length: its content is implicit VR; not followed here.
                return Some(None);
            }
            continue;
        }
        if u64::from(l) > w.left() {
            return Some(Some((tag, u64::from(l))));
        }
        if vr == Some(*b"SQ") {
            // A defined-length sequence: its items are walked in place.
            continue;
        }
        w.skip(u64::from(l))?;
    }
    Some(None)
}

fn long_length(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
    )
}
