//! Learning-rate schedules: how the Adam step size changes over a training run.
//!
//! A constant rate keeps the weights jittering around the optimum at the end of a run; a cosine
//! decay lets the last epochs settle them, which matters for a boundary that must sit exactly where
//! a threshold puts it.
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the learning rate of [`crate::AdamConfig::lr`] changes over the optimiser steps of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The configured rate throughout (the study's setting).
    #[default]
    Constant,
    /// Half a cosine from the configured rate down to `final_fraction` of it at the last step of
    /// the last epoch (a run cut short by a time budget stops part-way down).
    Cosine {
        /// The rate at the end, as a fraction of the configured rate (in `[0, 1]`).
        final_fraction: f32,
    },
}

impl LrSchedule {
    /// Checks the schedule's parameters; the error names the bad value.
    pub fn validate(&self) -> Result<()> {
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Cosine { final_fraction } if (0.0..=1.0).contains(&final_fraction) => Ok(()),
            LrSchedule::Cosine { final_fraction } => Err(Error::InvalidTrainConfig {
                what: format!("cosine schedule final fraction {final_fraction} must be in [0, 1]"),
            }),
        }
    }

    /// The rate at optimiser step `step` (0-based) of `total` steps, for a configured rate `base`.
    pub fn rate(&self, base: f32, step: u64, total: u64) -> f32 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine { final_fraction } => {
                let t = if total <= 1 { 1.0 } else { (step.min(total - 1) as f64) / ((total - 1) as f64) };
                let f = final_fraction as f64;
                (base as f64 * (f + (1.0 - f) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))) as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_runs_from_the_rate_to_its_final_fraction_and_never_rises() {
        let s = LrSchedule::Cosine { final_fraction: 0.05 };
        assert_eq!(s.rate(1e-3, 0, 100), 1e-3);
        assert!((s.rate(1e-3, 99, 100) - 5e-5).abs() < 1e-9);
        assert!((s.rate(1e-3, 1000, 100) - 5e-5).abs() < 1e-9, "past the end it stays at the floor");
        // Half-way the rate is the mean of the two ends.
        assert!((s.rate(1.0, 50, 101) - 0.525).abs() < 1e-6);
        let rates: Vec<f32> = (0..100).map(|i| s.rate(1e-3, i, 100)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(LrSchedule::Constant.rate(1e-3, 77, 100), 1e-3);
    }

    #[test]
    fn bad_final_fractions_are_refused() {
        for f in [-0.1, 1.5, f32::NAN] {
            assert!(LrSchedule::Cosine { final_fraction: f }.validate().is_err(), "{f}");
        }
        assert!(LrSchedule::Cosine { final_fraction: 0.0 }.validate().is_ok());
    }
}
