//! Integration tests of the msd facade, built as one binary. The workflow's own tests live with its
//! crate (`crates/msd-pipeline/tests`); here: the facade's public paths, and the phantoms.
mod facade;
mod phantom;
