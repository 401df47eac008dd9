//! Sets `cfg(msd_shared_data)` when the project's shared data folder (`../shared/data`, beside the
//! checkout) exists, so tests that need it report themselves as ignored, not passed, when it is absent.
fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The workspace root is this crate's folder or two levels above it (crates/<name>).
    let candidates = [manifest.join("../shared/data"), manifest.join("../../../shared/data")];
    println!("cargo::rustc-check-cfg=cfg(msd_shared_data)");
    for dir in candidates {
        println!("cargo::rerun-if-changed={}", dir.display());
        if dir.is_dir() {
            println!("cargo::rustc-cfg=msd_shared_data");
            break;
        }
    }
}
