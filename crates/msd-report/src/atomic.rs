//! Whole-file writes: every picture and report goes through the workspace's one atomic writer,
//! [`msd_io::write_atomic`] (a temporary file beside the target, synced and renamed over it, mode
//! 0644), so a crash never leaves a half-written PNG or HTML file under the target's name.
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` whole or not at all.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    msd_io::write_atomic(path, |w| w.write_all(bytes).map_err(|e| Error::file(path, e)))
}

/// Writes `text` to `path` whole or not at all.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_whole_files_with_ordinary_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.html");
        super::write_text(&p, "one").unwrap();
        super::write_text(&p, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(matches!(
            super::write_text(&dir.path().join("missing/a.html"), "x"),
            Err(crate::Error::Io(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }
}
