//! Integration tests of msd-pipeline, built as one binary: the workflow on phantoms, on the real head
//! CT of `../shared/data` (ignored when it is absent), and the skull model that ships with msd-net.
mod real_data;
mod shipped_model;
mod workflow;
