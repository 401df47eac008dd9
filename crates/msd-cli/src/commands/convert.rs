//! `msd convert`: a volume in one format to NIfTI or NRRD, geometry kept.
use anyhow::Context as _;

use crate::Ui;
use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs, ui: &Ui) -> anyhow::Result<()> {
    let spinner = ui.spinner(format!("reading {}", args.input.display()));
    if let Some(uid) = &args.series {
        if args.labels {
            return Err(crate::UsageError(
                "--series reads a DICOM CT series; it does not go with --labels".into(),
            )
            .into());
        }
        let options = msd::io::dicom::ReadOptions {
            series_uid: Some(uid.clone()),
            ..super::dicom_options(args.resample)
        };
        let sv = msd::io::dicom::read_series(&args.input, &options)
            .map_err(|e| super::with_resample_hint(e.into()))
            .with_context(|| format!("cannot read series {uid} of {}", args.input.display()))?;
        spinner.set_message(format!("writing {}", args.output.display()));
        super::write_volume(&args.output, &sv.volume)?;
    } else if args.labels {
        let v = super::read_labels(&args.input)?;
        spinner.set_message(format!("writing {}", args.output.display()));
        super::write_volume(&args.output, &v)?;
    } else {
        let v = super::read_ct_resampled(&args.input, args.resample)?;
        spinner.set_message(format!("writing {}", args.output.display()));
        super::write_volume(&args.output, &v)?;
    }
    spinner.finish_and_clear();
    ui.say(format!("wrote {}", args.output.display()));
    Ok(())
}
