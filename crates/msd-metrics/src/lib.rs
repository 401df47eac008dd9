//! Segmentation metrics for CT: overlap between label volumes and distances between surfaces.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
