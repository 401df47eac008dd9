//! The global-threshold baseline on a synthetic head with metal: what engineers do by hand today,
//! and how far it is from the truth.
//!
//! `cargo run --release --example threshold_baseline -- [HU]`
use msd::baseline::{keep_largest_component, threshold};
use msd::evaluation::{EvaluationOptions, Shape};
use msd::phantom::{PhantomConfig, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hu: f32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(300.0);
    let head = generate(&PhantomConfig::standard().with_metal(true).with_noise(60.0), 5)?;
    let truth = Shape::Labels(head.skull.clone());
    let options = EvaluationOptions::default();
    let raw = threshold(&head.ct, hu);
    let largest = keep_largest_component(&raw);
    for (name, labels) in [("threshold", raw), ("threshold + largest component", largest)] {
        let r = options.evaluate(name, &Shape::Labels(labels), &truth)?;
        println!(
            "{name:<30} Dice {:.3}  MAD {:.2} mm  HD95 {:.2} mm",
            r.metrics.dice.unwrap_or(f64::NAN),
            r.metrics.mad_mm.unwrap_or(f64::NAN),
            r.metrics.hd95_mm.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
