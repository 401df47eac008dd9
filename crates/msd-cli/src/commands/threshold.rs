//! `msd threshold`: the global-threshold baseline.
use msd::baseline::{keep_largest_component, threshold};

use crate::Ui;
use crate::cli::ThresholdArgs;

pub fn run(args: &ThresholdArgs, ui: &Ui) -> anyhow::Result<()> {
    if !args.hu.is_finite() {
        return Err(crate::UsageError(format!("--hu {} is not a number of Hounsfield units", args.hu)).into());
    }
    let ct = super::read_ct(&args.scan)?;
    let mut labels = threshold(&ct, args.hu);
    if args.largest {
        labels = keep_largest_component(&labels);
    }
    super::write_volume(&args.out, &labels)?;
    let n = super::count_labelled(&labels);
    let ml = n as f64 * labels.geometry().voxel_volume_mm3() / 1000.0;
    ui.say(format!("wrote {}: {n} voxels ≥ {} HU ({ml:.1} ml)", args.out.display(), args.hu));
    Ok(())
}
