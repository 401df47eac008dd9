//! Atomic file output: write into a temporary file beside the target, then rename it into place, so a
//! crash or an error never leaves a half-written volume under the target's name.
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::Error;

/// Writes a file whole or not at all: runs `fill` on a buffered writer into a temporary file in
/// `path`'s folder and, when it succeeds, flushes, syncs and renames the file to `path` (replacing an
/// existing file, with the permissions of an ordinary file). On error the temporary file is removed
/// and `path` is untouched.
///
/// Every crate of the workspace writes its outputs (volumes, meshes, models, reports, pictures)
/// through this one function. `fill` returns the caller's own error type, which must convert from
/// [`Error`] (the I/O failures of the temporary file, named by path).
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("notes.txt");
/// msd_io::write_atomic(&path, |w| w.write_all(b"whole or nothing").map_err(|e| msd_io::Error::io(&path, e)))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "whole or nothing");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic<E: From<Error>>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".msd-io-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| E::from(Error::io(dir, e)))?;
    let mut writer = BufWriter::with_capacity(1 << 20, tmp);
    fill(&mut writer)?;
    let tmp = writer.into_inner().map_err(|e| E::from(Error::io(path, e.into_error())))?;
    #[cfg(unix)]
    {
        // Temporary files are created private (0600); a saved volume should read like any other file.
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        tmp.as_file().set_permissions(perms).map_err(|e| E::from(Error::io(path, e)))?;
    }
    tmp.as_file().sync_all().map_err(|e| E::from(Error::io(path, e)))?;
    tmp.persist(path).map_err(|e| E::from(Error::io(path, e.error)))?;
    Ok(())
}
