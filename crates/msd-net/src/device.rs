//! Where a model trains or segments: the CPU, a CUDA GPU, or the best one this machine offers.
//!
//! A [`Device`] is what was asked for; [`Device::resolve`] turns it into what runs, a
//! [`ResolvedDevice`] that names the concrete device and why it was chosen. The API is the same
//! with and without the `cuda` feature: a build without it answers a request for CUDA with
//! [`Error::CudaNotBuilt`], and `Auto` falls back to the CPU, saying so.
//!
//! | asked for | `cuda` feature off | feature on, no driver / GPU / NVRTC | feature on, GPU usable |
//! |---|---|---|---|
//! | `cpu` | CPU | CPU | CPU |
//! | `cuda`, `cuda:N` | [`Error::CudaNotBuilt`] | [`Error::CudaUnavailable`] | GPU `N` |
//! | `auto` | CPU ("built without CUDA support") | CPU (the reason) | GPU 0 |
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A compute device, as asked for (`Auto`) or as resolved (`Cpu`, `Cuda`).
///
/// Parsed from `cpu`, `cuda` (the first GPU), `cuda:N` (GPU `N`, 0-based) or `auto`
/// (case-insensitive); [`fmt::Display`] writes the same strings back.
///
/// ```
/// use msd_net::Device;
/// assert_eq!("cuda:1".parse::<Device>()?, Device::Cuda(1));
/// assert_eq!("cuda".parse::<Device>()?, Device::Cuda(0));
/// assert!("gpu".parse::<Device>().is_err());
/// // The CPU is always there.
/// assert_eq!(Device::Cpu.resolve()?.device(), Device::Cpu);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU kernels (AVX-512, AVX2 or portable, chosen at run time). The library's default, so
    /// that a program gets the same result on every machine unless it asks for a GPU.
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (0 for the first); needs the `cuda` feature, an NVIDIA driver
    /// and NVRTC at run time.
    Cuda(usize),
    /// The first CUDA GPU when this build has the `cuda` feature and the GPU can be used, the CPU
    /// otherwise.
    Auto,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Auto => f.write_str("auto"),
        }
    }
}

/// A device string that is not `cpu`, `cuda`, `cuda:N` or `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid device {input:?}: {reason} (expected cpu, cuda, cuda:N or auto)")]
pub struct ParseDeviceError {
    /// The string given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Device {
    type Err = ParseDeviceError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = |reason: &str| ParseDeviceError { input: s.to_owned(), reason: reason.to_owned() };
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "auto" => Ok(Device::Auto),
            "" => Err(bad("empty")),
            other => match other.strip_prefix("cuda:") {
                Some("") => Err(bad("no GPU number after `cuda:`")),
                Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse().map(Device::Cuda).map_err(|_| bad("the GPU number is too large"))
                }
                Some(_) => Err(bad("the GPU number after `cuda:` is not a non-negative integer")),
                None => Err(bad("unknown device")),
            },
        }
    }
}

/// The device that runs, and why it was chosen: what [`Device::resolve`] returns.
///
/// Its [`fmt::Display`] is one line for people, e.g. `CPU (auto: built without CUDA support)` or
/// `CUDA GPU 0 (asked for)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDevice {
    device: Device,
    reason: String,
}

impl ResolvedDevice {
    /// The concrete device: [`Device::Cpu`] or [`Device::Cuda`], never [`Device::Auto`].
    pub fn device(&self) -> Device {
        self.device
    }

    /// Why this device was chosen (`asked for`, `auto: built without CUDA support`, ...).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ResolvedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.device {
            Device::Cuda(n) => write!(f, "CUDA GPU {n} ({})", self.reason),
            _ => write!(f, "CPU ({})", self.reason),
        }
    }
}

impl Device {
    /// Whether this build has the CUDA kernels (the `cuda` feature).
    pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

    /// The concrete device this request runs on, and why.
    ///
    /// `Cpu` always resolves. `Cuda(n)` checks that the driver library loads, that GPU `n` exists
    /// and that NVRTC (which compiles the kernels at run time) loads; it opens no context. `Auto`
    /// makes the same checks for GPU 0 and falls back to the CPU, naming the reason.
    ///
    /// # Errors
    /// [`Error::CudaNotBuilt`] when CUDA is asked for and this build lacks the `cuda` feature;
    /// [`Error::CudaUnavailable`] when it has the feature but no driver, no such GPU or no NVRTC.
    pub fn resolve(self) -> Result<ResolvedDevice> {
        match self {
            Device::Cpu => Ok(ResolvedDevice { device: Device::Cpu, reason: "asked for".to_owned() }),
            Device::Cuda(n) => {
                cuda_usable(n).map_err(|reason| cuda_error(self, reason))?;
                Ok(ResolvedDevice { device: self, reason: "asked for".to_owned() })
            }
            Device::Auto => Ok(match cuda_usable(0) {
                Ok(()) => ResolvedDevice {
                    device: Device::Cuda(0),
                    reason: "auto: a CUDA GPU is present".to_owned(),
                },
                Err(why) => ResolvedDevice { device: Device::Cpu, reason: format!("auto: {why}") },
            }),
        }
    }
}

