//! Generates a whole-head clinical phantom, says how long it took, and writes bone-window slices
//! (axial through the orbits, the teeth and the vault; coronal and sagittal through the head centre)
//! as 8-bit PGM images, with the slice spacing stretched to square display pixels.
//!
//! `cargo run --release -p msd-phantom --example phantom_preview -- [OUT_DIR] [PIXEL_MM] [SLICE_MM] [SEED]`
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use msd_phantom::{PhantomConfig, generate};

/// Bone window: −1000 HU black (so the table's foam and the air differ), 2000 HU white.
const WINDOW: (f32, f32) = (-1000.0, 2000.0);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "phantom-preview".into()));
    let pixel: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.5);
    let slice: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let mut config =
        PhantomConfig::clinical(pixel, slice)?.with_metal(true).with_craniectomy_probability(1.0);
    config.dental_filling_probability = 1.0;
    let [nz, ny, nx] = config.shape;
    let start = Instant::now();
    let head = generate(&config, seed)?;
    println!("{nx} × {ny} × {nz} voxels in {:.2} s", start.elapsed().as_secs_f64());
    std::fs::create_dir_all(&out)?;

    let ct = head.ct.data();
    let g = head.ct.geometry();
    let at = |world: [f64; 3]| {
        let i = g.world_to_index(world);
        [i[2].round() as usize, i[1].round() as usize, i[0].round() as usize]
    };
    let l = head.landmarks.as_ref().ok_or("a whole head has landmarks")?;
    let c = head.head_centre;
    let grey = |v: f32| (((v - WINDOW.0) / (WINDOW.1 - WINDOW.0)).clamp(0.0, 1.0) * 255.0) as u8;
    let stretch = (slice / pixel).round().max(1.0) as usize;
    for (name, z) in [
        ("axial_vault", at([c[0], c[1], c[2] + 45.0])[0]),
        ("axial_orbits", at(l.orbits[0])[0]),
        ("axial_skull_base", at(l.mastoids[0])[0]),
        ("axial_teeth", at(l.molar_crowns[0])[0]),
    ] {
        let pixels: Vec<u8> =
            (0..ny).flat_map(|y| (0..nx).map(move |x| [z, y, x])).map(|i| grey(ct[i])).collect();
        write_pgm(&out.join(format!("{name}.pgm")), nx, ny, &pixels)?;
    }
    let [_, cy, cx] = at(c);
    // Coronal and sagittal: top of the head at the top (z decreases downwards).
    let coronal: Vec<u8> = (0..nz * stretch)
        .flat_map(|r| (0..nx).map(move |x| [nz - 1 - r / stretch, cy, x]))
        .map(|i| grey(ct[i]))
        .collect();
    write_pgm(&out.join("coronal.pgm"), nx, nz * stretch, &coronal)?;
    let sagittal: Vec<u8> = (0..nz * stretch)
        .flat_map(|r| (0..ny).map(move |y| [nz - 1 - r / stretch, y, cx]))
        .map(|i| grey(ct[i]))
        .collect();
    write_pgm(&out.join("sagittal.pgm"), ny, nz * stretch, &sagittal)?;
    println!("wrote previews to {}", out.display());
    Ok(())
}

fn write_pgm(path: &Path, width: usize, height: usize, pixels: &[u8]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(f, "P5\n{width} {height}\n255\n")?;
    f.write_all(pixels)?;
    f.flush()
}
