//! `msd label`: closed mesh → label volume on a CT's grid.
use anyhow::Context as _;

use crate::Ui;
use crate::cli::LabelArgs;

pub fn run(args: &LabelArgs, ui: &Ui) -> anyhow::Result<()> {
    let mesh = super::read_mesh(&args.mesh)?;
    let check = mesh.check();
    if !check.is_closed() && !args.allow_open {
        anyhow::bail!(
            "{} is not a closed mesh ({} boundary edges, {} non-manifold edges), so its inside is not defined; \
             repair it, or pass --allow-open to decide inside by winding-number voting",
            args.mesh.display(),
            check.boundary_edges,
            check.non_manifold_edges
        );
    }
    let ct = super::read_ct(&args.like)?;
    let spinner = ui.spinner("voxelising");
    let labels = msd::geom::mesh_to_labels(&mesh, &ct).with_context(|| {
        format!("cannot voxelise {} onto the grid of {}", args.mesh.display(), args.like.display())
    })?;
    spinner.finish_and_clear();
    super::write_volume(&args.out, &labels)?;
    let n = super::count_labelled(&labels);
    ui.say(format!(
        "wrote {}: {n} voxels inside ({:.1} ml)",
        args.out.display(),
        n as f64 * labels.geometry().voxel_volume_mm3() / 1000.0
    ));
    Ok(())
}
