//! One file per kernel concern.
pub mod capabilities;
pub mod devices;
pub mod fds;
pub mod hooks;
pub mod hooksd;
pub mod lsm;
pub mod mount;
pub mod namespaces;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod safepath;
pub mod seccomp;
pub mod selfexe;
pub mod signals;
pub mod tty;
pub mod user;
