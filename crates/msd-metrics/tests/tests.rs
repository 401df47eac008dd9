//! Integration tests of `msd-metrics` through its public API: analytic cases, invariants and the
//! shared CThead data.
mod fixtures;

mod cthead;
mod deviation;
mod label_distances;
mod overlap;
mod properties;
mod surface_distances;
