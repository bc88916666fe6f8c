//! One file per kernel concern.
pub mod seccomp;
