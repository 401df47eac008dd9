//! Integration tests of the msd facade, built as one binary.
mod demo;
mod phantom;
mod real_data;
mod shipped_model;
mod workflow;
