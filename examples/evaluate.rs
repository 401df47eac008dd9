//! Evaluate a segmentation against a reference, each a label volume or a mesh, optionally near a
//! defect: the study's Table 1 metrics (Dice, MAD) plus HD95 and surface Dice.
//!
//! `cargo run --release --example evaluate -- PRED REF [REGION]`
use std::path::PathBuf;

use msd::evaluation::{EvaluationOptions, Shape};
use msd::metrics::{Region, Report};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if !(2..=3).contains(&args.len()) {
        return Err("usage: evaluate PRED REF [REGION]".into());
    }
    let region = args.get(2).map(msd::io::read_labels).transpose()?.map(Region::Mask);
    let options = EvaluationOptions::default().region(region);
    let case = options.evaluate("case", &Shape::read(&args[0])?, &Shape::read(&args[1])?)?;
    let mut report = Report::new().with_region_name("near defect");
    report.push(case);
    println!("{}", report.to_markdown());
    Ok(())
}
