//! Segment a CT with a trained model: label volume, printable skull STL and preview PNGs.
//!
//! `cargo run --release --example segment_scan -- MODEL.safetensors CT OUT_DIR`
use std::path::PathBuf;

use msd::net::Model;
use msd::preview::{Overlay, PreviewOptions, SEGMENTATION_COLOUR, write_previews};
use msd::surface::SurfaceOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [model, ct, out] = args.as_slice() else {
        return Err("usage: segment_scan MODEL.safetensors CT OUT_DIR".into());
    };
    std::fs::create_dir_all(out)?;
    let model = Model::load(model)?;
    let ct = msd::io::read_volume(ct)?;
    let seg = msd::segment(&model, &ct)?;
    msd::io::write_volume(out.join("skull.nii.gz"), &seg.labels)?;
    // The skull and any bone fragment of some size; specks of noise are dropped.
    let mesh = SurfaceOptions::default().min_component_triangles(200).extract(&seg.labels)?;
    msd::geom::write_mesh(out.join("skull.stl"), &mesh)?;
    let overlays = [Overlay::new(&seg.labels, SEGMENTATION_COLOUR)];
    write_previews(out, "skull", &ct, None, &overlays, &PreviewOptions::default())?;
    println!(
        "skull: {} triangles, {:.0} cm², watertight: {}",
        mesh.triangles().len(),
        mesh.area() / 100.0,
        mesh.check().is_watertight()
    );
    Ok(())
}
