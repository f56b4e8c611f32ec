//! The tasks behind `cargo xtask`, as a library so tests can call them.

pub mod bench;
