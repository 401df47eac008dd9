//! Generates a synthetic head CT with a craniectomy and metal, and writes previews of it with the
//! ground-truth skull contour.
//!
//! `cargo run --example phantom -- [OUT_DIR] [SEED]`
use std::path::PathBuf;

use msd::phantom::{PhantomConfig, generate};
use msd::preview::{Overlay, PreviewOptions, REFERENCE_COLOUR, write_previews};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "phantom-out".into()));
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let config = PhantomConfig::standard().with_craniectomy_probability(1.0).with_metal(true);
    let head = generate(&config, seed)?;
    let overlays = [Overlay::new(&head.skull, REFERENCE_COLOUR)];
    let at = head.craniectomy.map(|c| {
        // Slice through the middle of the defect.
        let r = 60.0;
        let p = [0, 1, 2].map(|k| head.head_centre[k] + c.direction[k] * r);
        let i = head.ct.geometry().world_to_index(p);
        let [nz, ny, nx] = head.ct.shape();
        [
            (i[0].round().max(0.0) as usize).min(nx - 1),
            (i[1].round().max(0.0) as usize).min(ny - 1),
            (i[2].round().max(0.0) as usize).min(nz - 1),
        ]
    });
    for path in write_previews(&out, "phantom", &head.ct, at, &overlays, &PreviewOptions::default())? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
