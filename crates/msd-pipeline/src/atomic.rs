//! Atomic file writes with the workflow's [`Error`]: whole files through the workspace's one
//! atomic writer, [`msd_io::write_atomic`] (a temporary file in the target's folder, synced and
//! renamed over it when complete), so a crash never leaves a half-written manifest or report.
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically (through the workspace's one atomic writer,
/// [`msd_io::write_atomic`], which also gives the file ordinary 0644 permissions).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    msd_io::write_atomic(path, |w| w.write_all(bytes).map_err(|e| Error::file(path, e)))
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        super::write_text(&p, "one").unwrap();
        super::write_text(&p, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(super::write_text(&dir.path().join("missing/a.txt"), "x").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }
}
