//! Atomic file writes: a temporary file in the target's folder, renamed over it when complete, so a
//! crash never leaves a half-written report or preview.
use std::io::Write as _;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::file(path, e))?;
    tmp.write_all(bytes).map_err(|e| Error::file(path, e))?;
    // Temporary files are created private (0600); the result is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::Permissions::from_mode(0o644);
        tmp.as_file().set_permissions(mode).map_err(|e| Error::file(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::file(path, e))?;
    tmp.persist(path).map_err(|e| Error::file(path, e.error))?;
    Ok(())
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
