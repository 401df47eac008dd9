//! Which kernels inference runs with: the `f32` forward pass or the bf16 one, chosen once from a
//! [`Precision`] and what this CPU has.
use std::fmt;
use std::str::FromStr;

use super::{Bf16Isa, Isa};
use crate::{Error, Result};

/// The number format of the feature maps during inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// bf16 where the CPU has bf16 dot-product instructions (AMX or AVX512-BF16), else `f32`.
    #[default]
    Auto,
    /// `f32` throughout, as in training: bit-for-bit the network training evaluates.
    F32,
    /// bf16 feature maps with `f32` sums, on the best bf16 instructions this CPU has (portable
    /// loops, much slower, where it has none).
    Bf16,
}

impl Precision {
    /// The name `--precision` takes (`auto`, `f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A precision name that is not `auto`, `f32` or `bf16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision `{0}`: expected auto, f32 or bf16")]
pub struct ParsePrecisionError(pub String);

impl FromStr for Precision {
    type Err = ParsePrecisionError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "f32" | "fp32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(ParsePrecisionError(s.to_string())),
        }
    }
}

/// The kernels a forward pass for inference runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InferenceKernels {
    /// The `f32` kernels of [`super::forward`] with this instruction set.
    F32(Isa),
    /// The bf16 kernels of [`super::Bf16Forward`] with this instruction set.
    Bf16(Bf16Isa),
}

impl InferenceKernels {
    /// The kernels for `precision` on this CPU: [`Precision::Auto`] takes bf16 where AMX or
    /// AVX512-BF16 is present.
    pub fn select(precision: Precision) -> InferenceKernels {
        match (precision, Bf16Isa::detect()) {
            (Precision::F32, _) | (Precision::Auto, None) => InferenceKernels::F32(Isa::detect()),
            (Precision::Auto | Precision::Bf16, Some(isa)) => InferenceKernels::Bf16(isa),
            (Precision::Bf16, None) => InferenceKernels::Bf16(Bf16Isa::Portable),
        }
    }

    /// The kernels forced to one instruction set, checked against this CPU.
    ///
    /// # Errors
    /// [`Error::UnsupportedIsa`] when this CPU cannot run them.
    pub fn checked(self) -> Result<InferenceKernels> {
        let (ok, name) = match self {
            InferenceKernels::F32(isa) => (isa.is_supported(), isa.name()),
            InferenceKernels::Bf16(isa) => (isa.is_supported(), isa.name()),
        };
        if ok { Ok(self) } else { Err(Error::UnsupportedIsa { isa: name }) }
    }

    /// A short name for logs (`avx512`, `amx-bf16`, …): the instruction set's name.
    pub fn name(self) -> &'static str {
        match self {
            InferenceKernels::F32(isa) => isa.name(),
            InferenceKernels::Bf16(isa) => isa.name(),
        }
    }

    /// The number format of the feature maps.
    pub fn precision(self) -> Precision {
        match self {
            InferenceKernels::F32(_) => Precision::F32,
            InferenceKernels::Bf16(_) => Precision::Bf16,
        }
    }
}

impl fmt::Display for InferenceKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_parse_and_print() {
        for p in [Precision::Auto, Precision::F32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("fp16".parse::<Precision>().unwrap_err().to_string().contains("auto, f32 or bf16"));
    }

    #[test]
    fn selection_follows_the_cpu() {
        assert_eq!(InferenceKernels::select(Precision::F32), InferenceKernels::F32(Isa::detect()));
        let auto = InferenceKernels::select(Precision::Auto);
        match Bf16Isa::detect() {
            Some(isa) => assert_eq!(auto, InferenceKernels::Bf16(isa)),
            None => assert_eq!(auto, InferenceKernels::F32(Isa::detect())),
        }
        assert_eq!(InferenceKernels::select(Precision::Bf16).precision(), Precision::Bf16);
        assert!(InferenceKernels::select(Precision::Auto).checked().is_ok());
    }
}