/// Why CUDA cannot run: the build or the machine.
enum CudaMissing {
    /// The `cuda` feature is off.
    #[cfg_attr(feature = "cuda", allow(dead_code))]
    NotBuilt,
    /// The feature is on; the driver, the GPU or NVRTC is missing.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    Unavailable(String),
}

impl fmt::Display for CudaMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CudaMissing::NotBuilt => f.write_str("built without CUDA support"),
            CudaMissing::Unavailable(why) => f.write_str(why),
        }
    }
}

fn cuda_error(device: Device, missing: CudaMissing) -> Error {
    match missing {
        CudaMissing::NotBuilt => Error::CudaNotBuilt { device },
        CudaMissing::Unavailable(reason) => Error::CudaUnavailable { device, reason },
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_usable(_ordinal: usize) -> std::result::Result<(), CudaMissing> {
    Err(CudaMissing::NotBuilt)
}

#[cfg(feature = "cuda")]
fn cuda_usable(ordinal: usize) -> std::result::Result<(), CudaMissing> {
    use crate::cuda;
    let count = cuda::device_count().map_err(|e| CudaMissing::Unavailable(e.to_string()))?;
    if count == 0 {
        return Err(CudaMissing::Unavailable("the CUDA driver reports no GPU".to_owned()));
    }
    if ordinal >= count {
        return Err(CudaMissing::Unavailable(format!(
            "no CUDA GPU {ordinal}: the driver reports {count} GPU(s), numbered from 0"
        )));
    }
    if !cuda::nvrtc_available() {
        return Err(CudaMissing::Unavailable(
            "libnvrtc (which compiles the kernels at run time) was not found on the library path".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_parse() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("CPU".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("auto".parse::<Device>().unwrap(), Device::Auto);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:0".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!(" cuda:3 ".parse::<Device>().unwrap(), Device::Cuda(3));
        for d in [Device::Cpu, Device::Auto, Device::Cuda(0), Device::Cuda(12)] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
    }

    #[test]
    fn bad_device_strings_are_typed_errors_that_say_why() {
        for (s, why) in [
            ("", "empty"),
            ("gpu", "unknown device"),
            ("cuda:", "no GPU number"),
            ("cuda:-1", "not a non-negative integer"),
            ("cuda:x", "not a non-negative integer"),
            ("cuda:1.5", "not a non-negative integer"),
            ("cuda:99999999999999999999999", "too large"),
            ("cuda0", "unknown device"),
        ] {
            let e = s.parse::<Device>().unwrap_err();
            assert_eq!(e.input, s);
            assert!(e.reason.contains(why), "{s:?}: {e}");
            assert!(e.to_string().contains("expected cpu, cuda, cuda:N or auto"), "{e}");
        }
    }

    #[test]
    fn the_cpu_always_resolves() {
        let r = Device::Cpu.resolve().unwrap();
        assert_eq!(r.device(), Device::Cpu);
        assert_eq!(r.to_string(), "CPU (asked for)");
    }

    #[test]
    fn auto_resolves_to_a_concrete_device_with_a_reason() {
        let r = Device::Auto.resolve().unwrap();
        assert_ne!(r.device(), Device::Auto);
        assert!(r.reason().starts_with("auto: "), "{r}");
        if !Device::CUDA_BUILT {
            assert_eq!(r.to_string(), "CPU (auto: built without CUDA support)");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_typed_error() {
        for d in [Device::Cuda(0), Device::Cuda(2)] {
            match d.resolve() {
                Err(Error::CudaNotBuilt { device }) => assert_eq!(device, d),
                other => panic!("{other:?}"),
            }
        }
        let msg = Device::Cuda(0).resolve().unwrap_err().to_string();
        assert!(msg.contains("built without CUDA support"), "{msg}");
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_with_the_feature_resolves_or_says_what_is_missing() {
        // On a machine without a driver or GPU this is CudaUnavailable, never a panic; with a GPU, GPU 0
        // resolves and an absurd ordinal does not.
        match Device::Cuda(0).resolve() {
            Ok(r) => assert_eq!(r.device(), Device::Cuda(0)),
            Err(Error::CudaUnavailable { device, reason }) => {
                assert_eq!(device, Device::Cuda(0));
                assert!(!reason.is_empty());
            }
            Err(other) => panic!("{other:?}"),
        }
        assert!(matches!(Device::Cuda(10_000).resolve(), Err(Error::CudaUnavailable { .. })));
    }
}
