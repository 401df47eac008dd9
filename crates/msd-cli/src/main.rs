//! The `msd` command: CT to skull STL, training, segmentation, evaluation and a built-in demo.
fn main() {
    println!("msd {}", env!("CARGO_PKG_VERSION"));
}
