//! coop: an OCI container runtime, a drop-in replacement for runc.
pub mod cgroups;
pub mod cli;
pub mod container;
pub mod error;
pub mod linux;
pub mod logger;
pub mod process;
pub mod spec;
