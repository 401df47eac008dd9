//! Integration tests of the msd facade, built as one binary.
