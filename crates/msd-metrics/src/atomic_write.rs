//! Whole-or-nothing file writes: a temporary file in the target's folder, renamed into place.
use std::io::Write;
use std::path::Path;

use crate::Result;

/// Writes a file through `fill`, so that `path` holds either its old content or the complete new
/// one, never a half-written file (the workspace's one atomic writer, [`msd_io::write_atomic`]).
pub(crate) fn write_atomically(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    msd_io::write_atomic(path, fill)
}
