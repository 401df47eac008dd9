//! `msd convert`: a volume in one format to NIfTI or NRRD, geometry kept.
use crate::Ui;
use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs, ui: &Ui) -> anyhow::Result<()> {
    if args.series.is_some() {
        return Err(crate::UsageError(
            "--series needs a DICOM folder; this build reads one series per folder (the CT series with the most slices)"
                .into(),
        )
        .into());
    }
    let spinner = ui.spinner(format!("reading {}", args.input.display()));
    if args.labels {
        let v = super::read_labels(&args.input)?;
        spinner.set_message(format!("writing {}", args.output.display()));
        super::write_volume(&args.output, &v)?;
    } else {
        let v = super::read_ct(&args.input)?;
        spinner.set_message(format!("writing {}", args.output.display()));
        super::write_volume(&args.output, &v)?;
    }
    spinner.finish_and_clear();
    ui.say(format!("wrote {}", args.output.display()));
    Ok(())
}
