//! Train an MSDnet from CT scans paired with label volumes or gold-standard meshes.
//!
//! `cargo run --release --example train_model -- OUT.safetensors CT1 LABELS_OR_MESH1 [CT2 LABELS_OR_MESH2 ...]`
//!
//! A pair's second file is read as a mesh when it ends in `.stl`, `.ply` or `.obj` (and voxelised onto
//! the CT's grid), as a label volume otherwise.
use std::path::PathBuf;

use msd::evaluation::is_mesh_path;
use msd::net::MsdConfig;
use msd::training::{TrainingSet, skull_train_config, train_with_progress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if args.len() < 3 || args.len().is_multiple_of(2) {
        return Err("usage: train_model OUT.safetensors CT LABELS_OR_MESH [CT LABELS_OR_MESH ...]".into());
    }
    let mut set = TrainingSet::new();
    for pair in args[1..].chunks(2) {
        let ct = msd::io::read_volume(&pair[0])?;
        let name = pair[0].display().to_string();
        if is_mesh_path(&pair[1]) {
            set.push_mesh(name, ct, &msd::geom::read_mesh(&pair[1])?)?;
        } else {
            set.push_labels(name, ct, msd::io::read_labels(&pair[1])?)?;
        }
    }
    let mut config = skull_train_config(MsdConfig::new(40, 1, 1, 2));
    config.epochs = 20;
    let outcome = train_with_progress(&set, &config, |p| {
        if let Some(e) = &p.epoch_done {
            eprintln!(
                "epoch {:>3}: train loss {:.4}, validation loss {:?}",
                e.epoch, e.train_loss, e.validation_loss
            );
        }
    })?;
    outcome.model.save(&args[0])?;
    msd::loss_curve::write_png(&args[0].with_extension("loss.png"), &outcome.history, outcome.best_epoch)?;
    println!("wrote {} (best epoch {:?})", args[0].display(), outcome.best_epoch);
    Ok(())
}
