//! coop: an OCI container runtime, a drop-in replacement for runc.
pub mod linux;
